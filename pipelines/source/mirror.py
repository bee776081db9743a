"""What the warehouse already holds, kept compact, and the per-contact change decision.

The API has no server-side filter on ``updated_at``, so every sync lists all contacts and
compares each with the warehouse's copy ("the mirror"). For each contact the mirror keeps one
``int``: its fingerprint (``updated_at``, or ``created_at`` when never updated, in epoch
microseconds) with a few flag bits packed below it. That dict is the only structure that grows
with the tenant; pages stream through and are dropped.

Why not a cursor (``dlt.sources.incremental``)? A cursor skips anything older than the last
high-water mark, and guarantee 2 is exactly that case (skew, late commits): the per-contact
comparison loads an update whatever its timestamp, needs no state beside the warehouse itself
(so it cannot drift from it after a crash), and tells which contacts disappeared.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.source.arrow import datetime_micros, to_json_text
from pipelines.source.settings import MIRROR_QUERY_BATCH, TABLE_NAME, TIMESTAMP_TYPE

if TYPE_CHECKING:  # dlt is imported on use (see pipelines.source.quick)
    from dlt.common.pipeline import SupportsPipeline

__all__ = ["Decision", "Mirror", "load_fingerprints", "read_rows"]

#: Fingerprint of a contact without any timestamp (never produced by a sane API).
NO_FINGERPRINT = -(1 << 62)
#: Fingerprint of a contact whose timestamps the API sent unreadable: matches no stored row,
#: so the contact is loaded again on every run (its changes cannot be detected otherwise).
UNRELIABLE_FINGERPRINT = NO_FINGERPRINT + 1

_DELETED = 0b1  # marked deleted in the warehouse (or by this run)
_EMITTED = 0b10  # emitted by this run
_PASS_SHIFT = 2  # bits 2..9: the last pass (1-based) that saw the id; 0 = not seen this run
_PASS_MASK = 0xFF
_FP_SHIFT = 10
MAX_PASS = _PASS_MASK


class Decision(enum.Enum):
    """What to do with one sighting of a contact."""

    NEW = "new"  # not in the warehouse: emit
    UPDATED = "updated"  # fingerprint differs from the warehouse's: emit
    RESTORED = "restored"  # marked deleted in the warehouse, live again: emit
    UNCHANGED = "unchanged"  # first sighting, same fingerprint: skip
    SEEN = "seen"  # already handled by this run, same fingerprint: skip
    LATE_CHANGE = "late_change"  # skipped earlier in this run as unchanged, now changed: emit
    CONFLICT = "conflict"  # emitted earlier in this run, changed since: re-fetch after the load

    @property
    def emit(self) -> bool:
        """Whether the row goes to the warehouse now."""
        return self in _EMITTING


_EMITTING = frozenset({Decision.NEW, Decision.UPDATED, Decision.RESTORED, Decision.LATE_CHANGE})


def _pack(fingerprint: int, pass_no: int, emitted: bool, deleted: bool) -> int:
    return (fingerprint << _FP_SHIFT) | (pass_no << _PASS_SHIFT) | (_EMITTED * emitted) | deleted


class Mirror:
    """``id -> packed state`` of every contact the warehouse holds, plus this run's sightings."""

    def __init__(self) -> None:
        self._state: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._state)

    def __contains__(self, contact_id: object) -> bool:
        return contact_id in self._state

    def add(self, contact_id: str, fingerprint: int | None, *, deleted: bool) -> None:
        """Record a warehouse row (before the scan)."""
        fp = NO_FINGERPRINT if fingerprint is None else fingerprint
        self._state[contact_id] = _pack(fp, 0, False, bool(deleted))

    def live_ids(self) -> list[str]:
        """Ids the warehouse holds as not deleted."""
        return [i for i, value in self._state.items() if not value & _DELETED]

    def is_live(self, contact_id: str) -> bool:
        """Whether the warehouse holds the contact as not deleted."""
        value = self._state.get(contact_id)
        return value is not None and not value & _DELETED

    def observe(self, contact_id: str, fingerprint: int | None, pass_no: int) -> Decision:
        """Decide what to do with one sighting of a live contact and record it.

        Args:
            contact_id: The contact's id.
            fingerprint: ``updated_at`` or ``created_at`` in epoch microseconds.
            pass_no: 1-based number of the scan (or confirmation round) that saw it.
        """
        fp = NO_FINGERPRINT if fingerprint is None else fingerprint
        value = self._state.get(contact_id)
        if value is None:
            self._state[contact_id] = _pack(fp, pass_no, True, False)
            return Decision.NEW
        old_fp = value >> _FP_SHIFT
        seen_in = (value >> _PASS_SHIFT) & _PASS_MASK
        emitted = bool(value & _EMITTED)
        if seen_in == 0:  # first sighting in this run: compare with the warehouse
            if value & _DELETED:
                self._state[contact_id] = _pack(fp, pass_no, True, False)
                return Decision.RESTORED
            if old_fp != fp:
                self._state[contact_id] = _pack(fp, pass_no, True, False)
                return Decision.UPDATED
            self._state[contact_id] = _pack(fp, pass_no, False, False)
            return Decision.UNCHANGED
        if old_fp == fp:
            self._state[contact_id] = _pack(fp, pass_no, emitted, False)
            return Decision.SEEN
        if emitted:
            # A second, different copy in the same load would be deduplicated arbitrarily by the
            # merge; keep the first and let the caller re-fetch this one after the load.
            self._state[contact_id] = _pack(fp, pass_no, True, False)
            return Decision.CONFLICT
        self._state[contact_id] = _pack(fp, pass_no, True, False)
        return Decision.LATE_CHANGE

    def first_in_pass(self, contact_id: str, pass_no: int) -> bool:
        """Whether ``contact_id`` has not been seen by ``pass_no`` yet (call before observe)."""
        value = self._state.get(contact_id)
        return value is None or ((value >> _PASS_SHIFT) & _PASS_MASK) != pass_no

    def mark_deleted(self, contact_id: str) -> None:
        """Record that this run marked the contact deleted."""
        value = self._state.get(contact_id, 0)
        self._state[contact_id] = value | _DELETED | _EMITTED

    def missing_from(self, pass_no: int) -> list[str]:
        """Delete candidates: warehouse-live ids that scan ``pass_no`` did not see.

        The last scan is the one that counts: a contact seen by an earlier scan but not by the
        last one may have been archived in between. Ids this run emitted are left out — their
        row is not in the warehouse yet, and a second version in the same load would be
        ambiguous; the next run checks them.
        """
        return [
            contact_id
            for contact_id, value in self._state.items()
            if not value & (_DELETED | _EMITTED)
            and ((value >> _PASS_SHIFT) & _PASS_MASK) != pass_no
        ]


