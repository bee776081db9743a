"""What one flush loads: the ``contact_events`` rows and the contacts the events touched.

Two ways to turn contact events into ``contacts`` rows:

* default — the touched contacts as fetched (``GET /contacts/{id}``; 404 → archived; sent as
  the events arrive, see :mod:`pipelines.listen.prefetch`), applied through the sync's own
  reconciler, so the warehouse always gets the server's state as of after the events whatever
  order, duplication or thinness they had; several events for one contact cost one GET;
* ``trust_payload`` — apply the events' payloads without any API call, behind an ordering
  guard: per contact only the newest event wins (``updated_at`` of the payload, the deletion's
  ``occurred_at``), and only when it is newer than the warehouse's row.

Both write into the same dlt source name and schema as ``lynkist sync`` (merge on ``id``), so
the two keep one ``contacts`` table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

import dlt
import pyarrow as pa
from dlt.common.schema.typing import TColumnSchema
from dlt.extract import DltResource

from pipelines.client import LynkistClient
from pipelines.client.errors import NotFoundError
from pipelines.listen.spool import SpooledEvent
from pipelines.source import _active_pipeline, contacts_resource
from pipelines.source.arrow import contacts_table, datetime_micros, fingerprints, parse_timestamps
from pipelines.source.mirror import _has_table, read_rows
from pipelines.source.settings import (
    COLUMN_HINTS,
    PRIMARY_KEY,
    SOURCE_NAME,
    TABLE_NAME,
    TIMESTAMP_TYPE,
)
from pipelines.source.stats import SyncStats

EVENTS_TABLE: Final = "contact_events"
#: Events that change a contact's row (notes and communications only land in contact_events).
CONTACT_CHANGES: Final = frozenset({"contact.created", "contact.updated", "contact.deleted"})
DELETED: Final = "contact.deleted"

_TIMESTAMPTZ: Final[TColumnSchema] = {"data_type": "timestamp", "timezone": True}
EVENT_HINTS: Final[dict[str, TColumnSchema]] = {
    "event_id": {"data_type": "text", "nullable": False, "primary_key": True},
    "event": {"data_type": "text", "nullable": False},
    "tenant": {"data_type": "text", "nullable": True},
    "contact_id": {"data_type": "text", "nullable": True},
    "occurred_at": {**_TIMESTAMPTZ, "nullable": True},
    "received_at": {**_TIMESTAMPTZ, "nullable": False},
    "payload": {"data_type": "json", "nullable": False},
}
EVENTS_SCHEMA: Final = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("tenant", pa.string()),
        pa.field("contact_id", pa.string()),
        pa.field("occurred_at", TIMESTAMP_TYPE),
        pa.field("received_at", TIMESTAMP_TYPE, nullable=False),
        pa.field("payload", pa.string(), nullable=False),
    ]
)


def _timestamps(values: list[str | None], name: str) -> pa.Array:
    try:
        return parse_timestamps(values, name)
    except ValueError:  # a sender's odd occurred_at must not block the batch: keep it null
        return pa.array([_or_none(v, name) for v in values], TIMESTAMP_TYPE)


def _or_none(value: str | None, name: str) -> datetime | None:
    try:
        stamp: datetime | None = parse_timestamps([value], name)[0].as_py()
        return stamp
    except ValueError:
        return None


def events_table(events: Sequence[SpooledEvent]) -> pa.Table:
    """The ``contact_events`` rows of ``events`` (one per event id)."""
    unique = list({e.event_id: e for e in events}.values())
    return pa.Table.from_arrays(
        [
            pa.array([e.event_id for e in unique], pa.string()),
            pa.array([e.event for e in unique], pa.string()),
            pa.array([e.tenant for e in unique], pa.string()),
            pa.array([e.contact_id for e in unique], pa.string()),
            _timestamps([e.occurred_at for e in unique], "occurred_at"),
            _timestamps([e.received_at for e in unique], "received_at"),
            pa.array([e.payload for e in unique], pa.string()),
        ],
        schema=EVENTS_SCHEMA,
    )


def events_resource(events: Sequence[SpooledEvent]) -> DltResource:
    """``contact_events``, merged on ``event_id``: a replayed batch never adds a row twice."""

    def contact_events() -> Iterator[pa.Table]:
        if events:
            yield events_table(events)

    return dlt.resource(
        contact_events,
        name=EVENTS_TABLE,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key="event_id",
        columns=EVENT_HINTS,
    )


def touched_contacts(events: Sequence[SpooledEvent]) -> list[str]:
    """Distinct contact ids changed by ``events``, in first-seen order (one GET each)."""
    return list(
        dict.fromkeys(e.contact_id for e in events if e.event in CONTACT_CHANGES and e.contact_id)
    )


@dataclass
class _Winner:
    stamp: int
    deleted: bool
    contact: dict[str, Any]
    occurred_at: str | None


def stamp_micros(raw: object) -> int | None:
    """An ISO-8601 time as epoch microseconds; None when missing or unreadable."""
    if not isinstance(raw, str):
        return None
    try:  # the common case, ~50x cheaper than the Arrow parser (the prefetcher's hot path)
        return datetime_micros(datetime.fromisoformat(raw))
    except ValueError:
        return datetime_micros(_or_none(raw, "updated_at"))


def contact_stamp(contact: dict[str, Any]) -> int | None:
    """A contact's newest time: ``updated_at``, else ``created_at`` (µs)."""
    return stamp_micros(contact.get("updated_at") or contact.get("created_at"))


def event_stamp(event: SpooledEvent, contact: dict[str, Any]) -> int | None:
    """Ordering key: the deletion's time, or the payload's ``updated_at``/``created_at``."""
    if event.event == DELETED:
        return stamp_micros(event.occurred_at)
    return contact_stamp(contact)


