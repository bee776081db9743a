"""Mirror queries: the warehouse's copy of the live contacts, as the push's planner needs it.

(The sync's own view of the warehouse — one fingerprint per contact, to decide what changed —
is :func:`pipelines.source.mirror.load_fingerprints`.)
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from transforms.contact import WRITABLE_FIELDS

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.warehouse.duck import SqlSource

log = logging.getLogger(__name__)

MIRROR_COLUMNS = ("id", *WRITABLE_FIELDS)


def empty_mirror() -> pd.DataFrame:
    """A mirror without contacts (no warehouse yet)."""
    import pandas as pd

    return pd.DataFrame({name: pd.Series(dtype=object) for name in MIRROR_COLUMNS})


def live_contacts(
    pipeline: SqlSource, *, where: str | None = None, table: str = "contacts"
) -> pd.DataFrame:
    """Live contacts of the warehouse, one row each, optionally only those matching ``where``.

    Works on any SQL destination dlt supports (DuckDB, PostgreSQL) through its SQL client.

    Args:
        pipeline: A pipeline of the warehouse (its destination and dataset locate the mirror),
            or :func:`pipelines.warehouse.duck.sql_source`.
        where: A condition over the table's columns in DuckDB's SQL dialect (transpiled with
            sqlglot for other destinations), e.g. from
            :func:`pipelines.sink.candidates.candidate_filter`; None reads every live contact.
        table: The contacts table.

    Returns:
        Columns :data:`MIRROR_COLUMNS`; ``tags`` / ``custom_fields`` as JSON text or decoded
        values, whatever the destination returns (the planner accepts both). Empty when the
        warehouse has no contacts table yet.
    """
    import pandas as pd

    try:
        with pipeline.sql_client() as client:
            qualified = client.make_qualified_table_name(table)
            columns = ", ".join(MIRROR_COLUMNS)
            condition = "(is_deleted IS NULL OR is_deleted = FALSE)"
            if where is not None:
                condition += f" AND ({where})"
            sql = _in_dialect(
                f"SELECT {columns} FROM {qualified} WHERE {condition}",
                client.capabilities.sqlglot_dialect,
            )
            rows = list(client.execute_sql(sql) or [])
    except Exception as exc:  # no dataset / table yet: nothing mirrored
        if _is_missing_relation(exc):
            log.info("no mirror yet (%s); every row with a key plans as a create", exc)
            return empty_mirror()
        raise
    return pd.DataFrame([tuple(row) for row in rows], columns=list(MIRROR_COLUMNS), dtype=object)


def count_live(pipeline: SqlSource, table: str = "contacts") -> int:
    """How many live contacts the warehouse holds (0 without a contacts table)."""
    try:
        with pipeline.sql_client() as client:
            qualified = client.make_qualified_table_name(table)
            rows = client.execute_sql(
                f"SELECT count(*) FROM {qualified} WHERE is_deleted IS NULL OR is_deleted = FALSE"
            )
    except Exception as exc:
        if _is_missing_relation(exc):
            return 0
        raise
    return int(rows[0][0]) if rows else 0


def sample_live_ids(pipeline: SqlSource, n: int, table: str = "contacts") -> list[str]:
    """Up to ``n`` live contact ids of the warehouse, drawn at random (none without a table)."""
    try:
        with pipeline.sql_client() as client:
            qualified = client.make_qualified_table_name(table)
            rows = client.execute_sql(
                f"SELECT id FROM {qualified} WHERE is_deleted IS NULL OR is_deleted = FALSE "
                f"ORDER BY random() LIMIT {int(n)}"
            )
    except Exception as exc:
        if _is_missing_relation(exc):
            return []
        raise
    return [str(row[0]) for row in rows or []]


def _in_dialect(sql: str, dialect: str | None) -> str:
    if not dialect or dialect == "duckdb":
        return sql
    import sqlglot

    return str(sqlglot.transpile(sql, read="duckdb", write=dialect)[0])


def _is_missing_relation(exc: BaseException) -> bool:
    text = str(exc).lower()
    if "does not exist" in text or "not found" in text or "no such" in text:
        return True
    if "dlt" not in sys.modules:  # a query by DuckDB directly: dlt need not be imported for it
        return False
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    return isinstance(exc, DatabaseUndefinedRelation)
