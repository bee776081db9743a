"""Idempotency keys with Stripe's semantics, stored beside the contacts.

The first request with a key runs and its response is kept (per tenant, for the configured
time); a repeat with the same key and the same request gets that response again, without
running; a repeat with a different request is refused (422). Requests rejected by validation
store nothing, so a corrected retry with the same key still runs.

A repeat that arrives while the first request with its key is still being processed — queued
behind ``commit_delay_ms``, or running — is answered 409 at once (:class:`KeyInProgressGuard`),
as Stripe does: it neither waits for the first nor runs. That is the harsher of the behaviours
a real server may show, and the one a client must handle (retry later with the same key).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from lynkist_sandbox.db import Database
from lynkist_sandbox.ratelimit import ASGIApp, Receive, Scope, Send, send_json

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


IN_PROGRESS_DETAIL = (
    "A request with this Idempotency-Key is still being processed; retry later with the same key"
)


def _idempotency_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"idempotency-key":
            return bytes(value).decode("latin-1") or None
    return None


class KeyInProgressGuard:
    """Pure ASGI middleware: 409 for a keyed POST while one with the same key is in progress.

    Sits behind authentication (the tenant is known) and in front of the fault injector, so a
    request counts as in progress from the moment it is accepted — while ``commit_delay_ms``
    holds it, too — until its handler has finished (whether or not its client is still there).
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app
        self._busy: set[tuple[str, str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _idempotency_key(scope) if scope["type"] == "http" else None
        principal = scope.get("state", {}).get("principal")
        if key is None or scope["method"] != "POST" or principal is None:
            await self.app(scope, receive, send)
            return
        ident = (principal.tenant, key)
        if ident in self._busy:
            await send_json(send, 409, {"detail": IN_PROGRESS_DETAIL})
            return
        self._busy.add(ident)
        try:
            await self.app(scope, receive, send)
        finally:
            self._busy.discard(ident)
