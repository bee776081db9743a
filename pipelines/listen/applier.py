"""The listener's applier: spooled events → warehouse, in micro-batches, holding the lock briefly.

A background thread flushes as soon as events wait, at most once per ``flush_interval`` seconds
(start to start), and at once when ``batch_events`` events wait. One flush: take the oldest
pending events from the spool, collect the touched contacts as fetched (default mode: the
:class:`~pipelines.listen.prefetch.Prefetcher` has sent those GETs as the events arrived; the
flush waits only for the ones still in flight, before it takes the lock), take the warehouse's
lock (waiting a bounded time while a sync holds it), complete whatever a killed run left behind,
load ``contact_events`` and the touched contacts in one dlt load, refresh the views the first
time, release the lock, then mark the events applied in the spool. A crash anywhere before the
last step replays the batch on restart; both tables merge on their keys, so a replay writes
the same rows again rather than new ones.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.client import LynkistClient, RetryPolicy
from pipelines.listen import direct, warehouse
from pipelines.listen.prefetch import DEFAULT_WORKERS, Prefetcher
from pipelines.listen.source import (
    CONTACT_CHANGES,
    EVENTS_TABLE,
    FetchedContacts,
    listen_source,
)
from pipelines.listen.spool import KEEP_APPLIED_S, Spool, SpooledEvent
from pipelines.source.runner import SyncSettings
from pipelines.source.settings import TABLE_NAME
from pipelines.source.stats import SyncStats

log = logging.getLogger(__name__)

#: Shortest pause between two flushes: the warehouse is free for readers at least this long.
MIN_GAP_S = 0.2


@dataclass
class FlushResult:
    """What one flush did.

    Attributes:
        events: Events loaded into ``contact_events``.
        contacts: Distinct contacts the events changed.
        written: Contact rows written (new, updated, archived).
        requests: API requests sent since the previous flush (0 with ``trust_payload``): the
            GETs go out as events arrive, so they are counted at the flush that follows them.
        duration_s: Wall time, lock wait included.
        fetch_wait_s: Of which waiting for GETs still in flight (default mode).
        finished_at: When it ended (UTC).
    """

    events: int = 0
    contacts: int = 0
    written: int = 0
    requests: int = 0
    duration_s: float = 0.0
    fetch_wait_s: float = 0.0
    finished_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "events": self.events,
            "contacts": self.contacts,
            "written": self.written,
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "fetch_wait_s": round(self.fetch_wait_s, 3),
            "finished_at": self.finished_at.isoformat(),
        }


@dataclass
class ApplierSettings:
    """How the applier works.

    Attributes:
        warehouse: The warehouse (and API) settings shared with ``lynkist sync``.
        flush_interval: Least seconds between two flushes' starts (an event waits at most this
            long for its flush to start, less when a flush is not already recent).
        batch_events: Flush sooner once this many events wait; also the most per flush.
        trust_payload: Apply payloads (ordering guard) instead of fetching contacts.
        lock_wait_s: How long a flush waits for the warehouse lock before trying later.
        fetch_workers: Threads sending the default mode's GETs.
    """

    warehouse: SyncSettings
    flush_interval: float = 1.0
    batch_events: int = 1000
    trust_payload: bool = False
    lock_wait_s: float = 600.0
    fetch_workers: int = DEFAULT_WORKERS


@dataclass
class ApplierTotals:
    """Totals since start (``/healthz`` and the exit summary)."""

    flushes: int = 0
    events: int = 0
    contacts: int = 0
    written: int = 0
    requests: int = 0
    failures: int = 0
    last_flush: datetime | None = None
    last_error: str | None = None


def describe(exc: BaseException) -> str:
    """One line for the log: the innermost cause (dlt wraps the destination's error twice)."""
    seen: set[int] = set()
    inner = exc
    while (nxt := inner.__cause__ or inner.__context__) is not None and id(nxt) not in seen:
        seen.add(id(inner))
        inner = nxt
    text = str(inner).strip()
    return f"{type(inner).__name__}: {text.splitlines()[0] if text else ''}"


def next_flush_due(
    last_start: float,
    last_end: float,
    *,
    waiting: int,
    backlog: bool,
    interval: float,
    batch_events: int,
) -> float | None:
    """When the next flush may start (monotonic seconds); None while no event is known to wait.

    A flush starts as soon as events wait, at most once per ``interval`` counted from the
    previous flush's start — not its end, so a flush's own duration does not add a whole
    interval to every event's wait — and at once when ``batch_events`` wait or the previous
    flush left a backlog; never sooner than :data:`MIN_GAP_S` after the previous one ended, so
    readers get the warehouse between flushes.

    Args:
        last_start: When the previous flush started (``-inf``: none yet).
        last_end: When it ended.
        waiting: Events stored since it started.
        backlog: It took a full batch (more are probably pending).
        interval: The least time between two flushes' starts.
        batch_events: A full batch.
    """
    free = last_end + MIN_GAP_S
    if backlog or waiting >= batch_events:
        return free
    if waiting > 0:
        return max(last_start + interval, free)
    return None


def _touched(batch: list[SpooledEvent]) -> dict[str, int]:
    """Contact id → how many of the batch's events change it (first-seen order)."""
    counts: dict[str, int] = {}
    for event in batch:
        if event.event in CONTACT_CHANGES and event.contact_id:
            counts[event.contact_id] = counts.get(event.contact_id, 0) + 1
    return counts


class Applier:
    """Flushes the spool into the warehouse from one background thread.

    Args:
        spool: The spool the receiver writes.
        settings: What to flush into, and how.
        on_flush: Called after every flush that loaded something.
    """

    def __init__(
        self,
        spool: Spool,
        settings: ApplierSettings,
        *,
        on_flush: Callable[[FlushResult], None] | None = None,
    ) -> None:
        self.spool = spool
        self.settings = settings
        self.totals = ApplierTotals()
        self._on_flush = on_flush
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        # events stored since the last flush began (a flush resets it before reading its batch,
        # so an event is either in that batch or counted here)
        self._pending_hint = 0
        self._hint_lock = threading.Lock()
        self._views_done = False
        self._client: LynkistClient | None = None
        self._prefetcher: Prefetcher | None = None
        self._requests_seen = 0

    # -- wiring ----------------------------------------------------------------------------

    def notify(self, event: SpooledEvent | None = None) -> None:
        """One more event was stored: fetch its contact (default mode), and wake the flushing
        thread when the first one starts waiting (it flushes once the interval allows) and
        when a whole batch waits."""
        if event is not None and self._prefetcher is not None:
            self._prefetcher.stored(event)
        with self._hint_lock:
            self._pending_hint += 1
            wake = self._pending_hint in (1, self.settings.batch_events)
        if wake:
            self._wake.set()

    def health(self) -> dict[str, Any]:
        """Queue depth and last flush, for ``/healthz``."""
        totals = self.totals
        return {
            "queue_depth": self.spool.pending_count(),
            "last_flush": totals.last_flush.isoformat() if totals.last_flush else None,
            "flushes": totals.flushes,
            "applied_events": totals.events,
            "last_error": totals.last_error,
        }

    def start(self) -> None:
        """Start the fetching threads (default mode) and the flushing thread (the spool's
        backlog goes first)."""
        if not self.settings.trust_payload:
            self._prefetcher = Prefetcher(self._api(), workers=self.settings.fetch_workers)
        self._thread = threading.Thread(target=self._run, name="lynkist-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then flush everything still pending."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        try:
            while self.spool.pending_count():
                if self.flush().events == 0:
                    break
        except Exception as exc:  # nothing is lost: the next start replays the spool
            self.totals.failures += 1
            self.totals.last_error = describe(exc)
            log.error(
                "final flush failed; %d event(s) stay spooled for the next start: %s",
                self.spool.pending_count(),
                self.totals.last_error,
            )
        if self._prefetcher is not None:
            self._prefetcher.stop()
        if self._client is not None:
            self._client.close()

    def _run(self) -> None:
        interval = self.settings.flush_interval
        # the spool's backlog from a previous run goes first
        last_start = last_end = -math.inf
        backlog, failed_in_row = True, 0
        while not self._stop.is_set():
            with self._hint_lock:
                waiting = self._pending_hint
            due = next_flush_due(
                last_start,
                last_end,
                waiting=waiting,
                backlog=backlog,
                interval=interval,
                batch_events=self.settings.batch_events,
            )
            if failed_in_row:
                # Mostly a reader holding the DuckDB file for a moment: retry soon, then back
                # off to the flush interval.
                due = last_end + min(interval, 0.05 * 2**failed_in_row)
            wait = interval if due is None else due - time.monotonic()
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
                continue
            last_start = time.monotonic()
            try:
                backlog = self.flush().events >= self.settings.batch_events
                failed_in_row = 0
            except Exception as exc:  # keep listening: the events stay spooled for a retry
                self.totals.failures += 1
                self.totals.last_error = describe(exc)
                log.error("flush failed (events stay in the spool): %s", self.totals.last_error)
                failed_in_row += 1
            last_end = time.monotonic()

    # -- one flush -------------------------------------------------------------------------

    def _api(self) -> LynkistClient:
        if self._client is None:
            wh = self.settings.warehouse
            self._client = LynkistClient(
                wh.base_url,
                wh.api_key,
                timeout=wh.timeout,
                max_concurrency=wh.max_concurrency,
                retry=wh.retry or RetryPolicy(),
            )
        return self._client

    def _fetcher(self) -> Prefetcher:
        if self._prefetcher is None:  # flushing without start() (the final flush, tests)
            self._prefetcher = Prefetcher(self._api(), workers=self.settings.fetch_workers)
        return self._prefetcher

    def flush(self) -> FlushResult:
        """Apply up to ``batch_events`` pending events now; returns what was done.

        Raises:
            warehouse.WarehouseBusyError: A sync held the lock longer than ``lock_wait_s``.
            Exception: The API or the destination failed (the events stay pending).
        """
        with self._flush_lock:
            started = time.monotonic()
            with self._hint_lock:
                self._pending_hint = 0
            batch = self.spool.pending(self.settings.batch_events)
            result = FlushResult()
            if not batch:
                return result
            counts = _touched(batch)
            fetched = None
            if not self.settings.trust_payload:
                # outside the lock: the GETs were sent as the events arrived
                fetched = FetchedContacts(self._fetcher().answers(counts))
                result.fetch_wait_s = time.monotonic() - started
            wh = self.settings.warehouse
            with warehouse.locked(wh, self.settings.lock_wait_s):
                pipeline = warehouse.open_pipeline(wh)
                warehouse.finish_pending(pipeline)
                stats = self._load(pipeline, batch, fetched)
                if not self._views_done and wh.create_views:
                    warehouse.create_views(pipeline)
                    self._views_done = True
            self.spool.mark_applied([e.seq for e in batch])
            if self._prefetcher is not None:
                self._prefetcher.written(counts)
            if self.totals.flushes % 100 == 0:
                self.spool.prune(KEEP_APPLIED_S)
            result.events = len(batch)
            result.contacts = len(counts)
            result.written = stats.new + stats.updated + stats.deleted
            if self._client is not None:
                total = self._client.stats.snapshot().requests
                result.requests, self._requests_seen = total - self._requests_seen, total
            result.duration_s = time.monotonic() - started
            result.finished_at = datetime.now(UTC)
            self._record(result)
            return result

    def _load(
        self,
        pipeline: Any,
        batch: list[SpooledEvent],
        fetched: FetchedContacts | None,
    ) -> SyncStats:
        """Load the batch: by SQL when the tables are ready (:mod:`direct`), else through dlt.

        Returns:
            What the contacts resource decided (new, updated, deleted, unchanged).
        """
        trust = self.settings.trust_payload
        stats = SyncStats()
        source = listen_source(batch, fetched=fetched, stats=stats, trust_payload=trust)
        if direct.usable(pipeline, [EVENTS_TABLE, TABLE_NAME]):
            tables = {name: list(res) for name, res in source.selected_resources.items()}
            if direct.apply(pipeline, tables, {EVENTS_TABLE: "event_id", TABLE_NAME: "id"}):
                return stats
            # a new table or column: dlt evolves the schema
            stats = SyncStats()
            source = listen_source(batch, fetched=fetched, stats=stats, trust_payload=trust)
        pipeline.run(source)
        return stats

    def _record(self, result: FlushResult) -> None:
        totals = self.totals
        totals.flushes += 1
        totals.events += result.events
        totals.contacts += result.contacts
        totals.written += result.written
        totals.requests += result.requests
        totals.last_flush = result.finished_at
        totals.last_error = None
        if self._on_flush is not None:
            self._on_flush(result)


__all__ = ["EVENTS_TABLE", "Applier", "ApplierSettings", "ApplierTotals", "FlushResult"]
