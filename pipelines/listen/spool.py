"""The listener's durable spool: every accepted event, fsync'd before the sender gets its 2xx.

One SQLite file beside the warehouse (WAL journal, ``synchronous=FULL``: a commit returns only
once the WAL is fsync'd, so an acknowledged event survives ``kill -9`` and a power cut). The
event id is the table's unique key, so a retried or replayed delivery is recognised as a
duplicate forever, not only within a time window. Events are marked applied once they are in
the warehouse; a restart replays whatever is not. Applied events are kept a week
(:data:`KEEP_APPLIED_S`) for duplicate detection, then pruned.

Concurrent writers (the receiver's threads) share one connection behind a lock; SQLite would
serialise them anyway.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    tenant TEXT,
    contact_id TEXT,
    occurred_at TEXT,
    received_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    applied_at TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (seq) WHERE applied_at IS NULL;
"""


#: How long applied events stay in the spool: far beyond any sender's retry schedule.
KEEP_APPLIED_S: Final = 7 * 86_400.0


class SpoolError(Exception):
    """The spool cannot store or read events (disk full, unreadable file, ...)."""


@dataclass(frozen=True)
class SpooledEvent:
    """One accepted event, as kept in the spool.

    Attributes:
        seq: Arrival order in this spool.
        event_id: The sender's event id (unique).
        event: Event type, e.g. ``contact.updated``.
        tenant: The tenant named in the event.
        contact_id: ``data.id`` of the event, when it names a contact.
        occurred_at: The event's ``occurred_at`` (ISO-8601 text, as sent).
        received_at: When the listener stored it (ISO-8601, UTC).
        payload: The whole event body as received (JSON text).
    """

    seq: int
    event_id: str
    event: str
    tenant: str | None
    contact_id: str | None
    occurred_at: str | None
    received_at: str
    payload: str


def utc_now_iso() -> str:
    """Now, UTC, ISO-8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Spool:
    """The spool file; thread-safe.

    Args:
        path: The SQLite file (created with its directory when missing).

    Raises:
        SpoolError: The file cannot be opened or created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}") from None

    def add(self, event: SpooledEvent) -> bool:
        """Store ``event`` durably; False when its id is already in the spool (a duplicate).

        Raises:
            SpoolError: The event could not be stored (the sender must retry).
        """
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO events (event_id, event, tenant, contact_id, "
                    "occurred_at, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.event_id,
                        event.event,
                        event.tenant,
                        event.contact_id,
                        event.occurred_at,
                        event.received_at,
                        event.payload,
                    ),
                )
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot store the event: {exc}") from None
            return cursor.rowcount == 1

    def pending(self, limit: int) -> list[SpooledEvent]:
        """Up to ``limit`` events not yet applied, oldest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT seq, event_id, event, tenant, contact_id, occurred_at, received_at, "
                    "payload FROM events WHERE applied_at IS NULL ORDER BY seq LIMIT ?",
                    (limit,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot read the spool: {exc}") from None
        return [SpooledEvent(*row) for row in rows]

    def pending_count(self) -> int:
        """How many events wait to be applied."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM events WHERE applied_at IS NULL"
            ).fetchone()
        return int(row[0])

    def mark_applied(self, seqs: list[int]) -> None:
        """Record that these events are in the warehouse (one transaction)."""
        if not seqs:
            return
        stamp = utc_now_iso()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "UPDATE events SET applied_at = ? WHERE seq = ?", [(stamp, s) for s in seqs]
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise SpoolError(f"cannot update the spool: {exc}") from None

    def prune(self, keep_s: float) -> int:
        """Forget applied events older than ``keep_s`` seconds; returns how many.

        Their ids stop counting as duplicates in the spool (``contact_events`` still merges on
        the id, so a very late replay adds no second row).
        """
        horizon = datetime.fromtimestamp(datetime.now(UTC).timestamp() - keep_s, UTC)
        with self._lock:
            try:
                cursor = self._db.execute(
                    "DELETE FROM events WHERE applied_at IS NOT NULL AND applied_at < ?",
                    (horizon.isoformat(timespec="microseconds"),),
                )
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot prune the spool: {exc}") from None
        return cursor.rowcount

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
