"""A push's record — learned mirror rows and ``push_results`` rows — written by SQL, without dlt.

Recording a small push through dlt (import, pipeline, extract, normalize, load) costs about
two seconds whatever its size, more than the rest of a 100-row ``--no-refresh`` push. Once dlt
has created both tables, the same outcome is a few statements: the learned contacts merged into
``contacts`` by id (delete-insert, as dlt's merge), the results appended to ``push_results``,
both carrying one ``_dlt_load_id`` recorded in ``_dlt_loads`` under the push pipeline's schema —
in one DuckDB transaction (:mod:`pipelines.warehouse.direct`, the sync's rule for this).

Anything else goes through dlt as before (:func:`write` returns False, nothing written; then
:func:`load`): another
destination, a push pipeline dlt has not set up (its first push creates ``push_results``) or
whose last run left a load package, a table or a column dlt has not created (a new API field:
dlt evolves the schema), or a write that fails (the transaction is rolled back first).
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pipelines.imports import import_serialised
from pipelines.sink.learned import contacts_resource
from pipelines.sink.results import TABLE_NAME as RESULTS_TABLE
from pipelines.sink.results import results_resource
from pipelines.source.arrow import with_load_id
from pipelines.source.settings import LOAD_ID_COLUMN, PRIMARY_KEY, TABLE_NAME
from pipelines.warehouse.direct import append, merge_by_key, new_load_id, record_load
from pipelines.warehouse.duck import DuckDBSource, quoted
from pipelines.warehouse.location import Warehouse
from pipelines.warehouse.recovery import finish_pending, has_pending_packages

if TYPE_CHECKING:
    import dlt

__all__ = ["import_dlt_meanwhile", "load", "write"]

log = logging.getLogger(__name__)


class _NotHere(Exception):
    """The record must go through dlt (raised inside the transaction: it is rolled back)."""


def _pipeline_ready(warehouse: Warehouse) -> bool:
    """dlt has run the push pipeline here and left no package for its next run to load."""
    working_dir = warehouse.working_dir / warehouse.push_pipeline_name
    if not (working_dir / "state.json").is_file():
        return False
    return not has_pending_packages(working_dir)


def import_dlt_meanwhile(warehouse: Warehouse) -> threading.Thread | None:
    """Start importing dlt on a thread when this push will record through dlt (a push pipeline
    dlt has not set up, e.g. the first push into a warehouse), so that the import (~1 s) runs
    while the writes wait on the network; None when nothing is to import.

    The caller joins the thread before anything else may import dlt (two threads importing it
    at once can fail on its circular imports).
    """
    if "dlt" in sys.modules or not warehouse.is_duckdb or _pipeline_ready(warehouse):
        return None
    thread = threading.Thread(target=_import_dlt, name="lynkist-import-dlt", daemon=True)
    thread.start()
    return thread


def _import_dlt() -> None:
    import_serialised("dlt", "dlt.destinations.impl.duckdb.configuration")


def _columns(con: object, dataset: str, table: str) -> set[str]:
    rows = con.execute(  # type: ignore[attr-defined]
        "SELECT c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_catalog, table_schema, table_name) "
        "WHERE c.table_catalog = current_database() AND c.table_schema = ? "
        "AND c.table_name = ? AND t.table_type = 'BASE TABLE'",
        [dataset, table],
    ).fetchall()
    return {name for (name,) in rows}


def _check(con: object, warehouse: Warehouse, batches: dict[str, pa.Table]) -> None:
    """Raise :class:`_NotHere` unless dlt created each table with every column of its rows
    and knows the push pipeline's schema (the ``_dlt_loads`` row points at its version)."""
    for table, batch in batches.items():
        have = _columns(con, warehouse.dataset, table)
        if LOAD_ID_COLUMN not in have or not set(batch.column_names) <= have:
            raise _NotHere(f"{table} lacks columns dlt has to add")
    known = con.execute(  # type: ignore[attr-defined]
        f"SELECT 1 FROM {quoted(warehouse.dataset)}._dlt_version WHERE schema_name = ? LIMIT 1",
        [warehouse.push_pipeline_name],
    ).fetchall()  # all: a result left unfinished blocks the connection's next statement
    if not known:
        raise _NotHere("dlt has not stored the push pipeline's schema")


def write(warehouse: Warehouse, mirror: pa.Table | None, results: pa.Table | None) -> bool:
    """Merge ``mirror`` into ``contacts`` and append ``results`` to ``push_results`` in one
    transaction; False (nothing written) when it must go through dlt (see the module).

    Args:
        warehouse: The push's warehouse (its lock held by the caller).
        mirror: :func:`pipelines.sink.learned.contacts_table`'s rows, or None.
        results: :func:`pipelines.sink.results.results_table`'s rows, or None.
    """
    if not warehouse.is_duckdb or not Path(warehouse.duckdb_file).is_file():
        return False
    if not _pipeline_ready(warehouse):
        return False
    batches = {
        name: batch
        for name, batch in ((TABLE_NAME, mirror), (RESULTS_TABLE, results))
        if batch is not None and batch.num_rows
    }
    if not batches:
        return True
    import duckdb

    load_id = new_load_id()
    dataset = quoted(warehouse.dataset)
    try:
        with DuckDBSource(warehouse).sql_client() as client, client.begin_transaction():
            con = client.native_connection
            _check(con, warehouse, batches)
            for name, batch in batches.items():
                rows = with_load_id(batch, load_id)
                table = client.make_qualified_table_name(name)
                if name == TABLE_NAME:
                    merge_by_key(con, table, quoted(PRIMARY_KEY), rows)
                else:
                    append(con, table, rows)
            record_load(con, dataset, load_id, warehouse.push_pipeline_name)
    except _NotHere as exc:
        log.info("recording the push through dlt: %s", exc)
        return False
    except (duckdb.Error, pa.ArrowException) as exc:
        log.info("recording the push by SQL failed, recording it through dlt: %s", exc)
        return False
    return True


def load(warehouse: Warehouse, mirror: pa.Table | None, results: pa.Table | None) -> dlt.Pipeline:
    """Record the same rows as :func:`write` in one load of the push's dlt pipeline (any
    destination; creates the tables and evolves their columns).

    Returns:
        The push's pipeline.

    Raises:
        Exception: The load failed (dlt wraps destination errors in many types).
    """
    pipeline = warehouse.pipeline(warehouse.push_pipeline_name)
    # A push killed while loading left a package: dlt's run() would load it and drop the data
    # given to it (this run's results), so the package is loaded first, on its own.
    finish_pending(pipeline)
    resources = [r for r in (contacts_resource(mirror), results_resource(results)) if r is not None]
    if resources:
        pipeline.run(resources)
    return pipeline
