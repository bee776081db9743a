"""Refusals that protect the warehouse: another tenant's mirror, a run that deletes too much.

A warehouse dataset mirrors one tenant. Contact ids are per tenant — another tenant's key gets
404 for every one of them, exactly what an archived contact gets — so a sync with the wrong key
would "confirm" every contact deleted. Two checks stop that before anything is written:

1. Identity (on the scan's first page, before anything is emitted): when page 1 lists a
   contact the mirror holds, the tenant is recognised for free; otherwise a few live contacts
   of the mirror are fetched with this key, and if none is visible the mirror belongs to
   another tenant (the ids are the fingerprint; the key itself is never stored).
2. Delete share (before deletions are emitted): a run that would mark more than
   ``max_delete_share`` of the live mirror deleted stops — another tenant, a broken filter or
   an API incident look exactly like that — unless the user raises the share, as Hightouch and
   Census do.

Either raises :class:`MirrorSafetyError` from inside the extract step, so the load never runs:
the warehouse is unchanged.
"""

from __future__ import annotations

import random
from typing import Final

from pipelines.client import LynkistClient
from pipelines.client.errors import NotFoundError
from pipelines.source.mirror import Mirror

__all__ = [
    "DEFAULT_MAX_DELETE_SHARE",
    "DeleteShareError",
    "ForeignMirrorError",
    "MirrorSafetyError",
    "check_delete_share",
    "check_same_tenant",
]

#: Default largest share of the live mirror one run may mark deleted.
DEFAULT_MAX_DELETE_SHARE: Final = 0.5
#: Deletions this small are never refused, whatever their share (a tenant of 3 archiving 2).
MIN_GUARDED_DELETES: Final = 10
#: Live mirror contacts fetched to recognise the tenant.
IDENTITY_SAMPLE: Final = 10


class MirrorSafetyError(Exception):
    """The run was refused to protect the warehouse; nothing was written."""


class ForeignMirrorError(MirrorSafetyError):
    """The warehouse mirrors a tenant that this API key cannot see."""


class DeleteShareError(MirrorSafetyError):
    """The run would mark more than the allowed share of the mirror deleted."""


def check_same_tenant(
    client: LynkistClient, mirror: Mirror, *, sample: int = IDENTITY_SAMPLE, seed: int | None = None
) -> None:
    """Fetch live mirror contacts with this key, one at a time; refuse if none is visible.

    One visible contact is enough (others may have been archived since). An empty mirror has
    nothing to protect.

    Raises:
        ForeignMirrorError: Every sampled contact answered 404.
    """
    live = mirror.live_ids()
    if not live:
        return
    picked = random.Random(seed).sample(live, min(sample, len(live)))
    # one by one: the first is almost always visible, so a normal run pays one request
    for contact_id in picked:
        try:
            client.get_contact(contact_id)
        except NotFoundError:
            continue
        return
    raise ForeignMirrorError(
        f"this warehouse mirrors another tenant: none of {len(picked)} of its contacts is "
        "visible to this API key; nothing was changed — use another --dataset or warehouse "
        "file for this tenant, or --full-refresh to replace the mirror"
    )


def check_delete_share(deleting: int, live: int, max_share: float) -> None:
    """Refuse a run that would mark more than ``max_share`` of ``live`` contacts deleted.

    Raises:
        DeleteShareError: ``deleting`` is over the share (and over ``MIN_GUARDED_DELETES``).
    """
    if deleting <= MIN_GUARDED_DELETES or live <= 0 or deleting <= max_share * live:
        return
    raise DeleteShareError(
        f"this run would mark {deleting:,} of {live:,} live contacts deleted "
        f"({deleting / live:.0%}), more than --max-delete-share {max_share:.0%}; nothing was "
        "changed — check the API key and the warehouse, or rerun with a higher "
        "--max-delete-share (e.g. 1) if the deletions are real"
    )
