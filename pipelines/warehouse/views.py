"""(Re)create the analysis views of :mod:`transforms.views` in a warehouse's dataset."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.warehouse.duck import SqlSource

__all__ = ["create_views", "dataset_tables"]

log = logging.getLogger(__name__)


def dataset_tables(client: Any) -> dict[str, dict[str, str]]:
    """Table name -> (column -> type) of the tables in the client's dataset (views left out).

    Args:
        client: An open dlt SQL client (``pipeline.sql_client()``).
    """
    from transforms.views import ALL_VIEWS

    rows = client.execute_sql(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = %s",
        client.dataset_name,
    )
    tables: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows or []:
        tables.setdefault(table, {})[column] = str(data_type)
    for view in ALL_VIEWS:  # our own views show up in information_schema too
        tables.pop(view, None)
    return tables


def create_views(pipeline: SqlSource) -> list[str]:
    """(Re)create the analysis views in the pipeline's dataset.

    Runs in one transaction: views are dropped (in reverse dependency order) and recreated, so
    a changed column type in the warehouse never leaves a stale view behind. Cheap and
    idempotent: the ``push_*`` views appear once ``push_results`` exists.

    Args:
        pipeline: A dlt pipeline with a DuckDB or PostgreSQL destination that has loaded
            ``contacts`` (and, for the push views, ``push_results``), or
            :func:`pipelines.warehouse.duck.sql_source`.

    Returns:
        The names of the views created, in creation order; empty when the destination's SQL
        dialect is not supported or nothing has been loaded yet.
    """
    from transforms.views import ALL_VIEWS, SUPPORTED_DIALECTS, view_definitions

    with pipeline.sql_client() as client:
        dialect = client.capabilities.sqlglot_dialect
        if dialect not in SUPPORTED_DIALECTS:
            log.warning("analysis views are not available for the %s dialect", dialect)
            return []
        definitions = view_definitions(dialect, dataset_tables(client))
        with client.begin_transaction():
            for name in reversed(ALL_VIEWS):
                client.execute_sql(f"DROP VIEW IF EXISTS {client.make_qualified_table_name(name)}")
            for name, select in definitions:
                qualified = client.make_qualified_table_name(name)
                client.execute_sql(f"CREATE VIEW {qualified} AS\n{select}")
    return [name for name, _ in definitions]
