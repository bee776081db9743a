"""One sync's decisions: scan every page, re-scan after page shifts, confirm deletions.

The listing has no documented order and no server-side filter, and it shifts under inserts and
archives between page requests. So:

1. Scan: every page (page 1, then the rest concurrently); each contact is compared with the
   mirror and emitted when new, changed (either direction of ``updated_at``) or back from the
   dead. Unchanged contacts are not emitted.
2. Re-scan: when the pagination totals changed during the scan, or fewer distinct ids were seen
   than the listing claims, a shift may have hidden contacts: scan again (bounded). Whatever
   is still hidden is new / different at the next run, which picks it up.
3. Confirm: live warehouse contacts the last scan did not see are fetched one by one
   (concurrently). 404 ->
   re-emitted from the warehouse with ``is_deleted = true``; 200 -> live (a shift skipped it),
   emitted if changed. Nothing is marked deleted without its 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.client import LynkistClient
from pipelines.client.errors import NotFoundError
from pipelines.source.arrow import Converted, arrow_array, convert_contacts, fingerprints
from pipelines.source.mirror import (
    MAX_PASS,
    UNRELIABLE_FINGERPRINT,
    Decision,
    Mirror,
    read_rows,
    utc_now,
)
from pipelines.source.rejected import RejectedLog
from pipelines.source.safety import (
    DEFAULT_MAX_DELETE_SHARE,
    check_delete_share,
    check_same_tenant,
)
from pipelines.source.settings import BATCH_ROWS, PAGE_LIMIT, TIMESTAMP_TYPE
from pipelines.source.stats import SyncStats

if TYPE_CHECKING:  # dlt is imported on use (see pipelines.source.quick)
    from dlt.common.pipeline import SupportsPipeline

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)


class _Batcher:
    """Gathers filtered page tables into tables of about ``rows`` rows."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._tables: list[pa.Table] = []
        self._count = 0

    def add(self, table: pa.Table) -> pa.Table | None:
        if table.num_rows:
            self._tables.append(table)
            self._count += table.num_rows
        return self.flush() if self._count >= self.rows else None

    def flush(self) -> pa.Table | None:
        if not self._tables:
            return None
        # Unknown API fields may appear on some pages only: missing columns become nulls.
        table = pa.concat_tables(self._tables, promote_options="default")
        self._tables, self._count = [], 0
        return table


