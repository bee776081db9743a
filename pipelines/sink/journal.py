"""The in-flight journal of a push (the push holds the warehouse's lock meanwhile:
:func:`pipelines.warehouse.warehouse_lock`, so two pushes never plan against the same mirror).

The journal records every ``POST /contacts/bulk`` before it is sent —
when, with which rows — and forgets it only once its outcome is known (an answer, or a lookup
of its rows after a lost answer). Whatever ends a push — ``kill -9``, Ctrl-C once or twice,
SIGTERM — the calls it left unresolved stay in the journal, whoever holds the lock: a server may
still commit such a call seconds later (it was already queued). The next push settles them
first (:func:`pipelines.sink.reconcile.settle_previous`): it looks their rows up until every one
is found or the call can no longer commit, and only then plans — so a batch committed late is
seen as existing rather than created again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalRow:
    """One row of a bulk call: its match key and the create payload that was sent."""

    match_key: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class InflightCall:
    """A bulk call sent and not yet resolved.

    Attributes:
        call_id: Identifies the call in the journal.
        sent_at: Wall-clock time (epoch seconds) the call was about to be sent.
        match_on: The ``--match-on`` of the push that sent it (its rows' keys follow it).
        rows: The rows sent; empty for a record written by an older version (the next run
            then waits out the whole grace period).
        pid: The process that sent it.
    """

    call_id: str
    sent_at: float
    match_on: str
    rows: tuple[JournalRow, ...] = field(default_factory=tuple)
    pid: int | None = None


class InflightJournal:
    """Bulk calls sent and not yet resolved, durable across crashes and interruptions.

    Every change is a read-modify-write of one JSON file under an ``flock`` of a side file (so
    a straggling worker thread of an interrupted process and the next run never lose each
    other's records), written to a temporary file, fsynced and renamed over the journal.

    Args:
        path: The journal file (beside the warehouse).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.with_suffix(self.path.suffix + ".lock").open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # Unreadable: treat it as one call of unknown rows sent just now (wait it out).
            log.warning(
                "in-flight journal %s is unreadable (%s): waiting out a grace", self.path, exc
            )
            return {"calls": {"unreadable": {"sent_at": time.time(), "match_on": "", "rows": []}}}
        if not isinstance(data, dict):
            return {}
        if "calls" not in data and "sent_at" in data:  # an older version's single record
            return {"calls": {"legacy": {**data, "match_on": "", "rows": []}}}
        return data

    def _write(self, data: dict[str, Any]) -> None:
        if not data.get("calls"):
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(self.path.suffix + f".{os.getpid()}.tmp")
        with tmp.open("w") as handle:
            json.dump(data, handle, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def pending(self) -> list[InflightCall]:
        """The unresolved calls, oldest first (from this or any earlier push)."""
        with self._locked():
            calls = self._read().get("calls", {})
        out = []
        for call_id, raw in calls.items():
            try:
                rows = tuple(
                    JournalRow(row.get("match_key"), dict(row.get("payload") or {}))
                    for row in raw.get("rows") or []
                )
                out.append(
                    InflightCall(
                        str(call_id),
                        float(raw["sent_at"]),
                        str(raw.get("match_on") or ""),
                        rows,
                        raw.get("pid"),
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                out.append(InflightCall(str(call_id), time.time(), ""))
        return sorted(out, key=lambda call: call.sent_at)

    def begin(self, match_on: str, rows: Sequence[tuple[str | None, Mapping[str, Any]]]) -> str:
        """Record a bulk call about to be sent; durable before it returns.

        Args:
            match_on: The push's match key label.
            rows: ``(match_key, payload)`` of each row of the call.

        Returns:
            The call's id, for :meth:`resolve`.
        """
        call_id = uuid.uuid4().hex
        record = {
            "sent_at": time.time(),
            "pid": os.getpid(),
            "match_on": match_on,
            "rows": [{"match_key": key, "payload": dict(payload)} for key, payload in rows],
        }
        with self._locked():
            data = self._read()
            data.setdefault("calls", {})[call_id] = record
            self._write(data)
        return call_id

    def resolve(self, call_ids: Iterable[str]) -> None:
        """Forget calls whose outcome is known (answered, or their rows looked up)."""
        ids = set(call_ids)
        if not ids:
            return
        with self._locked():
            data = self._read()
            calls = data.get("calls", {})
            for call_id in ids:
                calls.pop(call_id, None)
            self._write(data)
