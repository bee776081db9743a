"""Reverse ETL: upsert a CRM export into Lynkist with one recorded outcome per input row.

>>> report = push_dataframe(df, base_url=url, api_key=key)  # doctest: +SKIP
>>> report.results.outcome.value_counts()  # doctest: +SKIP

Modules: :mod:`.keys` (match keys), :mod:`.plan` (diff against the mirror), :mod:`.execute`
(bulk creates, concurrent PATCHes, rounds), :mod:`.reconcile` (lookups after a lost bulk
answer), :mod:`.journal` (in-flight journal), :mod:`.candidates` (which mirror rows a push reads),
:mod:`.results` (push_results, CSV, summary), :mod:`.push` (the push runner). The warehouse
side — pipeline, lock, mirror queries, views — is :mod:`pipelines.warehouse`.
"""

from pipelines.sink.plan import Plan, PlannedRow, build_plan
from pipelines.sink.push import PushReport, PushSettings, PushUsageError, push_dataframe, run_push

__all__ = [
    "Plan",
    "PlannedRow",
    "PushReport",
    "PushSettings",
    "PushUsageError",
    "build_plan",
    "push_dataframe",
    "run_push",
]
