"""Read the warehouse mirror of the live contacts (``lynkist.contacts``, not deleted)."""

from __future__ import annotations

import logging

import dlt
import pandas as pd

from transforms.contact import WRITABLE_FIELDS

log = logging.getLogger(__name__)

MIRROR_COLUMNS = ("id", *WRITABLE_FIELDS)


def empty_mirror() -> pd.DataFrame:
    """A mirror without contacts (no warehouse yet)."""
    return pd.DataFrame({name: pd.Series(dtype=object) for name in MIRROR_COLUMNS})


def load_mirror(pipeline: dlt.Pipeline, table: str = "contacts") -> pd.DataFrame:
    """Live contacts of the warehouse, one row each.

    Works on any SQL destination dlt supports (DuckDB, PostgreSQL) through its SQL client.

    Args:
        pipeline: The sync pipeline (its destination and dataset locate the mirror).
        table: The contacts table.

    Returns:
        Columns :data:`MIRROR_COLUMNS`; ``tags`` / ``custom_fields`` as JSON text or decoded
        values, whatever the destination returns (the planner accepts both). Empty when the
        warehouse has no contacts table yet.
    """
    try:
        with pipeline.sql_client() as client:
            qualified = client.make_qualified_table_name(table)
            columns = ", ".join(MIRROR_COLUMNS)
            sql = (
                f"SELECT {columns} FROM {qualified} WHERE is_deleted IS NULL OR is_deleted = FALSE"
            )
            rows = list(client.execute_sql(sql) or [])
    except Exception as exc:  # no dataset / table yet: nothing mirrored
        if _is_missing_relation(exc):
            log.info("no mirror yet (%s); every row with a key plans as a create", exc)
            return empty_mirror()
        raise
    return pd.DataFrame([tuple(row) for row in rows], columns=list(MIRROR_COLUMNS), dtype=object)


def _is_missing_relation(exc: BaseException) -> bool:
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    if isinstance(exc, DatabaseUndefinedRelation):
        return True
    text = str(exc).lower()
    return "does not exist" in text or "not found" in text or "no such" in text
