"""A flush's fast path on DuckDB: the batch's Arrow tables merged by SQL in one transaction.

A dlt load costs seconds whatever its size (extract, normalize and load steps, each with files
and connections of its own), which alone would keep "event → visible" above the listener's goal.
Once dlt has created both tables (the first flush, or a sync, goes through dlt and sets up the
schema), a flush only replaces rows by key: delete the batch's keys, insert the batch — the same
delete-insert merge dlt performs — through the pipeline's own SQL client, in one transaction.

Anything the fast path cannot take as it is — another destination, a table dlt has not created
yet, a column the table lacks (the API sent a new field) — returns False and the caller runs the
batch through dlt, which evolves the schema.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import dlt
import pyarrow as pa

from pipelines.warehouse.direct import merge_by_key, new_load_id

log = logging.getLogger(__name__)


def usable(pipeline: dlt.Pipeline, names: Sequence[str]) -> bool:
    """Whether the fast path can serve these tables: DuckDB, and dlt has created each of them."""
    if pipeline.destination is None or pipeline.destination.destination_name != "duckdb":
        return False
    if not pipeline.default_schema_name:
        return False
    schema = pipeline.default_schema
    return all(name in schema.tables and schema.get_table_columns(name) for name in names)


def _ready(pipeline: dlt.Pipeline, tables: Mapping[str, Sequence[pa.Table]]) -> bool:
    if not usable(pipeline, list(tables)):
        return False
    schema = pipeline.default_schema
    return all(
        set(t.column_names) <= set(schema.get_table_columns(name))
        for name, batch in tables.items()
        for t in batch
    )


def apply(
    pipeline: dlt.Pipeline, tables: Mapping[str, Sequence[pa.Table]], keys: Mapping[str, str]
) -> bool:
    """Merge ``tables`` (name → Arrow tables) by ``keys`` (name → key column); False if not here.

    Raises:
        Exception: The destination failed mid-way (the transaction is rolled back).
    """
    if not _ready(pipeline, tables):
        return False
    load_id = new_load_id()
    with pipeline.sql_client() as client, client.begin_transaction():
        con = client.native_connection
        for name, batch in tables.items():
            if not batch or not sum(t.num_rows for t in batch):
                continue
            merged = pa.concat_tables(batch, promote_options="default")
            if "_dlt_load_id" not in merged.column_names:
                merged = merged.append_column(
                    "_dlt_load_id", pa.array([load_id] * merged.num_rows, pa.string())
                )
            key = client.escape_column_name(keys[name])
            merge_by_key(con, client.make_qualified_table_name(name), key, merged)
    return True
