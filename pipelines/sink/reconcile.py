"""Find out which rows of a bulk call with an unknown outcome now exist on the server.

When ``POST /contacts/bulk`` is sent and its answer is lost (dropped connection, timeout, 5xx),
the server may have committed all, some or none of the batch, its answer would not have carried
ids anyway, and the API does not promise to honour ``Idempotency-Key`` on ``/bulk``. Resending
blindly would duplicate contacts, so the rows are looked up first:

1. a ``POST /contacts/search`` per row with its most selective searchable value (email, else
   last name, company, first name), keeping only contacts whose normalized match key equals the
   row's — search semantics are not documented, so its results are filtered, never trusted;
2. rows not found that way are confirmed absent by one listing scan of every page of
   ``GET /contacts`` (the documented way to see every live contact), shared by all of them.

Only rows absent from both are resent. When the tenant is small enough that listing every
page costs fewer requests than one search per row, the listing scan alone decides (it is
authoritative either way). Reads only: no write call is made here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.client import LynkistClient, LynkistError, ValidationError
from pipelines.sink.cost import lookup_way
from pipelines.sink.journal import InflightCall, JournalRow
from pipelines.sink.keys import MatchKey, key_of, parse_match_on
from pipelines.sink.plan import PlannedRow, as_dict

log = logging.getLogger(__name__)

#: Beyond this many result pages a search term is too common to be worth paging through; the
#: listing scan decides instead.
_MAX_SEARCH_PAGES = 5


def _search_term(row: PlannedRow) -> str | None:
    for name in ("email", "last_name", "company", "first_name"):
        value = row.payload.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def contact_key(match_on: MatchKey, contact: dict[str, Any], region: str | None) -> str | None:
    """A contact's normalized match key (``custom_fields`` as JSON text or decoded)."""
    if match_on.kind == "custom":
        contact = {**contact, "custom_fields": as_dict(contact.get("custom_fields"))}
    return key_of(match_on, contact, region)


def _search_one(
    client: LynkistClient, row: PlannedRow, match_on: MatchKey, region: str | None
) -> dict[str, Any] | None:
    term = _search_term(row)
    if term is None:
        return None
    pages = client.iter_search_pages(search_term=term, limit=100)
    try:
        for result in pages:
            for contact in result.data:
                if contact_key(match_on, contact, region) == row.match_key:
                    return contact
            if (pages.total_pages or 0) > _MAX_SEARCH_PAGES:
                return None  # too common a term: the listing scan decides
    finally:
        pages.close()
    return None


def find_existing(
    client: LynkistClient,
    rows: Sequence[PlannedRow],
    *,
    match_on: MatchKey,
    default_region: str | None = "US",
    scan: bool = True,
    tenant_size: int | None = None,
) -> dict[int, str]:
    """Look up which planned create rows now exist as live contacts.

    Args:
        client: The API client (reads only).
        rows: Planned ``create`` rows, each with a non-empty ``match_key``.
        match_on: The push's match key.
        default_region: Region for phone numbers without a country code.
        scan: Confirm rows the search did not find with a full listing scan.
        tenant_size: Estimated number of live contacts; when listing them all takes no more
            requests than searching row by row, only the listing scan is made.

    Returns:
        ``{row_number: contact_id}`` for the rows that exist.

    Raises:
        LynkistError: When the lookups themselves fail (the caller must then not resend).
    """
    found = find_existing_contacts(
        client,
        rows,
        match_on=match_on,
        default_region=default_region,
        scan=scan,
        tenant_size=tenant_size,
    )
    return {number: str(contact["id"]) for number, contact in found.items()}


def find_existing_contacts(
    client: LynkistClient,
    rows: Sequence[PlannedRow],
    *,
    match_on: MatchKey,
    default_region: str | None = "US",
    scan: bool = True,
    tenant_size: int | None = None,
) -> dict[int, dict[str, Any]]:
    """Like :func:`find_existing`, with the contacts found: ``{row_number: contact}``."""
    found: dict[int, dict[str, Any]] = {}
    missing: list[PlannedRow] = []
    if (
        scan
        and tenant_size is not None
        and lookup_way(len(rows), tenant_size + len(rows)) == "scan"
    ):
        return _scan(client, rows, match_on, default_region)

    def search(row: PlannedRow) -> dict[str, Any] | None:
        return _search_one(client, row, match_on, default_region)

    for row, result in client.map_concurrent(search, rows):
        if isinstance(result, Exception):
            if not isinstance(result, LynkistError):
                raise result
            log.info(
                "search for row %d failed (%s); the listing scan decides",
                row.row_number,
                type(result).__name__,
            )
            missing.append(row)
        elif result is None:
            missing.append(row)
        else:
            found[row.row_number] = result
    if missing and scan:
        for number, contact in _scan(client, missing, match_on, default_region).items():
            found.setdefault(number, contact)
    return found