class Reconciler:
    """Runs the scan / re-scan / confirm steps and yields the Arrow tables to load.

    Args:
        client: The API client (its paginator and concurrent map are used).
        mirror: The warehouse's current contents (empty for a first run or a full refresh).
        stats: Counters to fill.
        pipeline: The pipeline, to read archived contacts' full rows back; None disables
            re-reading (only possible when the mirror is empty), unless ``open_pipeline`` is
            given.
        page_limit: Contacts per page.
        max_rescans: Extra scans allowed after a shift was detected.
        batch_rows: Rows per yielded table.
        rejected: Where values that could not be stored as sent are collected (a new, empty
            log when None).
        max_delete_share: Largest share of the live mirror this run may mark deleted (see
            :func:`~pipelines.source.safety.check_delete_share`).
        verify_tenant: Check that the mirror is this key's tenant before anything is emitted:
            free when page 1 holds a contact the mirror knows, otherwise a few GETs
            (:func:`~pipelines.source.safety.check_same_tenant`).
        open_pipeline: Gives the pipeline when ``pipeline`` is None and archived contacts must
            be read back (a scan started before dlt was imported: :mod:`.quick`).
        yield_first_change: Yield the first rows to emit at once instead of gathering a
            batch (a scan started before dlt hands over to it at the first change).
    """

    def __init__(
        self,
        client: LynkistClient,
        mirror: Mirror,
        stats: SyncStats,
        *,
        pipeline: SupportsPipeline | None,
        page_limit: int = PAGE_LIMIT,
        max_rescans: int = 2,
        batch_rows: int = BATCH_ROWS,
        rejected: RejectedLog | None = None,
        max_delete_share: float = DEFAULT_MAX_DELETE_SHARE,
        verify_tenant: bool = False,
        open_pipeline: Callable[[], SupportsPipeline] | None = None,
        yield_first_change: bool = False,
    ) -> None:
        if not 0 <= max_rescans < MAX_PASS - 1:
            raise ValueError(f"max_rescans must be between 0 and {MAX_PASS - 2}")
        self.client = client
        self.mirror = mirror
        self.stats = stats
        self.pipeline = pipeline
        self.open_pipeline = open_pipeline
        self._yield_first = yield_first_change
        self._pages: Any = None  # the listing being scanned (see hold_pages)
        self.page_limit = page_limit
        self.max_rescans = max_rescans
        self._batcher = _Batcher(batch_rows)
        self.rejected = rejected if rejected is not None else RejectedLog()
        self.max_delete_share = max_delete_share
        self._live_before = len(mirror.live_ids())
        self._verify_tenant = verify_tenant and self._live_before > 0

    # -- full sync -------------------------------------------------------------------------

    def run(self) -> Iterator[pa.Table]:
        """Scan (and re-scan while the listing shifts), then confirm the missing contacts."""
        pass_no = 0
        for pass_no in range(1, self.max_rescans + 2):
            complete = yield from self._scan(pass_no)
            if complete:
                break
            if pass_no <= self.max_rescans:
                log.info("listing shifted during scan %d; scanning again", pass_no)
        candidates = self.mirror.missing_from(pass_no)
        self.stats.delete_candidates = len(candidates)
        yield from self._confirm(candidates, pass_no + 1)
        self.stats.set_phase("done")

    def refresh(self, ids: Sequence[str]) -> Iterator[pa.Table]:
        """Re-fetch only ``ids`` (contacts that conflicted in the previous load)."""
        yield from self._confirm(list(ids), 1)
        self.stats.set_phase("done")

    # -- steps -----------------------------------------------------------------------------

    def _decide(self, converted: Converted, pass_no: int) -> tuple[pa.Table, int]:
        """Filter the page to the rows to emit; returns them and the count of first sightings.

        A contact whose timestamps could not be read has no trustworthy fingerprint: it is
        treated as changed (loaded again) on every run until the API sends a readable one.
        """
        stats, mirror, table = self.stats, self.mirror, converted.table
        self.rejected.observe(converted)
        unreliable = converted.unreliable_ids()
        ids: list[str] = table["id"].to_pylist()
        self.rejected.saw(ids)
        mask: list[bool] = []
        distinct = 0
        for contact_id, fp in zip(ids, fingerprints(table), strict=True):
            if unreliable and contact_id in unreliable:
                fp = UNRELIABLE_FINGERPRINT
            if mirror.first_in_pass(contact_id, pass_no):
                distinct += 1
            decision = mirror.observe(contact_id, fp, pass_no)
            if decision is Decision.NEW:
                stats.new += 1
            elif decision is Decision.UPDATED:
                stats.updated += 1
            elif decision is Decision.RESTORED:
                stats.updated += 1
                stats.restored += 1
            elif decision is Decision.UNCHANGED:
                stats.unchanged += 1
            elif decision is Decision.LATE_CHANGE:
                stats.unchanged -= 1
                stats.updated += 1
            elif decision is Decision.CONFLICT:
                stats.conflict_ids.append(contact_id)
            mask.append(decision.emit)
        if all(mask):
            return table, distinct
        return table.filter(arrow_array(mask, pa.bool_())), distinct

    def hold_pages(self, pages: int | None) -> None:
        """Let up to ``pages`` listing pages arrive while the consumer of this scan is busy
        elsewhere (None: the usual bound); see :meth:`ContactPaginator.hold`."""
        if self._pages is not None:
            self._pages.hold(pages)

    def _emit(self, table: pa.Table) -> pa.Table | None:
        self.stats.rows_emitted += table.num_rows
        batch = self._batcher.add(table)
        if batch is None and self._yield_first and table.num_rows:
            self._yield_first = False
            batch = self._batcher.flush()
        return batch

    def _scan(self, pass_no: int) -> Generator[pa.Table, None, bool]:
        """One full scan; returns whether the listing held still (nothing can be missing)."""
        stats = self.stats
        stats.scan_passes = pass_no
        stats.set_phase("scan")
        totals: set[int] = set()
        distinct = 0
        pages = self._pages = self.client.iter_contact_pages(limit=self.page_limit)
        try:
            for page in pages:
                totals.add(page.total_items)
                stats.pages += 1
                stats.pages_total = pages.total_pages or 0
                rows = _valid_rows(page.data, page.page)
                self._recognise_tenant(rows)
                if rows:
                    emit, seen = self._decide(convert_contacts(rows), pass_no)
                    distinct += seen
                    if (batch := self._emit(emit)) is not None:
                        yield batch
                stats.notify()
        finally:
            pages.close()
            self._pages = None
        self._recognise_tenant([])  # an empty listing: nothing recognised it yet
        if (batch := self._batcher.flush()) is not None:
            yield batch
        # Complete when the listing held still: one total throughout, and every one seen.
        return len(totals) <= 1 and distinct >= max(totals, default=0)

    def _recognise_tenant(self, rows: list[dict[str, Any]]) -> None:
        """Once per run, before the first page is emitted: is the mirror this key's tenant?"""
        if not self._verify_tenant:
            return
        self._verify_tenant = False
        if any(row["id"] in self.mirror for row in rows):
            return  # page 1 lists a contact the mirror holds: same tenant, no request needed
        check_same_tenant(self.client, self.mirror)

    def _confirm(self, ids: list[str], pass_no: int) -> Iterator[pa.Table]:
        """GET each id: 200 -> compare and emit if changed; 404 -> mark deleted."""
        if not ids:
            return
        self.stats.set_phase("confirm")
        gone: list[str] = []
        found: list[Any] = []
        for contact_id, result in self.client.map_concurrent(self.client.get_contact, ids):
            if isinstance(result, NotFoundError):
                if self.mirror.is_live(contact_id):
                    gone.append(contact_id)
                continue
            if isinstance(result, Exception):
                raise result
            found.append(result)
            if len(found) >= self.page_limit:
                # one Arrow table per page-sized group: building a table per contact costs
                # more than the GET itself when thousands are confirmed
                yield from self._confirmed(found, pass_no)
                found = []
        yield from self._confirmed(found, pass_no)
        if (batch := self._batcher.flush()) is not None:
            yield batch
        if gone:
            # before anything is marked: a refusal fails the extract, so nothing is loaded
            check_delete_share(len(gone), self._live_before, self.max_delete_share)
            yield from self._deleted(gone)

    def _confirmed(self, found: list[Any], pass_no: int) -> Iterator[pa.Table]:
        rows = _valid_rows(found, None)
        if rows:
            emit, _ = self._decide(convert_contacts(rows), pass_no)
            if (batch := self._emit(emit)) is not None:
                yield batch

    def _deleted(self, ids: list[str]) -> Iterator[pa.Table]:
        if self.pipeline is None and self.open_pipeline is not None:
            self.pipeline = self.open_pipeline()
        if self.pipeline is None:
            raise RuntimeError("cannot mark contacts deleted without the pipeline to read them")
        deleted_at = utc_now()
        for rows in read_rows(self.pipeline, ids):
            n = rows.num_rows
            rows = rows.set_column(
                rows.schema.get_field_index("is_deleted"),
                "is_deleted",
                arrow_array([True] * n, pa.bool_()),
            )
            rows = rows.set_column(
                rows.schema.get_field_index("deleted_at"),
                "deleted_at",
                arrow_array([deleted_at] * n, TIMESTAMP_TYPE),
            )
            deleted_ids = pc.unique(rows["id"]).to_pylist()
            self.rejected.saw(deleted_ids)
            for contact_id in deleted_ids:
                self.mirror.mark_deleted(contact_id)
            self.stats.deleted += n
            self.stats.rows_emitted += n
            yield rows


def _valid_rows(data: list[Any], page: int | None) -> list[dict[str, Any]]:
    rows = [r for r in data if isinstance(r, dict) and isinstance(r.get("id"), str) and r["id"]]
    if len(rows) != len(data):
        where = f"page {page}" if page is not None else "GET /contacts/{id}"
        log.warning("skipped %d contact(s) without an id on %s", len(data) - len(rows), where)
    return rows
