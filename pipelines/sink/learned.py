"""What a push learned about contacts, merged into the warehouse's mirror (``contacts``).

A push learns whole contacts as it goes: the PATCH answer of every updated row, the look-up of
every created row (``/bulk`` answers carry no ids), the contacts an interrupted earlier push
created. Merging them into ``contacts`` keeps the mirror as fresh as the push left the tenant,
so a following ``push --no-refresh`` plans those rows as unchanged instead of creating them
again.

They go the sync's way — Arrow conversion (:func:`pipelines.source.arrow.convert_contacts`),
dlt merge (delete-insert) on ``id`` with the sync's column hints — but through the push's own
pipeline (``<sync pipeline>_push``): a few contacts merged are no sync, and the mirror's age
(when it was last synced) must not change for them. On DuckDB the same Arrow table is usually
merged by SQL instead (:mod:`.record`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from pipelines.source.arrow import convert_contacts
from pipelines.source.settings import COLUMN_HINTS, PRIMARY_KEY, TABLE_NAME

__all__ = ["contacts_resource", "contacts_table"]

_MERGE: Any = {"disposition": "merge", "strategy": "delete-insert"}


def contacts_table(contacts: Iterable[dict[str, Any]]) -> pa.Table | None:
    """Whole contacts (as the API returned them) as the mirror's Arrow rows, one per id.

    Args:
        contacts: Contact objects; one without an id is skipped, and for an id given twice
            the last one wins (one load never carries two versions of a row).

    Returns:
        The rows, or ``None`` when there is nothing to merge.
    """
    unique = {
        contact["id"]: contact
        for contact in contacts
        if isinstance(contact, dict) and isinstance(contact.get("id"), str) and contact["id"]
    }
    if not unique:
        return None
    return convert_contacts(list(unique.values())).table


def contacts_resource(table: pa.Table | None) -> Any:
    """The merge of :func:`contacts_table`'s rows into ``contacts``, as a dlt resource to run
    with other resources of the push's pipeline (one load for all); ``None`` without rows."""
    if table is None:
        return None
    import dlt  # on use: a push recorded by SQL never imports it

    return dlt.resource(
        [table],
        name=TABLE_NAME,
        table_name=TABLE_NAME,
        write_disposition=_MERGE,
        primary_key=PRIMARY_KEY,
        columns=COLUMN_HINTS,
    )