def newest_per_contact(events: Sequence[SpooledEvent]) -> dict[str, _Winner]:
    """Per contact, the newest change among ``events`` (a deletion wins a tie)."""
    winners: dict[str, _Winner] = {}
    for event in events:
        if event.event not in CONTACT_CHANGES or not event.contact_id:
            continue
        data = json.loads(event.payload).get("data")
        if not isinstance(data, dict):
            continue
        stamp = event_stamp(event, data)
        if stamp is None:
            continue
        deleted = event.event == DELETED
        current = winners.get(event.contact_id)
        if current is None or (stamp, deleted) > (current.stamp, current.deleted):
            winners[event.contact_id] = _Winner(stamp, deleted, data, event.occurred_at)
    return winners


def _stored_stamps(pipeline: Any, ids: list[str]) -> dict[str, tuple[int, bool]]:
    """``id -> (newest known time, is_deleted)`` of the warehouse rows of ``ids``."""
    stamps: dict[str, tuple[int, bool]] = {}
    if pipeline is None or not ids or not _has_table(pipeline):
        return stamps
    for table in read_rows(pipeline, ids):
        deleted_at = table["deleted_at"].to_pylist() if "deleted_at" in table.column_names else None
        is_deleted = table["is_deleted"].to_pylist() if "is_deleted" in table.column_names else None
        for i, (contact_id, fp) in enumerate(
            zip(table["id"].to_pylist(), fingerprints(table), strict=True)
        ):
            gone = bool(is_deleted[i]) if is_deleted else False
            deleted_stamp = datetime_micros(deleted_at[i]) if deleted_at and gone else None
            stamps[contact_id] = (max(fp or 0, deleted_stamp or 0), gone)
    return stamps


def trusted_contacts_resource(events: Sequence[SpooledEvent], stats: SyncStats) -> DltResource:
    """``contacts`` rows straight from the payloads, newest wins, never older than the warehouse."""

    def contacts() -> Iterator[pa.Table]:
        winners = newest_per_contact(events)
        if not winners:
            return
        stored = _stored_stamps(_active_pipeline(), list(winners))
        rows, deleted_rows, deleted_at = [], [], []
        for contact_id, winner in winners.items():
            known = stored.get(contact_id)
            if known is not None and winner.stamp <= known[0]:
                stats.unchanged += 1
                continue
            if known is not None and known[1] and winner.deleted:
                stats.unchanged += 1
                continue
            contact = {**winner.contact, "id": contact_id}
            if winner.deleted:
                deleted_rows.append(contact)
                deleted_at.append(winner.occurred_at)
                stats.deleted += 1
            else:
                rows.append(contact)
                if known is None:
                    stats.new += 1
                else:
                    stats.updated += 1
        if rows:
            yield contacts_table(rows)
        if deleted_rows:
            table = contacts_table(deleted_rows)
            n = table.num_rows
            table = table.set_column(
                table.schema.get_field_index("is_deleted"),
                "is_deleted",
                pa.array([True] * n, pa.bool_()),
            )
            table = table.set_column(
                table.schema.get_field_index("deleted_at"),
                "deleted_at",
                _timestamps(deleted_at, "occurred_at"),
            )
            yield table

    return dlt.resource(
        contacts,
        name=TABLE_NAME,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key=PRIMARY_KEY,
        columns=COLUMN_HINTS,
    )


class FetchedContacts:
    """The contacts a flush fetched, served where the sync's reconciler asks its client.

    The reconciler's confirm step (compare with the warehouse, emit the changed, mark the 404s
    archived) is exactly what a flush needs; it calls ``map_concurrent(get_contact, ids)``.
    These two methods answer from :class:`~pipelines.listen.prefetch.Prefetcher`'s answers,
    so the GETs themselves happen before the flush takes the warehouse's lock.

    Args:
        answers: Contact id → the fetched contact, or the 404 that says it is gone.
    """

    def __init__(self, answers: Mapping[str, dict[str, Any] | NotFoundError]) -> None:
        self._answers = answers

    def get_contact(self, contact_id: str) -> dict[str, Any]:
        """The fetched contact.

        Raises:
            NotFoundError: It answered 404.
        """
        answer = self._answers[contact_id]
        if isinstance(answer, NotFoundError):
            raise answer
        return answer

    def map_concurrent(
        self, fn: Callable[[str], dict[str, Any]], items: Iterable[str]
    ) -> Iterator[tuple[str, dict[str, Any] | Exception]]:
        """``(id, contact or error)`` for each id, in order (nothing left to wait for)."""
        for item in items:
            try:
                yield item, fn(item)
            except NotFoundError as exc:
                yield item, exc


@dlt.source(name=SOURCE_NAME, max_table_nesting=0)
def listen_source(
    events: Sequence[SpooledEvent],
    *,
    fetched: FetchedContacts | None,
    stats: SyncStats,
    trust_payload: bool = False,
) -> list[DltResource]:
    """The resources of one flush: ``contact_events`` and, when events changed contacts,
    ``contacts``.

    Args:
        events: The batch, oldest first.
        fetched: The touched contacts as fetched (default mode); unused with ``trust_payload``.
        stats: Counters filled while the contacts resource runs.
        trust_payload: Apply payloads instead of fetched contacts.
    """
    resources = [events_resource(events)]
    ids = touched_contacts(events)
    if ids:
        if trust_payload:
            resources.append(trusted_contacts_resource(events, stats))
        else:
            if fetched is None:
                raise ValueError("the default mode applies fetched contacts: pass them")
            client = cast(LynkistClient, fetched)  # the two methods the confirm step calls
            resources.append(contacts_resource(client, stats=stats, only_ids=ids))
    return resources
