"""A typed client of the sandbox admin API (``/_sandbox``), for tests, benchmarks and demos."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from lynkist_sandbox.admin import ADMIN_HEADER


class SandboxAdmin:
    """Thin httpx wrapper; every method raises ``httpx.HTTPStatusError`` on a non-2xx answer."""

    def __init__(self, base_url: str, admin_token: str, *, timeout: float = 60.0) -> None:
        """Talk to the sandbox at ``base_url`` with the admin token."""
        self._http = httpx.Client(
            base_url=base_url,
            headers={ADMIN_HEADER: admin_token},
            timeout=timeout,
            trust_env=False,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"/_sandbox{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def requests(self) -> list[dict[str, Any]]:
        """Every logged public-API request, oldest first."""
        entries: list[dict[str, Any]] = self._call("GET", "/requests")["requests"]
        return entries

    def clear_requests(self) -> None:
        """Clear the request log."""
        self._call("DELETE", "/requests")

    def set_faults(self, **fields: Any) -> dict[str, Any]:
        """Replace the fault spec (fields of ``FaultSpec``; missing ones are 0)."""
        spec: dict[str, Any] = self._call("PUT", "/faults", json=fields)
        return spec

    def set_settings(self, **fields: Any) -> dict[str, Any]:
        """Change latency_ms, rate_limit, burst, retry_after or idempotent_bulk live."""
        settings: dict[str, Any] = self._call("PUT", "/settings", json=fields)
        return settings

    def settings(self) -> dict[str, Any]:
        """The live settings."""
        settings: dict[str, Any] = self._call("GET", "/settings")
        return settings

    def set_clock_offset(self, seconds: float) -> None:
        """Shift the server clock by ``seconds`` (negative: into the past)."""
        self._call("PUT", "/clock", json={"offset_seconds": seconds})

    def add_scan_hook(self, tenant: str, after_page: int, ops: list[dict[str, Any]]) -> None:
        """Run ``ops`` once, right after the tenant's first list/search answer for a page."""
        self._call(
            "POST", "/scan-hooks", json={"tenant": tenant, "after_page": after_page, "ops": ops}
        )

    def seed(
        self, tenant: str = "acme", n: int = 100, seed: int = 0, updated_share: float = 0.6
    ) -> int:
        """Generate ``n`` demo contacts into ``tenant``; returns how many were stored."""
        body = {"tenant": tenant, "n": n, "seed": seed, "updated_share": updated_share}
        created: int = self._call("POST", "/seed", json=body)["created"]
        return created

    def plant(self, contacts: Sequence[dict[str, Any]], tenant: str = "acme") -> list[str]:
        """Store contacts exactly as given, bypassing validation; returns their ids.

        For reproducing records the real API may return: a lone surrogate (``"\\ud83d"``), a
        25 MB ``company``, ``updated_at`` of ``""`` or ``1767225600``, a new field ``firstName``.
        ``id`` and ``created_at`` are filled in when missing; a contact with the same id is
        replaced (so a test can also repair a record).
        """
        # ensure_ascii: a lone surrogate travels as the \\ud83d escape (UTF-8 cannot carry it)
        body = json.dumps({"tenant": tenant, "contacts": list(contacts)}, ensure_ascii=True)
        ids: list[str] = self._call(
            "POST", "/plant", content=body, headers={"Content-Type": "application/json"}
        )["ids"]
        return ids

    def contacts(self, tenant: str = "acme") -> list[dict[str, Any]]:
        """Ground truth: every contact of the tenant, archived ones with ``archived_at``."""
        contacts: list[dict[str, Any]] = self._call("GET", "/contacts", params={"tenant": tenant})[
            "contacts"
        ]
        return contacts

    def reset(self) -> None:
        """Delete contacts, idempotency keys, logs, hooks and webhook deliveries."""
        self._call("POST", "/reset")

    def restore_defaults(self) -> None:
        """A clean server, as freshly started: no data, faults, latency, rate limit or skew."""
        self.reset()
        self.set_faults()
        self.set_settings(
            latency_ms=0.0,
            rate_limit=None,
            burst=None,
            retry_after="seconds",
            idempotent_bulk=False,
        )
        self.set_clock_offset(0.0)
        self.clear_requests()

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Webhook delivery attempts so far."""
        deliveries: list[dict[str, Any]] = self._call("GET", "/webhooks")["deliveries"]
        return deliveries

    def add_note(
        self, contact_id: str, body: str, *, tenant: str = "acme", author: str | None = None
    ) -> dict[str, Any]:
        """Attach a note to a contact; the sandbox emits ``contact.note_added``."""
        payload: dict[str, Any] = {"tenant": tenant, "body": body}
        if author is not None:
            payload["author"] = author
        result: dict[str, Any] = self._call("POST", f"/contacts/{contact_id}/notes", json=payload)
        return result

    def add_communication(
        self, contact_id: str, *, tenant: str = "acme", **fields: Any
    ) -> dict[str, Any]:
        """Record a communication (channel, direction, subject, body); emits
        ``contact.communication_added``."""
        result: dict[str, Any] = self._call(
            "POST", f"/contacts/{contact_id}/communications", json={"tenant": tenant, **fields}
        )
        return result

    def update_many(
        self, updates: dict[str, dict[str, Any]], tenant: str = "acme"
    ) -> dict[str, str | None]:
        """Change many contacts in one call (each as its own PATCH, each emitting its own
        ``contact.updated``); returns id -> new ``updated_at`` (None: no live contact)."""
        result: dict[str, str | None] = self._call(
            "POST", "/updates", json={"tenant": tenant, "updates": updates}
        )["updated"]
        return result

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
