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
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.pipeline import SupportsPipeline

from pipelines.client import LynkistClient
from pipelines.client.errors import NotFoundError
from pipelines.source.arrow import contacts_table, fingerprints, row_fingerprints
from pipelines.source.mirror import MAX_PASS, Decision, Mirror, read_rows, utc_now
from pipelines.source.settings import BATCH_ROWS, PAGE_LIMIT, TIMESTAMP_TYPE
from pipelines.source.stats import SyncStats

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
            re-reading (only possible when the mirror is empty).
        page_limit: Contacts per page.
        max_rescans: Extra scans allowed after a shift was detected.
        batch_rows: Rows per yielded table.
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
    ) -> None:
        if not 0 <= max_rescans < MAX_PASS - 1:
            raise ValueError(f"max_rescans must be between 0 and {MAX_PASS - 2}")
        self.client = client
        self.mirror = mirror
        self.stats = stats
        self.pipeline = pipeline
        self.page_limit = page_limit
        self.max_rescans = max_rescans
        self._batcher = _Batcher(batch_rows)

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

    def _decide(self, rows: list[dict[str, Any]], pass_no: int) -> tuple[pa.Table | None, int]:
        """The Arrow table of the rows to emit (None if none), and the count of first sightings.

        A page of contacts the mirror does not know (a first sync) is converted to Arrow whole,
        as all of it loads; any other page is decided on the dicts, and only its rows to load
        are converted (a sync with nothing to load builds no Arrow array at all).
        """
        stats, mirror = self.stats, self.mirror
        table: pa.Table | None = None
        if not any(row["id"] in mirror for row in rows):
            table = contacts_table(rows)
            stamps = fingerprints(table)
        else:
            try:
                stamps = row_fingerprints(rows)
            except ValueError:
                # The table conversion raises the same error; should Arrow accept a form
                # Python's parser does not, its fingerprints are the reference.
                table = contacts_table(rows)
                stamps = fingerprints(table)
        mask: list[bool] = []
        distinct = 0
        for row, fp in zip(rows, stamps, strict=True):
            contact_id: str = row["id"]
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
        if not any(mask):
            return None, distinct
        if table is not None:
            return (table if all(mask) else table.filter(pa.array(mask, pa.bool_()))), distinct
        return contacts_table([row for row, keep in zip(rows, mask, strict=True) if keep]), distinct

    def _emit(self, table: pa.Table) -> pa.Table | None:
        self.stats.rows_emitted += table.num_rows
        return self._batcher.add(table)

    def _scan(self, pass_no: int) -> Generator[pa.Table, None, bool]:
        """One full scan; returns whether the listing held still (nothing can be missing)."""
        stats = self.stats
        stats.scan_passes = pass_no
        stats.set_phase("scan")
        totals: set[int] = set()
        distinct = 0
        pages = self.client.iter_contact_pages(limit=self.page_limit)
        try:
            for page in pages:
                totals.add(page.total_items)
                stats.pages += 1
                stats.pages_total = pages.total_pages or 0
                rows = _valid_rows(page.data, page.page)
                if rows:
                    emit, seen = self._decide(rows, pass_no)
                    distinct += seen
                    if emit is not None and (batch := self._emit(emit)) is not None:
                        yield batch
                stats.notify()
        finally:
            pages.close()
        if (batch := self._batcher.flush()) is not None:
            yield batch
        # Complete when the listing held still: one total throughout, and every one seen.
        return len(totals) <= 1 and distinct >= max(totals, default=0)

    def _confirm(self, ids: list[str], pass_no: int) -> Iterator[pa.Table]:
        """GET each id: 200 -> compare and emit if changed; 404 -> mark deleted."""
        if not ids:
            return
        self.stats.set_phase("confirm")
        gone: list[str] = []
        for contact_id, result in self.client.map_concurrent(self.client.get_contact, ids):
            if isinstance(result, NotFoundError):
                if self.mirror.is_live(contact_id):
                    gone.append(contact_id)
                continue
            if isinstance(result, Exception):
                raise result
            rows = _valid_rows([result], None)
            if rows:
                emit, _ = self._decide(rows, pass_no)
                if emit is not None and (batch := self._emit(emit)) is not None:
                    yield batch
        if (batch := self._batcher.flush()) is not None:
            yield batch
        if gone:
            yield from self._deleted(gone)

    def _deleted(self, ids: list[str]) -> Iterator[pa.Table]:
        if self.pipeline is None:
            raise RuntimeError("cannot mark contacts deleted without the pipeline to read them")
        deleted_at = utc_now()
        for rows in read_rows(self.pipeline, ids):
            n = rows.num_rows
            rows = rows.set_column(
                rows.schema.get_field_index("is_deleted"),
                "is_deleted",
                pa.array([True] * n, pa.bool_()),
            )
            rows = rows.set_column(
                rows.schema.get_field_index("deleted_at"),
                "deleted_at",
                pa.array([deleted_at] * n, TIMESTAMP_TYPE),
            )
            for contact_id in pc.unique(rows["id"]).to_pylist():
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
