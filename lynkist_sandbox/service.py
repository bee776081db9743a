"""What each endpoint does to the data, independent of HTTP: writes, idempotency, webhooks."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from lynkist_sandbox.idempotency import request_fingerprint
from lynkist_sandbox.models import ContactCreate, ContactUpdate, describe_errors
from lynkist_sandbox.state import SandboxState
from lynkist_sandbox.store import ContactFilter, dumps


class IdempotencyConflictError(Exception):
    """An idempotency key was reused with a different request."""


@dataclass(frozen=True)
class WriteResult:
    """A write's answer: status, JSON text, and whether it was replayed from a key."""

    status: int
    body: str
    replayed: bool = False


class ContactService:
    """The operations behind the public endpoints (and the scan hooks)."""

    def __init__(self, state: SandboxState) -> None:
        """Operate on one sandbox's state."""
        self.state = state

    def create(self, tenant: str, body: ContactCreate, idempotency_key: str | None) -> WriteResult:
        """Create a contact, or replay the answer stored for the idempotency key.

        Raises:
            IdempotencyConflictError: The key was used before with a different request.
        """
        fields = body.model_dump()
        sent = body.model_dump(exclude_unset=True)
        return self._idempotent(
            tenant, "create", sent, idempotency_key, lambda: self._create_one(tenant, fields)
        )

    def _create_one(self, tenant: str, fields: dict[str, Any]) -> WriteResult:
        contact = self.state.contacts.create(tenant, fields, self.state.clock.now_iso())
        self._emit("contact.created", tenant, contact, contact["created_at"])
        return WriteResult(201, dumps(contact))

    def bulk(self, tenant: str, items: list[Any], idempotency_key: str | None) -> WriteResult:
        """Create each valid item; report each invalid one with its index; never abort.

        The key is honoured only when the ``idempotent_bulk`` setting is on.

        Raises:
            IdempotencyConflictError: The key was used before with a different request.
        """
        key = idempotency_key if self.state.config.idempotent_bulk else None
        return self._idempotent(tenant, "bulk", items, key, lambda: self._bulk(tenant, items))

    def _bulk(self, tenant: str, items: list[Any]) -> WriteResult:
        valid: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                valid.append(ContactCreate.model_validate(item).model_dump())
            except ValidationError as exc:
                errors.append({"index": index, "error": describe_errors(exc)})
        created = []
        with self.state.db.transaction():
            for fields in valid:
                created.append(
                    self.state.contacts.create(tenant, fields, self.state.clock.now_iso())
                )
        for contact in created:
            self._emit("contact.created", tenant, contact, contact["created_at"])
        result = {
            "total": len(items),
            "created": len(created),
            "failed": len(errors),
            "errors": errors,
        }
        return WriteResult(201, dumps(result))

    def _idempotent(
        self, tenant: str, endpoint: str, sent: Any, key: str | None, run: Any
    ) -> WriteResult:
        if key is None:
            result: WriteResult = run()
            return result
        fingerprint = request_fingerprint(endpoint, sent)
        store = self.state.idempotency
        # One transaction: a concurrent retry with the same key waits, then replays.
        with self.state.db.transaction():
            stored = store.get(tenant, key)
            if stored is not None:
                if stored.request_hash != fingerprint:
                    raise IdempotencyConflictError(
                        "Idempotency-Key was already used with a different request; "
                        "use a new key for a new request"
                    )
                return WriteResult(stored.status, stored.body, replayed=True)
            result = run()
            store.put(tenant, key, fingerprint, result.status, result.body)
        return result

    def _emit(self, event: str, tenant: str, contact: dict[str, Any], at: str) -> None:
        self.state.webhooks.emit(event, tenant, contact, occurred_at=at)

    def get(self, tenant: str, contact_id: str) -> dict[str, Any] | None:
        """A live contact of the tenant, or ``None``."""
        return self.state.contacts.get(tenant, contact_id)

    def update(self, tenant: str, contact_id: str, body: ContactUpdate) -> dict[str, Any] | None:
        """Apply a partial update; an empty update changes nothing (and emits nothing)."""
        changes = body.changes()
        if not changes:
            return self.state.contacts.get(tenant, contact_id)
        contact = self.state.contacts.update(
            tenant, contact_id, changes, self.state.clock.now_iso()
        )
        if contact is not None:
            self._emit("contact.updated", tenant, contact, contact["updated_at"])
        return contact

    def archive(self, tenant: str, contact_id: str) -> bool:
        """Soft-delete a live contact; ``False`` when there is none."""
        now = self.state.clock.now_iso()
        contact = self.state.contacts.archive(tenant, contact_id, now)
        if contact is None:
            return False
        self._emit("contact.deleted", tenant, contact, now)
        return True

    def add_activity(
        self, tenant: str, contact_id: str, kind: str, fields: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Record a note or a communication on a live contact and emit its event.

        The API has no endpoint for them (the dashboard records them); the sandbox's admin API
        stands in, so receivers see ``contact.note_added`` / ``contact.communication_added``.

        Args:
            tenant: The contact's tenant.
            contact_id: A live contact.
            kind: ``"note"`` or ``"communication"``.
            fields: The note's or communication's fields (an ``id`` is added).

        Returns:
            The event's ``data`` (``{"id": contact_id, kind: {...}}``), or ``None`` when the
            contact is not live.
        """
        if self.state.contacts.get(tenant, contact_id) is None:
            return None
        now = self.state.clock.now_iso()
        record = {"id": str(uuid.uuid4()), "created_at": now, **fields}
        data = {"id": contact_id, kind: record}
        event = "contact.note_added" if kind == "note" else "contact.communication_added"
        self._emit(event, tenant, data, now)
        return data

    def page(self, tenant: str, flt: ContactFilter, page: int, limit: int) -> bytes:
        """A page as served (JSON bytes); then the scan hooks due after this page run."""
        docs, total = self.state.contacts.page(tenant, flt, page, limit)
        total_pages = math.ceil(total / limit)
        pagination = {
            "page": page,
            "limit": limit,
            "total_items": total,
            "total_pages": total_pages,
            "has_next": page < total_pages,
            "has_prev": page > 1,
        }
        text = '{"data":[' + ",".join(docs) + '],"pagination":' + dumps(pagination) + "}"
        for hook in self.state.hooks.take(tenant, page):
            self.run_ops(tenant, hook.ops)
        return text.encode()

    def run_ops(self, tenant: str, ops: list[dict[str, Any]]) -> None:
        """Run scan-hook ops (validated when registered) as if a client sent them."""
        for op in ops:
            kind = op["op"]
            if kind == "create":
                self._create_one(tenant, ContactCreate.model_validate(op["contact"]).model_dump())
            elif kind == "update":
                self.update(tenant, op["id"], ContactUpdate.model_validate(op["fields"]))
            elif kind == "archive":
                self.archive(tenant, op["id"])
