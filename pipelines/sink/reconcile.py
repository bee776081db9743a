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
from collections.abc import Sequence
from typing import Any

from pipelines.client import LynkistClient, LynkistError
from pipelines.sink.keys import MatchKey, key_of
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


def _contact_key(match_on: MatchKey, contact: dict[str, Any], region: str | None) -> str | None:
    if match_on.kind == "custom":
        contact = {**contact, "custom_fields": as_dict(contact.get("custom_fields"))}
    return key_of(match_on, contact, region)


def _search_one(
    client: LynkistClient, row: PlannedRow, match_on: MatchKey, region: str | None
) -> str | None:
    term = _search_term(row)
    if term is None:
        return None
    pages = client.iter_search_pages(search_term=term, limit=100)
    try:
        for result in pages:
            for contact in result.data:
                if _contact_key(match_on, contact, region) == row.match_key:
                    return str(contact["id"])
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
    found: dict[int, str] = {}
    missing: list[PlannedRow] = []
    if scan and tenant_size is not None:
        pages = -(-(tenant_size + len(rows)) // 100)
        if pages <= len(rows):
            return _scan(client, rows, match_on, default_region)

    def search(row: PlannedRow) -> str | None:
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
        for number, contact_id in _scan(client, missing, match_on, default_region).items():
            found.setdefault(number, contact_id)
    return found


def _scan(
    client: LynkistClient,
    rows: Sequence[PlannedRow],
    match_on: MatchKey,
    region: str | None,
) -> dict[int, str]:
    """Rows found by listing every live contact (``GET /contacts``, all pages)."""
    wanted = {row.match_key: row.row_number for row in rows}
    found: dict[int, str] = {}
    for page in client.iter_contact_pages(limit=100):
        for contact in page.data:
            key = _contact_key(match_on, contact, region)
            if key in wanted:
                found.setdefault(wanted[key], str(contact["id"]))
    return found
