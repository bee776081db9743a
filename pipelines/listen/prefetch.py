"""The default mode's GETs, sent as events arrive instead of inside the flush.

Fetching every touched contact inside a flush put the GETs' time on the critical path of every
event and held the warehouse's lock meanwhile: at 500 events/s a flush of 500 GETs took longer
than the flush interval, and flushes fell further and further behind. Here a few threads fetch
each contact as soon as an event for it is stored; the flush takes the answers (waiting only for
the GETs still in flight) and holds the lock only to write.

Never an older state: an answer stands for an event only when the GET started after the event was
stored (the server commits before it sends the event), or when the event is provably older than
the answer — its ``updated_at``/``created_at`` (a deletion's ``occurred_at``) is not newer than
the fetched contact's, or the answer is a 404 and a deletion of that contact is known (the API
has no undelete). Any other event that arrives meanwhile makes the contact be fetched again.

Coalescing: an event that finds its contact's GET queued, in flight, or already answered with a
state at least as new costs no GET of its own, so requests never exceed events, and several
events for one contact arriving close together (or out of order) cost one GET. A contact
already fetched since the last flush had its answers (one being edited in a burst) is not
fetched again at once but when the next flush asks for it: its later changes in that window
cost one GET together, as when every GET waited for the flush, while a contact's first change
in a window is still fetched at once.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.client import LynkistClient
from pipelines.client.errors import NotFoundError
from pipelines.listen.source import CONTACT_CHANGES, DELETED, contact_stamp, event_stamp
from pipelines.listen.spool import SpooledEvent

#: An answer: the contact, or the 404 that says it is gone.
Answer = dict[str, Any] | NotFoundError

#: Threads sending GETs: enough to keep up with 500 events/s at a few ms per GET; more only add
#: GIL contention with the receiver in the same process.
DEFAULT_WORKERS = 8


@dataclass
class _Contact:
    """What is known about one contact's GETs."""

    pending: int = 0  # stored events not yet written by a flush
    queued: bool = False
    in_flight: bool = False
    answer: Answer | None = None
    error: Exception | None = None
    answer_stamp: int | None = None  # the fetched contact's updated_at/created_at (µs)
    deletion_known: bool = False
    deferred: bool = False  # to fetch when the flush asks (already fetched in this window)
    # events stored while the GET was in flight: their stamps (None: no usable stamp)
    arrived: list[int | None] = field(default_factory=list)