def _scan(
    client: LynkistClient,
    rows: Sequence[PlannedRow],
    match_on: MatchKey,
    region: str | None,
) -> dict[int, dict[str, Any]]:
    """Rows found by listing every live contact (``GET /contacts``, all pages)."""
    wanted = {row.match_key: row.row_number for row in rows}
    found: dict[int, dict[str, Any]] = {}
    for page in client.iter_contact_pages(limit=100):
        for contact in page.data:
            key = contact_key(match_on, contact, region)
            if key in wanted:
                found.setdefault(wanted[key], contact)
    return found


@dataclass
class Settled:
    """What :func:`settle_previous` learnt about the calls an earlier push left unresolved.

    Attributes:
        calls: Calls settled (their ids, to resolve in the journal).
        rows: Rows those calls carried.
        found: Contacts of those rows that exist now (each committed by that earlier push).
        waited_s: Seconds spent waiting for late commits.
    """

    calls: list[str] = field(default_factory=list)
    rows: int = 0
    found: list[dict[str, Any]] = field(default_factory=list)
    waited_s: float = 0.0
    resent: int = 0

    def add(self, other: Settled) -> None:
        """Account for another settlement's calls too."""
        self.calls += other.calls
        self.rows += other.rows
        self.found += other.found
        self.waited_s += other.waited_s
        self.resent += other.resent


#: A single create recorded longer ago than this is not resent but looked up: the server may
#: have forgotten its key by then (the API does not say how long keys are kept; the sandbox,
#: like Stripe, keeps them 24 h).
KEY_REPLAY_S = 23 * 3600.0


def resend_keyed(client: LynkistClient, calls: Sequence[InflightCall]) -> Settled:
    """Settle the single creates an earlier push left in doubt: send each again with its key.

    A server that committed the first send (even late, after its client had gone) answers the
    repeat with that contact; one that never got it creates the contact now; a repeat that
    arrives while the first is still being processed gets a 409, which the client retries with
    the same key. Either way the row exists exactly once afterwards.

    Args:
        client: The API client (it writes: never call this for a dry run).
        calls: Journal calls whose rows all carry an idempotency key.

    Returns:
        The calls settled and every row's contact (``resent``: rows sent again).

    Raises:
        LynkistError: A resend failed after the client's retries (the calls stay recorded).
    """
    rows = [row for call in calls for row in call.rows]
    settled = Settled(calls=[call.call_id for call in calls], rows=len(rows), resent=len(rows))

    def send(row: JournalRow) -> dict[str, Any]:
        return client.create_contact(row.payload, idempotency_key=row.idempotency_key)

    for row, result in client.map_concurrent(send, rows):
        if isinstance(result, dict):
            settled.found.append(result)
        elif isinstance(result, ValidationError):
            # Rejected as sent: nothing was ever stored under its key; the plan decides anew.
            log.info("a single create of %s is rejected by the API: %s", row.match_key, result)
        else:
            raise result
    return settled


def settle_previous(
    client: LynkistClient,
    calls: Sequence[InflightCall],
    *,
    grace_s: float,
    default_region: str | None = "US",
    poll_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Settled:
    """Resolve the bulk calls an interrupted or killed push left in its journal.

    Such a call may still commit on the server after its client went (it was queued). Its rows
    are looked up (searches) every ``poll_s`` until all are found or ``grace_s`` has passed
    since it was sent — after that it can no longer commit (the client's timeout bounds how
    long a request runs) — then the rows still missing are confirmed by the listing scan.
    A row found was created by that push; a row absent is safe to create again.

    Args:
        client: The API client (reads only).
        calls: The journal's unresolved calls.
        grace_s: How long after being sent a call may still commit.
        default_region: Region for phone numbers without a country code.
        poll_s: Seconds between lookups while waiting.
        sleep: Waits (injectable for tests).
        clock: Wall-clock time, epoch seconds (the journal's ``sent_at`` is one).

    Returns:
        The calls settled and the contacts found.

    Raises:
        LynkistError: When the lookups fail (the calls then stay unresolved).
    """
    settled = Settled(calls=[call.call_id for call in calls])
    if not calls:
        return settled
    deadline = max(call.sent_at for call in calls) + grace_s
    groups: dict[str, list[PlannedRow]] = {}
    blind = False  # a call without its rows (older journal): only waiting settles it
    for call in calls:
        if not call.rows or any(not row.match_key for row in call.rows):
            blind = True
        rows = groups.setdefault(call.match_on or "email", [])
        for row in call.rows:
            if row.match_key:
                rows.append(PlannedRow(len(rows) + 1, row.match_key, "create", payload=row.payload))
        settled.rows += len(call.rows)
    started = clock()
    remaining = {label: list(rows) for label, rows in groups.items() if rows}
    while True:
        final = clock() >= deadline
        for label in list(remaining):
            match_on = parse_match_on(label)
            found = find_existing_contacts(
                client,
                remaining[label],
                match_on=match_on,
                default_region=default_region,
                scan=final,
            )
            settled.found.extend(found.values())
            remaining[label] = [r for r in remaining[label] if r.row_number not in found]
            if not remaining[label]:
                del remaining[label]
        if final or (not remaining and not blind):
            break
        sleep(max(0.0, min(poll_s, deadline - clock())))
    settled.waited_s = max(0.0, clock() - started)
    return settled
