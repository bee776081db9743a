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

__all__ = ["merge_contacts"]

_MERGE: Any = {"disposition": "merge", "strategy": "delete-insert"}


def merge_contacts(pipeline: dlt.Pipeline, contacts: Iterable[dict[str, Any]]) -> int:
    """Merge whole contacts (as the API returned them) into the ``contacts`` table.

    Args:
        pipeline: The push's pipeline on the warehouse.
        contacts: Contact objects; one without an id is skipped, and for an id given twice
            the last one wins (one load never carries two versions of a row).

    Returns:
        The contacts merged.
    """
    unique = {
        contact["id"]: contact
        for contact in contacts
        if isinstance(contact, dict) and isinstance(contact.get("id"), str) and contact["id"]
    }
    if not unique:
        return 0
    table = convert_contacts(list(unique.values())).table
    resource = dlt.resource(
        [table],
        name=TABLE_NAME,
        table_name=TABLE_NAME,
        write_disposition=_MERGE,
        primary_key=PRIMARY_KEY,
        columns=COLUMN_HINTS,
    )
    pipeline.run(resource)
    return len(unique)
