"""Idempotency keys with Stripe's semantics, stored beside the contacts.

The first request with a key runs and its response is kept (per tenant, for the configured
time); a repeat with the same key and the same request gets that response again, without
running; a repeat with a different request is refused (422). Requests rejected by validation
store nothing, so a corrected retry with the same key still runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from lynkist_sandbox.db import Database

MAX_KEY_LENGTH = 255
_PURGE_EVERY = 256


@dataclass(frozen=True)
class StoredResponse:
    """A response kept for a key."""

    request_hash: str
    status: int
    body: str


def request_fingerprint(endpoint: str, body: Any) -> str:
    """Hash of the endpoint and the parsed body (key order and whitespace do not matter)."""
    canonical = json.dumps([endpoint, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    """Responses by ``(tenant, key)``, expiring after ``ttl_s`` seconds."""

    def __init__(self, db: Database, ttl_s: float) -> None:
        """Use an open database; keys expire after ``ttl_s`` seconds."""
        self.db = db
        self.ttl_s = ttl_s
        self._puts = 0

    def get(self, tenant: str, key: str) -> StoredResponse | None:
        """The response stored for a live key, or ``None``."""
        with self.db.lock:
            row = self.db.conn.execute(
                "SELECT request_hash, status, body, stored_at FROM idempotency_keys "
                "WHERE tenant = ? AND key = ?",
                (tenant, key),
            ).fetchone()
        if row is None or row[3] < time.time() - self.ttl_s:
            return None
        return StoredResponse(row[0], row[1], row[2])

    def put(self, tenant: str, key: str, request_hash: str, status: int, body: str) -> None:
        """Keep a response for a key (inside the caller's transaction, when there is one)."""
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO idempotency_keys "
                "(tenant, key, request_hash, status, body, stored_at) VALUES (?, ?, ?, ?, ?, ?)",
                (tenant, key, request_hash, status, body, now),
            )
            self._puts += 1
            if self._puts % _PURGE_EVERY == 0:
                conn.execute(
                    "DELETE FROM idempotency_keys WHERE stored_at < ?", (now - self.ttl_s,)
                )

    def clear(self) -> None:
        """Forget every key."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM idempotency_keys")
