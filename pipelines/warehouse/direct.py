"""Arrow tables merged into a DuckDB warehouse by SQL, as dlt's delete-insert merge would.

A dlt load costs seconds whatever its size (import, pipeline set-up, extract, normalize and load
steps, each with files of its own). Where dlt has already created a table with every column a
batch carries, a few rows are written for a fraction of that with the same outcome: the
batch's keys deleted, the batch inserted (by column name), in the caller's transaction. Both the
listener's flushes (:mod:`pipelines.listen.direct`) and a sync with few changes
(:mod:`pipelines.source.direct`) write this way; whatever does not fit goes through dlt.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

__all__ = ["append", "merge_by_key", "new_load_id", "record_load"]

#: The name under which a batch is visible to SQL while it is merged.
_VIEW = "lynkist_direct_batch"


def new_load_id() -> str:
    """A load id in dlt's own format (Unix time, 7 decimals), for row lineage."""
    return f"{time.time():.7f}"


def merge_by_key(con: Any, table: str, key: str, batch: pa.Table) -> None:
    """Replace the rows of ``table`` whose ``key`` is in ``batch`` by the rows of ``batch``.

    Args:
        con: A DuckDB connection, inside the caller's transaction.
        table: The qualified, quoted table name.
        key: The quoted key column.
        batch: The rows, at most one per key; columns matched by name (missing ones are null).
    """
    with _registered(con, batch):
        con.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {_VIEW})")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {_VIEW}")


def append(con: Any, table: str, batch: pa.Table) -> None:
    """Append the rows of ``batch`` to ``table``, as dlt's ``append`` write disposition does.

    Args:
        con: A DuckDB connection, inside the caller's transaction.
        table: The qualified, quoted table name.
        batch: The rows; columns matched by name (missing ones are null).
    """
    with _registered(con, batch):
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {_VIEW}")


@contextmanager
def _registered(con: Any, batch: pa.Table) -> Iterator[None]:
    con.register(_VIEW, batch)
    try:
        yield
    finally:
        con.unregister(_VIEW)


def record_load(con: Any, dataset: str, load_id: str, schema_name: str) -> None:
    """Record ``load_id`` as a completed load in dlt's ``_dlt_loads`` table, as dlt does.

    The row points at the schema version dlt stored last (nothing written here changes the
    schema), so dlt's tools and "when was the mirror last synced" see the load as dlt's own.

    Args:
        con: A DuckDB connection, inside the caller's transaction.
        dataset: The quoted dataset (schema) name.
        load_id: The load id the written rows carry in ``_dlt_load_id``.
        schema_name: The dlt schema of the written tables.
    """
    con.execute(
        f"INSERT INTO {dataset}._dlt_loads "
        "(load_id, schema_name, status, inserted_at, schema_version_hash) "
        f"SELECT ?, ?, 0, now(), (SELECT version_hash FROM {dataset}._dlt_version "
        "WHERE schema_name = ? ORDER BY version DESC, inserted_at DESC LIMIT 1)",
        [load_id, schema_name, schema_name],
    )
