"""The in-flight journal of a push (the push holds the warehouse's lock meanwhile:
:func:`pipelines.warehouse.warehouse_lock`, so two pushes never plan against the same mirror).

The journal records every ``POST /contacts/bulk`` before it is sent —
when, with which rows — and forgets it only once its outcome is known (an answer, or a lookup
of its rows after a lost answer). Single creates (``POST /contacts``, see
:mod:`pipelines.sink.cost`) are recorded the same way, each row with the ``Idempotency-Key`` it
is sent with, before any of them is sent. Whatever ends a push — ``kill -9``, Ctrl-C once or twice,
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
    """One row of a recorded call: its match key, the create payload that was sent, and the
    ``Idempotency-Key`` it was sent with (single creates; ``None`` for a bulk row)."""

    match_key: str | None
    payload: dict[str, Any]
    idempotency_key: str | None = None


@dataclass(frozen=True)
class InflightCall:
    """A call sent and not yet resolved.

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

    @property
    def keyed(self) -> bool:
        """Single creates, each row with its idempotency key (they can be sent again)."""
        return bool(self.rows) and all(row.idempotency_key for row in self.rows)


def _blind(call_id: str) -> dict[str, Any]:
    # A call whose rows cannot be read: treated as sent just now (its grace is waited out).
    return {"call_id": call_id, "sent_at": time.time(), "match_on": "", "rows": []}


def _older_calls(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The calls of an older version's journal: ``{"calls": {id: call}}``, or before that one
    record of a call without rows (its grace is waited out)."""
    if "calls" not in data and "sent_at" in data:
        return {"legacy": {**data, "call_id": "legacy", "match_on": "", "rows": []}}
    calls = data["calls"]
    return {str(k): {**v, "call_id": str(k)} for k, v in calls.items() if isinstance(v, dict)}


class InflightJournal:
    """Calls sent and not yet resolved, durable across crashes and interruptions.

    An append-only log under an ``flock`` of a side file (so a straggling worker thread of an
    interrupted process and the next run never lose each other's records).

    Args:
        path: The journal file (beside the warehouse).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Calls this object began and has not resolved: when none is left, the file is checked
        # and removed if every call in it (any process's) is resolved.
        self._open: set[str] = set()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.with_suffix(self.path.suffix + ".lock").open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, Any]]:
        """The unresolved calls by id, from the log (or an older version's single JSON file)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning(
                "in-flight journal %s is unreadable (%s): waiting out a grace", self.path, exc
            )
            return {"unreadable": _blind("unreadable")}
        calls: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if "op" not in entry:  # an older version's whole file (written on one line)
                    calls.update(_older_calls(entry))
                elif entry["op"] == "begin":
                    calls[str(entry["call_id"])] = entry
                elif entry["op"] == "resolve":
                    for call_id in entry["call_ids"]:
                        calls.pop(str(call_id), None)
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("in-flight journal %s: line %d is unreadable", self.path, number + 1)
                calls[f"unreadable-{number}"] = _blind(f"unreadable-{number}")
        return calls

    def _append(self, entry: dict[str, Any], *, sync: bool) -> None:
        line = (json.dumps(entry, default=str, separators=(",", ":")) + "\n").encode()
        with self.path.open("a+b") as handle:
            if handle.seek(0, os.SEEK_END):
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # an older version's file, or a torn last line
                    line = b"\n" + line
            handle.write(line)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())

    def pending(self) -> list[InflightCall]:
        """The unresolved calls, oldest first (from this or any earlier push)."""
        with self._locked():
            calls = self._read()
        out = []
        for call_id, raw in calls.items():
            try:
                rows = tuple(
                    JournalRow(
                        row.get("match_key"),
                        dict(row.get("payload") or {}),
                        row.get("idempotency_key"),
                    )
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

    def begin(
        self,
        match_on: str,
        rows: Sequence[tuple[str | None, Mapping[str, Any]]],
        *,
        idempotency_keys: Sequence[str] | None = None,
    ) -> str:
        """Record a call about to be sent; durable (fsynced) before it returns.

        Args:
            match_on: The push's match key label.
            rows: ``(match_key, payload)`` of each row of the call.
            idempotency_keys: The key each row is sent with (single creates), in row order.

        Returns:
            The call's id, for :meth:`resolve`.
        """
        if idempotency_keys is not None and len(idempotency_keys) != len(rows):
            raise ValueError("one idempotency key per row")
        keys = list(idempotency_keys) if idempotency_keys is not None else [None] * len(rows)
        call_id = uuid.uuid4().hex
        entry = {
            "op": "begin",
            "call_id": call_id,
            "sent_at": time.time(),
            "pid": os.getpid(),
            "match_on": match_on,
            "rows": [
                {"match_key": key, "payload": dict(payload)}
                | ({"idempotency_key": ikey} if ikey else {})
                for (key, payload), ikey in zip(rows, keys, strict=True)
            ],
        }
        with self._locked():
            self._append(entry, sync=True)
            self._open.add(call_id)
        return call_id

    def resolve(self, call_ids: Iterable[str]) -> None:
        """Forget calls whose outcome is known (answered, or their rows looked up)."""
        ids = sorted(set(call_ids))
        if not ids:
            return
        with self._locked():
            if self.path.exists():
                self._append({"op": "resolve", "call_ids": ids}, sync=False)
            self._open.difference_update(ids)
            if not self._open and not self._read():
                self.path.unlink(missing_ok=True)
