"""Orchestration of the connector by Dagster (optional extra ``lynkist-etl[dagster]``).

:mod:`pipelines.orchestration.assets` builds the definitions from a tenants file;
:mod:`pipelines.orchestration.definitions` exposes them as ``defs`` for ``dagster dev -m``.
"""
