"""A sync's scan started before dlt is imported, over a mirror read straight from DuckDB.

Importing dlt and setting up its pipeline cost more CPU than listing 20,000 contacts, and most
scheduled syncs find nothing, or little, to write. So on a DuckDB warehouse that dlt has set up,
:func:`start` runs the very scan the ``contacts`` resource runs (the same
:class:`~pipelines.source.reconcile.Reconciler`: the same decisions, tenant check, confirmed
deletions and delete share), over the same mirror (:func:`~pipelines.source.mirror.add_chunk`
on the same columns), read with DuckDB directly, until the first table to load:

- none at all, and nothing for ``contacts_rejected`` (:meth:`StartedScan.nothing_to_write`):
  the warehouse already equals the API; the run ends without importing dlt;
- otherwise the runner runs the rest of the scan here too (:meth:`StartedScan.gather`), and
  writes a few plain changes by SQL (:mod:`pipelines.source.direct`), still without dlt;
- anything more or unusual is handed, where the scan stands, to the resource
  (``lynkist_source(started=...)``), which loads it through dlt as usual. The listing goes on
  arriving (up to :data:`HELD_PAGES` pages wait) while dlt is imported.

Only when nothing can make the direct read differ from the one dlt's resource would make: the
destination is a DuckDB file, not ``--full-refresh``, dlt's local state of the pipeline exists,
no load package is left pending by an interrupted run (it must be loaded before the mirror is
read), the contacts table and the contact views exist, and ``contacts_rejected`` has no open
problem (this run could resolve it). Otherwise — or when the file cannot be read — the run
takes dlt's path from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.client import LynkistClient
from pipelines.source.mirror import Mirror, add_chunk
from pipelines.source.reconcile import Reconciler
from pipelines.source.rejected import RejectedLog
from pipelines.source.settings import REJECTED_TABLE, TABLE_NAME
from pipelines.source.stats import SyncStats
from pipelines.warehouse.location import DUCKDB_MEMORY_LIMIT, Warehouse
from pipelines.warehouse.recovery import has_pending_packages

if TYPE_CHECKING:
    from dlt.common.pipeline import SupportsPipeline

__all__ = ["StartedScan", "start"]

log = logging.getLogger(__name__)


#: Listing pages that may wait while dlt is imported after the first change (as many as
#: ``lynkist sync`` lets wait while it starts: see ``prefetch_contact_pages``).
HELD_PAGES = 256


@dataclass
class StartedScan:
    """A scan begun without dlt: the tables found so far (if any) and the rest of the scan.

    Attributes:
        reconciler: The scan's reconciler (its mirror and counters).
        rejected: Its problem log.
        stats: Its counters.
        views: The analysis views the warehouse holds (for the summary of a run that ends here).
        columns: The columns of the warehouse's contacts table.
    """

    reconciler: Reconciler
    rejected: RejectedLog
    stats: SyncStats
    views: list[str]
    columns: frozenset[str]
    _found: list[pa.Table]
    _rest: Iterator[pa.Table]
    _complete: bool = False

    def nothing_to_write(self) -> bool:
        """Whether the whole scan ran and found the warehouse equal to the API."""
        return (
            not self._found
            and self.stats.rows_emitted == 0
            and not self.stats.conflict_ids
            and not self.rejected.problems
            and not self.rejected.resolved()
        )

    def gather(self, max_rows: int, max_bytes: int) -> bool:
        """Run the rest of the scan here, keeping what it emits, up to a bound.

        Returns:
            Whether the scan is complete with at most ``max_rows`` rows and ``max_bytes`` bytes
            to write (:attr:`found`); otherwise it stops past the bound, to be continued by
            dlt (:meth:`rest`).
        """
        self.reconciler.hold_pages(None)  # the consumer is back
        try:
            for table in self._rest:
                self._found.append(table)
                if self._over(max_rows, max_bytes):
                    return False
        finally:
            self.reconciler.hold_pages(HELD_PAGES)  # until whoever goes on takes over
        self._complete = not self._over(max_rows, max_bytes)
        return self._complete

    def _over(self, max_rows: int, max_bytes: int) -> bool:
        return (
            sum(t.num_rows for t in self._found) > max_rows
            or sum(t.nbytes for t in self._found) > max_bytes
        )

    @property
    def found(self) -> list[pa.Table]:
        """The tables to load that the scan has emitted so far (all of them once complete)."""
        return list(self._found)

    @property
    def complete(self) -> bool:
        """Whether :meth:`gather` ran the whole scan: :attr:`found` is everything to load."""
        return self._complete

    def rest(self) -> Iterator[pa.Table]:
        """The tables to load: the ones found so far, then the rest of the scan."""
        found, self._found = self._found, []
        self.reconciler.hold_pages(None)  # the consumer is back
        yield from found
        yield from self._rest


def _eligible(warehouse: Warehouse) -> bool:
    if not warehouse.is_duckdb or not warehouse.duckdb_file.is_file():
        return False
    working_dir = warehouse.working_dir / warehouse.pipeline_name_resolved
    if not (working_dir / "state.json").is_file():
        return False  # dlt would first restore its state from the destination
    return not has_pending_packages(working_dir)


@dataclass
class _Warehouse:
    mirror: Mirror
    views: list[str]
    columns: frozenset[str]


def _read(warehouse: Warehouse, *, with_views: bool) -> _Warehouse | None:
    """The mirror and the views, or None when the quick path does not apply (see module)."""
    import duckdb

    from transforms.views import ALL_VIEWS, CONTACT_VIEWS

    dataset = warehouse.dataset
    with duckdb.connect(
        str(warehouse.duckdb_file),
        read_only=True,
        config={"memory_limit": DUCKDB_MEMORY_LIMIT},
    ) as con:
        objects = dict(
            con.execute(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_catalog = current_database() AND table_schema = ?",
                [dataset],
            ).fetchall()
        )
        if objects.get(TABLE_NAME) != "BASE TABLE":
            return None  # a first run: everything is new
        if with_views and not all(objects.get(view) == "VIEW" for view in CONTACT_VIEWS):
            return None  # views to create
        if objects.get(REJECTED_TABLE) == "BASE TABLE":
            (open_problems,) = con.execute(
                f'SELECT count(*) FROM "{dataset}"."{REJECTED_TABLE}" WHERE resolved_at IS NULL'
            ).fetchone() or (0,)
            if open_problems:
                return None  # this run may resolve them: dlt writes contacts_rejected
        columns = frozenset(
            name
            for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_catalog = current_database() AND table_schema = ? "
                "AND table_name = ?",
                [dataset, TABLE_NAME],
            ).fetchall()
        )
        mirror = Mirror()
        reader: Any = con.sql(
            f'SELECT "id", "updated_at", "created_at", "is_deleted" FROM "{dataset}"."{TABLE_NAME}"'
        ).to_arrow_reader(50_000)
        for batch in reader:
            add_chunk(mirror, pa.Table.from_batches([batch]))
    views = [view for view in ALL_VIEWS if objects.get(view) == "VIEW"]
    return _Warehouse(mirror, views, columns)


def start(
    warehouse: Warehouse,
    client: LynkistClient,
    stats: SyncStats,
    *,
    open_pipeline: Callable[[], SupportsPipeline],
    with_views: bool = True,
    **reconciler_options: Any,
) -> StartedScan | None:
    """Scan until the first change (or the end), without dlt; None if not applicable.

    Args:
        warehouse: The warehouse to compare with (see the module for when this applies).
        client: The API client (may already be listing, see ``prefetch_contact_pages``).
        stats: The counters to fill.
        open_pipeline: Gives the dlt pipeline, should archived contacts have to be read back.
        with_views: The run keeps the analysis views: the contact views must exist already.
        **reconciler_options: ``page_limit``, ``max_rescans``, ``max_delete_share``.
    """
    if not _eligible(warehouse):
        return None
    stats.set_phase("mirror")
    try:
        found = _read(warehouse, with_views=with_views)
    except Exception as exc:  # the file is busy or odd: dlt's path says what is wrong
        log.debug("reading the mirror directly failed, using dlt: %s", exc)
        return None
    if found is None:
        return None
    rejected = RejectedLog()
    reconciler = Reconciler(
        client,
        found.mirror,
        stats,
        pipeline=None,
        open_pipeline=open_pipeline,
        rejected=rejected,
        verify_tenant=True,
        yield_first_change=True,
        **reconciler_options,
    )
    scan = reconciler.run()
    first = next(scan, None)
    reconciler.hold_pages(HELD_PAGES)  # while dlt is imported
    return StartedScan(
        reconciler,
        rejected,
        stats,
        found.views,
        found.columns,
        [] if first is None else [first],
        scan,
    )
