"""The push's cost model: how many requests each way of creating rows and learning their ids
takes, and which way is cheaper. The one place these rules live (the executor, the id lookup
after a push and the reconciliation of lost bulk answers all ask here).

Counted in requests, because every request costs a round trip and the push keeps a fixed
number in flight:

* single creates: ``POST /contacts`` with an ``Idempotency-Key`` per row — ``N`` requests; each
  answer carries the new contact (its id), and a lost answer is resent with the same key;
* bulk creates: ``⌈N/100⌉`` ``POST /contacts/bulk`` calls, whose answers carry no ids, plus
  learning the ids the cheaper way (:func:`lookup_way`): one search per row (``N``) or one
  listing scan of the tenant (``⌈(tenant + N)/100⌉`` pages).

Singles are never more requests than bulk plus a search per row (``N ≤ ⌈N/100⌉ + N``), so they
win whenever the scan is dearer than the searches, or costs more than ``N - ⌈N/100⌉``: a few
rows into a large tenant (100 rows into 200,000 contacts: 100 singles against 1 bulk and 100
searches). Many rows into a small tenant go in bulk (5,000 into 10,000: 50 bulk calls and a
150-page scan, not 5,000 singles).
"""

from __future__ import annotations

from typing import Literal

from transforms.contact import BULK_MAX_ITEMS
from transforms.contact import PAGE_LIMIT_MAX as PAGE_LIMIT  # every scan reads full pages


def scan_pages(tenant_size: int) -> int:
    """Requests of one listing scan of ``tenant_size`` live contacts."""
    return -(-max(0, tenant_size) // PAGE_LIMIT)


def lookup_way(rows: int, tenant_size: int) -> Literal["search", "scan"]:
    """The cheaper way to find ``rows`` rows among the tenant's contacts.

    Args:
        rows: Rows to find (each has a match key).
        tenant_size: Live contacts of the tenant, the rows included if they exist.

    Returns:
        ``scan`` when one listing scan takes fewer requests than a search per row.
    """
    return "scan" if scan_pages(tenant_size) < rows else "search"


def lookup_requests(rows: int, tenant_size: int) -> int:
    """Requests to learn the ids of ``rows`` created rows the cheaper way."""
    if rows <= 0:
        return 0
    return min(rows, scan_pages(tenant_size))


def bulk_requests(creates: int, tenant_size: int) -> int:
    """Requests to create ``creates`` rows in bulk and learn their ids."""
    calls = -(-creates // BULK_MAX_ITEMS)
    return calls + lookup_requests(creates, tenant_size + creates)


def create_way(creates: int, tenant_size: int | None) -> Literal["single", "bulk"]:
    """How to create ``creates`` rows in a tenant of ``tenant_size`` live contacts.

    Args:
        creates: Rows planned as creates.
        tenant_size: Live contacts before the push; ``None`` when unknown (then bulk, whose
            cost does not grow with the tenant).

    Returns:
        ``single`` when one keyed ``POST /contacts`` per row takes no more requests than bulk
        calls plus learning their ids, else ``bulk``.
    """
    if creates <= 0 or tenant_size is None:
        return "bulk"
    return "single" if creates <= bulk_requests(creates, tenant_size) else "bulk"
