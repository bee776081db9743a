"""What a push learned about contacts, merged into the warehouse's mirror (``contacts``).

A push learns whole contacts as it goes: the PATCH answer of every updated row, the look-up of
every created row (``/bulk`` answers carry no ids), the contacts an interrupted earlier push
created. Merging them into ``contacts`` keeps the mirror as fresh as the push left the tenant,
so a following ``push --no-refresh`` plans those rows as unchanged instead of creating them
again.

They go the sync's way — Arrow conversion (:func:`pipelines.source.arrow.convert_contacts`),
dlt merge (delete-insert) on ``id`` with the sync's column hints — but through the push's own
pipeline (``<sync pipeline>_push``): a few contacts merged are no sync, and the mirror's age
(when it was last synced) must not change for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dlt

from pipelines.source.arrow import convert_contacts
from pipelines.source.settings import COLUMN_HINTS, PRIMARY_KEY, TABLE_NAME

__all__ = ["contacts_resource"]

_MERGE: Any = {"disposition": "merge", "strategy": "delete-insert"}


def contacts_resource(contacts: Iterable[dict[str, Any]]) -> tuple[Any, int]:
    """The merge of whole contacts (as the API returned them) into ``contacts``, as a dlt
    resource to run with other resources of the push's pipeline (one load for all).

    Args:
        contacts: Contact objects; one without an id is skipped, and for an id given twice
            the last one wins (one load never carries two versions of a row).

    Returns:
        The resource (``None`` when there is nothing to merge) and the number of contacts.
    """
    unique = {
        contact["id"]: contact
        for contact in contacts
        if isinstance(contact, dict) and isinstance(contact.get("id"), str) and contact["id"]
    }
    if not unique:
        return None, 0
    table = convert_contacts(list(unique.values())).table
    resource = dlt.resource(
        [table],
        name=TABLE_NAME,
        table_name=TABLE_NAME,
        write_disposition=_MERGE,
        primary_key=PRIMARY_KEY,
        columns=COLUMN_HINTS,
    )
    return resource, len(unique)
