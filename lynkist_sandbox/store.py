"""Contacts of every tenant, in SQLite, with the list order kept in memory.

Each row keeps the contact's JSON as served (``doc``), so a page is answered by joining stored
strings, plus the columns the filters need. Unfiltered pages (the connector's full scans) are
cut from a per-tenant sorted list of ``(created_at, id)`` kept beside the table, so page 2 000
of 200 000 contacts costs the same as page 1 (no ``OFFSET`` walk). Filtered pages use SQL.
"""

from __future__ import annotations

import bisect
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lynkist_sandbox.clock import normalize_ts
from lynkist_sandbox.db import Database
from transforms.contact import CONTACT_FIELDS

SEARCH_FIELDS = ("first_name", "last_name", "email", "company")
#: Separates fields in ``search_text`` so a term never matches across two fields.
_SEP = "\x1f"


# One encoder: json.dumps with options builds a new encoder per call (slow when seeding 100k).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Compact JSON, as served."""
    return _ENCODER.encode(value)


_ASCII_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def wire(value: Any) -> str:
    """Compact JSON that is valid UTF-8 whatever ``value`` holds.

    A planted contact may carry a lone surrogate (``"\\ud83d"``): a Python string that UTF-8
    cannot encode. Such a value is served escaped (``\\ud83d``), as a JSON API would send it.
    """
    text = _ENCODER.encode(value)
    try:
        text.encode()
    except UnicodeEncodeError:
        return _ASCII_ENCODER.encode(value)
    return text


