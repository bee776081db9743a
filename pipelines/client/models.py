"""Plain data returned by the client: pages, bulk results, request statistics."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BulkResult", "ClientStats", "ContactPage"]


@dataclass
class ContactPage:
    """One page of ``GET /contacts`` or ``POST /contacts/search``.

    Attributes:
        data: The contacts, as the API returned them (dicts; unknown fields kept).
        page: 1-based page number.
        limit: Page size requested.
        total_items: Matching contacts on the server when the page was served.
        total_pages: Pages at that moment (0 for an empty tenant).
        has_next: Whether the server says a later page exists.
        has_prev: Whether the server says an earlier page exists.
    """

    data: list[dict[str, Any]]
    page: int
    limit: int
    total_items: int
    total_pages: int
    has_next: bool
    has_prev: bool

    @classmethod
    def from_json(cls, body: Any) -> ContactPage:
        """Build from the decoded response body.

        Raises:
            ValueError: When the body does not have the documented shape.
        """
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ValueError("expected an object with a 'data' list")
        pagination = body.get("pagination")
        if not isinstance(pagination, dict):
            raise ValueError("expected a 'pagination' object")
        try:
            return cls(
                data=body["data"],
                page=int(pagination["page"]),
                limit=int(pagination["limit"]),
                total_items=int(pagination["total_items"]),
                total_pages=int(pagination["total_pages"]),
                has_next=bool(pagination["has_next"]),
                has_prev=bool(pagination["has_prev"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad 'pagination' object: {exc!r}") from None


@dataclass
class BulkResult:
    """Outcome of ``POST /contacts/bulk``.

    Attributes:
        total: Items sent.
        created: Items created.
        failed: Items rejected.
        errors: ``{"index": i, "error": message}`` per rejected item (index into the sent list).
    """

    total: int
    created: int
    failed: int
    errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: Any) -> BulkResult:
        """Build from the decoded response body.

        Raises:
            ValueError: When the body does not have the documented shape.
        """
        if not isinstance(body, dict):
            raise ValueError("expected an object")
        try:
            errors = body.get("errors") or []
            if not isinstance(errors, list):
                raise TypeError("'errors' is not a list")
            return cls(
                total=int(body["total"]),
                created=int(body["created"]),
                failed=int(body["failed"]),
                errors=errors,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad bulk result: {exc!r}") from None

    @property
    def failed_indexes(self) -> dict[int, str]:
        """``{index: error}`` for the rejected items."""
        return {int(e["index"]): str(e.get("error", "")) for e in self.errors if "index" in e}


@dataclass
class ClientStats:
    """Request counters of one client, safe to update from many threads.

    Attributes:
        requests: HTTP attempts sent (retries included).
        retries: Attempts that were retries of an earlier failed attempt.
        throttled: 429 answers seen.
        errors: Calls that ended in an exception after retries.
        transport_errors: Attempts that got no HTTP answer (timeouts, dropped connections).
        by_method: Attempts per HTTP method, e.g. ``{"GET": 12, "PATCH": 3}``.
        by_endpoint: Attempts per endpoint, e.g. ``{"POST /contacts/bulk": 2}``.
        by_status: Answers per HTTP status.
    """

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    errors: int = 0
    transport_errors: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    by_endpoint: dict[str, int] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, repr=False, compare=False, init=False
    )

    def record_request(self, method: str, endpoint: str) -> None:
        """Count one attempt."""
        with self._lock:
            self.requests += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1
            key = f"{method} {endpoint}"
            self.by_endpoint[key] = self.by_endpoint.get(key, 0) + 1

    def record_status(self, status: int) -> None:
        """Count one HTTP answer (and a 429 as throttled)."""
        with self._lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1
            if status == 429:
                self.throttled += 1

    def record_retry(self) -> None:
        """Count one retry."""
        with self._lock:
            self.retries += 1

    def record_error(self) -> None:
        """Count one call that raised."""
        with self._lock:
            self.errors += 1

    def record_transport_error(self) -> None:
        """Count one attempt without an HTTP answer."""
        with self._lock:
            self.transport_errors += 1

    def snapshot(self) -> ClientStats:
        """A consistent copy, detached from further updates."""
        with self._lock:
            return ClientStats(
                requests=self.requests,
                retries=self.retries,
                throttled=self.throttled,
                errors=self.errors,
                transport_errors=self.transport_errors,
                by_method=dict(self.by_method),
                by_endpoint=dict(self.by_endpoint),
                by_status=dict(self.by_status),
            )

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict (for JSON summaries)."""
        snap = self.snapshot()
        return {
            "requests": snap.requests,
            "retries": snap.retries,
            "throttled": snap.throttled,
            "errors": snap.errors,
            "transport_errors": snap.transport_errors,
            "by_method": snap.by_method,
            "by_endpoint": snap.by_endpoint,
            "by_status": snap.by_status,
        }

    @property
    def writes(self) -> int:
        """Attempts with a write method (POST other than search, PATCH, DELETE)."""
        with self._lock:
            return sum(
                n
                for key, n in self.by_endpoint.items()
                if key.split(" ", 1)[0] in ("POST", "PATCH", "DELETE")
                and not key.endswith("/search")
            )