def _has_table(pipeline: SupportsPipeline) -> bool:
    if not pipeline.default_schema_name:
        return False
    schema = pipeline.schemas[pipeline.default_schema_name]
    return TABLE_NAME in schema.tables and bool(schema.get_table_columns(TABLE_NAME))


def load_fingerprints(pipeline: SupportsPipeline | None) -> Mirror:
    """Read ``{id: (fingerprint, is_deleted)}`` of every row of the contacts table.

    Args:
        pipeline: The pipeline loading the source; None (or no table yet) gives an empty mirror.
    """
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    mirror = Mirror()
    if pipeline is None or not _has_table(pipeline):
        return mirror
    with pipeline.sql_client() as client:  # type: ignore[attr-defined]
        table = client.make_qualified_table_name(TABLE_NAME)
        cols = ", ".join(
            client.escape_column_name(c) for c in ("id", "updated_at", "created_at", "is_deleted")
        )
        try:
            with (
                client.execute_query(f"SELECT {cols} FROM {table}") as cursor,
                warnings.catch_warnings(),
            ):
                # DuckDB's note that Arrow output from a DB-API cursor copies the rows: a copy of
                # one 50k-row chunk at a time is what we want here
                warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
                for chunk in cursor.iter_arrow(50_000):
                    add_chunk(mirror, chunk)
        except DatabaseUndefinedRelation:
            return Mirror()  # in the schema, not (or no longer) in the destination
    return mirror