class Prefetcher:
    """Fetches the contacts that stored events touch, from a few background threads.

    Args:
        client: The API client (its limiter bounds the GETs in flight).
        workers: Threads sending GETs.
    """

    def __init__(self, client: LynkistClient, *, workers: int = DEFAULT_WORKERS) -> None:
        self.client = client
        self._contacts: dict[str, _Contact] = {}
        # contacts whose GET started since the last flush had its answers
        self._fetched_in_window: set[str] = set()
        self._queue: deque[str] = deque()
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # answers changed (the flush waits on it)
        # a contact to fetch: one sleeping worker wakes, not all (they share the GIL with the
        # receiver)
        self._work = threading.Condition(lock)
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._run, name=f"lynkist-fetch-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the threads (GETs in flight finish first)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            self._work.notify_all()
        for thread in self._threads:
            thread.join()

    # -- the receiver's side -------------------------------------------------------------------

    def stored(self, event: SpooledEvent) -> None:
        """An event was stored: fetch its contact unless an answer already covers it."""
        if event.event not in CONTACT_CHANGES or not event.contact_id:
            return
        stamp = _stamp_of(event)
        with self._cond:
            state = self._contacts.setdefault(event.contact_id, _Contact())
            state.pending += 1
            if event.event == DELETED:
                state.deletion_known = True
            if state.queued:
                return  # the GET has not started: it will see this change
            if state.in_flight:
                state.arrived.append(stamp)  # judged when the answer comes
                return
            if not _covers(state, stamp):
                self._fetch_soon(event.contact_id, state)

    # -- the flush's side ----------------------------------------------------------------------

    def answers(self, counts: Mapping[str, int]) -> dict[str, Answer]:
        """The current answer for each contact of a batch, waiting for GETs still needed.

        Args:
            counts: Contact id → how many of the batch's events touch it.

        Raises:
            Exception: A GET failed (the contact is fetched again at the next try).
        """
        with self._cond:
            for contact_id, n in counts.items():
                state = self._contacts.get(contact_id)
                if state is None:  # replayed from the spool: never seen by this process
                    state = self._contacts[contact_id] = _Contact(pending=n)
                idle = not state.queued and not state.in_flight
                if idle and (state.deferred or state.error is not None or state.answer is None):
                    self._schedule(contact_id, state)
            while True:
                if self._stopping:
                    raise RuntimeError("the listener is stopping")
                states = [self._contacts[contact_id] for contact_id in counts]
                failed = next((s.error for s in states if s.error is not None), None)
                if failed is not None:
                    raise failed
                for contact_id, state in zip(counts, states, strict=True):
                    if state.deferred and not state.in_flight:  # held for this flush: now
                        self._schedule(contact_id, state)
                if all(s.answer is not None and not s.queued and not s.in_flight for s in states):
                    # the next window begins: a contact's first change in it is fetched at once
                    self._fetched_in_window.clear()
                    return {
                        contact_id: s.answer
                        for contact_id, s in zip(counts, states, strict=True)
                        if s.answer is not None
                    }
                self._cond.wait()

    def written(self, counts: Mapping[str, int]) -> None:
        """A flush wrote these contacts: forget those with no event left to write."""
        with self._cond:
            for contact_id, n in counts.items():
                state = self._contacts.get(contact_id)
                if state is None:
                    continue
                state.pending -= n
                if state.pending <= 0 and not (state.queued or state.in_flight or state.deferred):
                    del self._contacts[contact_id]

    # -- the GETs ------------------------------------------------------------------------------

    def _fetch_soon(self, contact_id: str, state: _Contact) -> None:
        """Fetch now, or when the flush asks if the contact was fetched in this window."""
        if contact_id in self._fetched_in_window:
            state.deferred = True
        else:
            self._schedule(contact_id, state)

    def _schedule(self, contact_id: str, state: _Contact) -> None:
        state.queued, state.error, state.deferred = True, None, False
        self._queue.append(contact_id)
        self._work.notify()

    def _next(self) -> tuple[str, _Contact] | None:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._work.wait()
            contact_id = self._queue.popleft()
            state = self._contacts[contact_id]
            state.queued, state.in_flight = False, True
            self._fetched_in_window.add(contact_id)
            state.arrived.clear()  # this GET starts after them: it covers them
            return contact_id, state

    def _run(self) -> None:
        while (item := self._next()) is not None:
            contact_id, state = item
            answer: Answer | None = None
            error: Exception | None = None
            try:
                answer = self.client.limiter.run(self.client.get_contact, contact_id)
            except NotFoundError as exc:
                answer = exc
            except Exception as exc:  # the flush that needs it raises it
                error = exc
            with self._cond:
                state.in_flight = False
                state.answer, state.error = answer, error
                state.answer_stamp = contact_stamp(answer) if isinstance(answer, dict) else None
                arrived, state.arrived = state.arrived, []
                if error is None and not all(_covers(state, stamp) for stamp in arrived):
                    self._fetch_soon(contact_id, state)
                self._cond.notify_all()


def _stamp_of(event: SpooledEvent) -> int | None:
    try:
        data = json.loads(event.payload).get("data")
    except (ValueError, AttributeError):
        return None
    return event_stamp(event, data) if isinstance(data, dict) else None


def _covers(state: _Contact, stamp: int | None) -> bool:
    """Whether the contact's answer is at least as new as an event with ``stamp``."""
    if state.error is not None or state.answer is None:
        return False
    if isinstance(state.answer, NotFoundError):
        return state.deletion_known  # gone for good; else it may not have existed yet
    return stamp is not None and state.answer_stamp is not None and stamp <= state.answer_stamp