def _storable(text: str) -> str:
    """``text`` with lone surrogates replaced (for the index columns, which SQLite encodes)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _tags_text(tags: Any) -> str:
    """Tags as ``<SEP>a<SEP>b<SEP>``: an exact-tag filter is one ``instr``."""
    if not isinstance(tags, list) or not tags:
        return ""
    return _SEP + _SEP.join(t for t in tags if isinstance(t, str)) + _SEP


def _search_text(contact: dict[str, Any]) -> str:
    return _SEP.join(
        value.casefold() if isinstance(value := contact.get(f), str) else "" for f in SEARCH_FIELDS
    )


def _ready_made(raw: dict[str, Any]) -> dict[str, Any]:
    """A complete contact from generated or imported data, timestamps in the served format."""
    contact = {name: raw.get(name) for name in CONTACT_FIELDS}
    contact["id"] = str(raw.get("id") or uuid.uuid4())
    contact["tags"] = list(raw.get("tags") or [])
    contact["custom_fields"] = dict(raw.get("custom_fields") or {})
    contact["created_at"] = _timestamp(raw["created_at"])
    contact["updated_at"] = _timestamp(raw.get("updated_at"))
    return contact


def _timestamp(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 27 and value[19] == "." and value[26] == "Z":
        return value  # already in the served format: skip parsing (seeding 100k rows)
    return normalize_ts(value)


def _order_key(created_at: Any) -> str:
    return created_at if isinstance(created_at, str) else wire(created_at)


@dataclass(frozen=True)
class ContactFilter:
    """Filters of a list or search request; empty strings mean no filter."""

    search: str | None = None
    status: str | None = None
    tag: str | None = None

    def is_empty(self) -> bool:
        """True when nothing is filtered."""
        return not (self.search or self.status is not None or self.tag is not None)

    def sql(self) -> tuple[str, list[Any]]:
        """The WHERE clause (live contacts of one tenant) and its parameters, tenant first."""
        clauses = ["tenant = ?", "archived_at IS NULL"]
        params: list[Any] = []
        if self.search:
            clauses.append("instr(search_text, ?) > 0")
            params.append(self.search.casefold())
        if self.status is not None:
            clauses.append("status = ?")
            params.append(self.status)
        if self.tag is not None:
            clauses.append("instr(tags, ?) > 0")
            params.append(_SEP + self.tag + _SEP)
        return " AND ".join(clauses), params


class ContactStore:
    """Create, read, update, archive and page through contacts."""

    def __init__(self, db: Database) -> None:
        """Use an open database."""
        self.db = db
        self._order: dict[str, list[tuple[str, str]]] = {}

    # -- writes -------------------------------------------------------------------------------

    def create(self, tenant: str, fields: dict[str, Any], now: str) -> dict[str, Any]:
        """Store a new contact from validated fields and return it."""
        contact = {name: fields.get(name) for name in CONTACT_FIELDS}
        contact["id"] = str(uuid.uuid4())
        contact["tags"] = list(fields.get("tags") or [])
        contact["custom_fields"] = dict(fields.get("custom_fields") or {})
        contact["created_at"] = now
        contact["updated_at"] = None
        with self.db.transaction():
            self._insert(tenant, contact)
        return contact

    def insert_existing(self, tenant: str, contacts: Iterable[dict[str, Any]]) -> int:
        """Store ready-made contacts (demo data), skipping ids the tenant already has.

        Returns:
            How many contacts were stored.
        """
        with self.db.transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO contacts (tenant, id, created_at, updated_at, archived_at, "
                "status, tags, search_text, doc) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)",
                (self._row(tenant, _ready_made(raw)) for raw in contacts),
            )
            created = conn.total_changes - before
            self._order.pop(tenant, None)  # rebuilt on the next unfiltered page
        return created

    def plant(self, tenant: str, docs: Iterable[dict[str, Any]], now: str) -> list[str]:
        """Store contacts exactly as given, bypassing validation; replace same-id contacts.

        This is how a test reproduces a record the real API might return (a lone surrogate, a
        25 MB company, an ``updated_at`` of ``""``, a new field ``firstName``): the document
        is served as it is. Only ``id`` (a new UUID when missing) and ``created_at`` (now, when
        missing) are filled in, because the listing's order needs them.

        Returns:
            The ids of the planted contacts, in order.
        """
        ids: list[str] = []
        with self.db.transaction() as conn:
            for raw in docs:
                doc = dict(raw)
                doc.setdefault("id", str(uuid.uuid4()))
                doc.setdefault("created_at", now)
                contact_id = doc["id"] if isinstance(doc["id"], str) else wire(doc["id"])
                status = doc.get("status")
                conn.execute(
                    "INSERT OR REPLACE INTO contacts (tenant, id, created_at, updated_at, "
                    "archived_at, status, tags, search_text, doc) "
                    "VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)",
                    (
                        tenant,
                        _storable(contact_id),
                        # the order list compares created_at as text, whatever was planted
                        _storable(_order_key(doc["created_at"])),
                        None
                        if doc.get("updated_at") is None
                        else _storable(_order_key(doc["updated_at"])),
                        _storable(status) if isinstance(status, str) else None,
                        _storable(_tags_text(doc.get("tags"))),
                        _storable(_search_text(doc)),
                        wire(doc),
                    ),
                )
                ids.append(contact_id)
            self._order.pop(tenant, None)  # rebuilt on the next unfiltered page
        return ids

    def update(
        self, tenant: str, contact_id: str, changes: dict[str, Any], now: str
    ) -> dict[str, Any] | None:
        """Apply a partial update to a live contact; ``None`` when there is none."""
        with self.db.transaction() as conn:
            contact = self.get(tenant, contact_id)
            if contact is None:
                return None
            contact.update(changes)
            contact["updated_at"] = now
            conn.execute(
                "UPDATE contacts SET updated_at = ?, status = ?, tags = ?, search_text = ?, "
                "doc = ? WHERE tenant = ? AND id = ?",
                (
                    now,
                    _storable(str(contact["status"])) if contact.get("status") else None,
                    _storable(_tags_text(contact.get("tags"))),
                    _storable(_search_text(contact)),
                    wire(contact),
                    tenant,
                    contact_id,
                ),
            )
        return contact

    def archive(self, tenant: str, contact_id: str, now: str) -> dict[str, Any] | None:
        """Soft-delete a live contact and return it; ``None`` when there is none."""
        with self.db.transaction() as conn:
            contact = self.get(tenant, contact_id)
            if contact is None:
                return None
            conn.execute(
                "UPDATE contacts SET archived_at = ? WHERE tenant = ? AND id = ?",
                (now, tenant, contact_id),
            )
            order = self._order.get(tenant)
            if order is not None:
                key = (contact["created_at"], contact_id)
                i = bisect.bisect_left(order, key)
                if i < len(order) and order[i] == key:
                    del order[i]
        return contact

    def clear(self) -> None:
        """Delete every contact of every tenant."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM contacts")
            self._order.clear()

    def _insert(self, tenant: str, contact: dict[str, Any]) -> None:
        self.db.conn.execute(
            "INSERT INTO contacts (tenant, id, created_at, updated_at, archived_at, status, "
            "tags, search_text, doc) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            self._row(tenant, contact),
        )
        order = self._order.get(tenant)
        if order is not None:
            bisect.insort(order, (contact["created_at"], contact["id"]))

    @staticmethod
    def _row(tenant: str, contact: dict[str, Any]) -> tuple[Any, ...]:
        return (
            tenant,
            contact["id"],
            contact["created_at"],
            contact["updated_at"],
            contact["status"],
            _tags_text(contact["tags"]),
            _search_text(contact),
            dumps(contact),
        )

    # -- reads --------------------------------------------------------------------------------

    def get(self, tenant: str, contact_id: str) -> dict[str, Any] | None:
        """A live contact of the tenant, or ``None`` (unknown, archived or another tenant's)."""
        with self.db.lock:
            row = self.db.conn.execute(
                "SELECT doc FROM contacts WHERE tenant = ? AND id = ? AND archived_at IS NULL",
                (tenant, contact_id),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def page(self, tenant: str, flt: ContactFilter, page: int, limit: int) -> tuple[list[str], int]:
        """One page of live contacts, newest first (``created_at`` desc, then ``id`` desc).

        Returns:
            The contacts' JSON texts and the number of contacts matching the filter.
        """
        offset = (page - 1) * limit
        with self.db.lock:
            if flt.is_empty():
                return self._page_from_order(tenant, offset, limit)
            where, params = flt.sql()
            conn = self.db.conn
            total = conn.execute(
                f"SELECT count(*) FROM contacts WHERE {where}", [tenant, *params]
            ).fetchone()[0]
            if offset >= total:
                return [], total
            rows = conn.execute(
                f"SELECT doc FROM contacts WHERE {where} "
                "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                [tenant, *params, limit, offset],
            ).fetchall()
        return [r[0] for r in rows], total

    def _page_from_order(self, tenant: str, offset: int, limit: int) -> tuple[list[str], int]:
        order = self._order.get(tenant)
        if order is None:
            order = self._order[tenant] = [
                (c, i)
                for c, i in self.db.conn.execute(
                    "SELECT created_at, id FROM contacts WHERE tenant = ? AND archived_at IS NULL "
                    "ORDER BY created_at, id",
                    (tenant,),
                )
            ]
        total = len(order)
        end = total - offset
        if end <= 0:
            return [], total
        ids = [i for _, i in reversed(order[max(0, end - limit) : end])]
        marks = ",".join("?" * len(ids))
        docs = dict(
            self.db.conn.execute(
                f"SELECT id, doc FROM contacts WHERE tenant = ? AND id IN ({marks})",
                [tenant, *ids],
            ).fetchall()
        )
        return [docs[i] for i in ids], total

    def all_contacts(self, tenant: str) -> list[dict[str, Any]]:
        """Every contact of the tenant, archived ones included (with ``archived_at``)."""
        with self.db.lock:
            rows = self.db.conn.execute(
                "SELECT doc, archived_at FROM contacts WHERE tenant = ? "
                "ORDER BY created_at DESC, id DESC",
                (tenant,),
            ).fetchall()
        out = []
        for doc, archived_at in rows:
            contact = json.loads(doc)
            contact["archived_at"] = archived_at
            out.append(contact)
        return out
