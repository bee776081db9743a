"""One SQLite connection shared by every request, serialized by a re-entrant lock.

A single connection (``check_same_thread=False``) behind a lock is the simplest setup that is
safe with concurrent requests and works the same for an in-memory and a file database.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    archived_at TEXT,
    status TEXT,
    tags TEXT NOT NULL,  -- "\x1fa\x1fb\x1f": exact tag match with instr()
    search_text TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE INDEX IF NOT EXISTS contacts_live_order
    ON contacts (tenant, created_at DESC, id DESC) WHERE archived_at IS NULL;
CREATE INDEX IF NOT EXISTS contacts_live_status
    ON contacts (tenant, status, created_at DESC, id DESC) WHERE archived_at IS NULL;
CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    stored_at REAL NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys (stored_at);
"""


class Database:
    """The sandbox's SQLite database (a file, or memory when ``path`` is ``None``)."""

    def __init__(self, path: str | None = None) -> None:
        """Open (and create if needed) the database."""
        self.path = path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self._depth = 0
        if path:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the block in one transaction (nested blocks join it)."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()