def add_chunk(mirror: Mirror, chunk: pa.Table) -> None:
    """Add one Arrow chunk of ``id, updated_at, created_at, is_deleted`` rows."""
    ids = chunk.column(0).to_pylist()
    deleted = chunk.column(3).to_pylist()
    updated, created = chunk.column(1), chunk.column(2)
    if pa.types.is_timestamp(updated.type) and pa.types.is_timestamp(created.type):
        # vectorised: epoch microseconds straight from Arrow
        stamps = pc.coalesce(updated.cast(TIMESTAMP_TYPE), created.cast(TIMESTAMP_TYPE))
        fingerprints = stamps.cast(pa.int64()).to_pylist()
    else:  # a driver that hands back other types: convert value by value
        fingerprints = [
            datetime_micros(u or c)
            for u, c in zip(updated.to_pylist(), created.to_pylist(), strict=True)
        ]
    for contact_id, fingerprint, is_deleted in zip(ids, fingerprints, deleted, strict=True):
        mirror.add(contact_id, fingerprint, deleted=bool(is_deleted))


_ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "json": pa.string(),
    "timestamp": TIMESTAMP_TYPE,
    "bool": pa.bool_(),
    "bigint": pa.int64(),
    "double": pa.float64(),
}


def _cell(value: Any, data_type: str) -> Any:
    if value is None or data_type in ("timestamp", "bool", "bigint", "double", "text"):
        return value
    if data_type == "json":
        return value if isinstance(value, str) else to_json_text(value)
    return str(value)


def read_rows(
    pipeline: SupportsPipeline, ids: Iterable[str], *, batch: int = MIRROR_QUERY_BATCH
) -> Iterator[pa.Table]:
    """The warehouse rows of ``ids`` (every column except dlt's), as Arrow tables.

    Used to re-emit a contact with ``is_deleted = true``: a merge replaces whole rows, so the
    other columns must be sent again or they would become null.
    """
    schema = pipeline.schemas[pipeline.default_schema_name]
    columns = {
        name: str(col.get("data_type") or "text")
        for name, col in schema.get_table_columns(TABLE_NAME).items()
        if not name.startswith("_dlt")
    }
    arrow_schema = pa.schema(
        [
            pa.field(name, _ARROW_TYPES.get(dtype, pa.string()), nullable=(name != "id"))
            for name, dtype in columns.items()
        ]
    )
    pending = list(ids)
    with pipeline.sql_client() as client:  # type: ignore[attr-defined]
        table = client.make_qualified_table_name(TABLE_NAME)
        select = ", ".join(
            # JSON as text: DuckDB and PostgreSQL drivers would otherwise return other types
            f"CAST({client.escape_column_name(n)} AS TEXT)"
            if t == "json"
            else client.escape_column_name(n)
            for n, t in columns.items()
        )
        id_col = client.escape_column_name("id")
        for start in range(0, len(pending), batch):
            chunk = pending[start : start + batch]
            literals = ", ".join("'" + i.replace("'", "''") + "'" for i in chunk)
            sql = f"SELECT {select} FROM {table} WHERE {id_col} IN ({literals})"
            with client.execute_query(sql) as cursor:
                rows = cursor.fetchall()
            if not rows:
                continue
            arrays = [
                pa.array([_cell(row[i], dtype) for row in rows], arrow_schema.field(name).type)
                for i, (name, dtype) in enumerate(columns.items())
            ]
            yield pa.Table.from_arrays(arrays, schema=arrow_schema)


def utc_now() -> datetime:
    """The deletion timestamp: now, in UTC, to the microsecond."""
    return datetime.now(UTC)
