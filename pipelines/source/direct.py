"""A sync with few changes, written by SQL without importing dlt.

Importing dlt, setting up its pipeline and running its extract, normalize and load steps cost
about 2.5 s whatever the size of the load; writing 200 changed contacts costs milliseconds. So
a scan started before dlt (:mod:`pipelines.source.quick`) that finds a few changes runs to its
end without dlt (:meth:`~pipelines.source.quick.StartedScan.gather`), and when what it found
is plain — see :func:`applies` — those rows are merged into the contacts table with the same
delete-insert dlt performs (:func:`pipelines.warehouse.direct.merge_by_key`), in one DuckDB
transaction, with a ``_dlt_load_id`` and a ``_dlt_loads`` row as dlt writes them. The decisions
are the scan's own (the same reconciler: tenant check, confirmed deletions, delete share).

Anything else goes through dlt as before, with the rows found so far handed over first: more
than :data:`MAX_ROWS` rows (or :data:`MAX_BYTES`), a column the table lacks (a new API field:
dlt evolves the schema), a value that had to be repaired or an open problem resolved (dlt
writes ``contacts_rejected``), a contact that changed again during the scan (the follow-up
load), an archived contact to mark deleted (its row is read back through dlt's pipeline), or a
write that fails (the transaction is rolled back first).
"""

from __future__ import annotations

import logging

import pyarrow as pa

from pipelines.source.arrow import with_load_id
from pipelines.source.quick import StartedScan
from pipelines.source.settings import LOAD_ID_COLUMN, PRIMARY_KEY, SOURCE_NAME, TABLE_NAME
from pipelines.warehouse.direct import merge_by_key, new_load_id, record_load
from pipelines.warehouse.duck import quoted
from pipelines.warehouse.location import DUCKDB_MEMORY_LIMIT, Warehouse

__all__ = ["MAX_BYTES", "MAX_ROWS", "applies", "write"]

log = logging.getLogger(__name__)

#: Most rows a sync writes without dlt: past it, dlt's fixed cost is a small share of the
#: load, and the rows found wait in memory until the scan ends.
MAX_ROWS = 10_000
#: Most bytes (Arrow) of rows kept for a write without dlt.
MAX_BYTES = 32 * 2**20


def applies(scan: StartedScan) -> bool:
    """Whether what the complete scan found can be written without dlt (see the module)."""
    if not scan.complete or scan.stats.conflict_ids:
        return False
    if scan.rejected.problems or scan.rejected.resolved():
        return False
    if scan.reconciler.pipeline is not None:
        return False  # archived contacts were read back through dlt: dlt loads them
    wanted = {name for table in scan.found for name in table.column_names}
    return wanted <= scan.columns - {LOAD_ID_COLUMN}


def write(warehouse: Warehouse, scan: StartedScan) -> int | None:
    """Merge what the scan found into the contacts table; the rows written, or None if it
    must go through dlt (the transaction rolled back, nothing written)."""
    import duckdb

    found = [table for table in scan.found if table.num_rows]
    if not found:
        return 0
    load_id = new_load_id()
    batch = with_load_id(pa.concat_tables(found, promote_options="default"), load_id)
    dataset = quoted(warehouse.dataset)
    try:
        with duckdb.connect(
            str(warehouse.duckdb_file), config={"memory_limit": DUCKDB_MEMORY_LIMIT}
        ) as con:
            con.begin()
            try:
                merge_by_key(con, f"{dataset}.{quoted(TABLE_NAME)}", quoted(PRIMARY_KEY), batch)
                record_load(con, dataset, load_id, SOURCE_NAME)
            except BaseException:
                con.rollback()
                raise
            con.commit()
    except duckdb.Error as exc:
        log.info("writing the changes by SQL failed, loading them with dlt: %s", exc)
        return None
    return batch.num_rows
