"""API contact dicts -> typed Arrow tables, and the fingerprint that decides what changed.

dlt loads Arrow tables several times faster than lists of dicts (no per-row normalisation), so
every page becomes one table with the schema of :data:`~pipelines.source.settings.ARROW_SCHEMA`.
Fields the API may add later are kept as extra text columns rather than dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.source.settings import (
    ARROW_SCHEMA,
    JSON_FIELDS,
    KNOWN_COLUMNS,
    TEXT_FIELDS,
    TIMESTAMP_FIELDS,
    TIMESTAMP_TYPE,
)

__all__ = [
    "contacts_table",
    "fingerprints",
    "parse_timestamps",
    "row_fingerprints",
    "to_json_text",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Fractions longer than microseconds (nanosecond clocks) are cut to what the warehouse stores.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def to_json_text(value: Any) -> str:
    """Compact JSON text of a decoded JSON value."""
    return orjson.dumps(value).decode()


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return to_json_text(value)


def _text_array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # The API sent a non-string where a string was documented: keep it, as JSON text.
        return pa.array([_text(v) for v in values], pa.string())


def _json_array(values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else to_json_text(v) for v in values], pa.string())


def _parse_one(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"contact field {field!r}: expected an ISO-8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        raise ValueError(f"contact field {field!r}: not an ISO-8601 timestamp: {value!r}") from None
    # A timestamp without offset is taken as UTC: the API documents UTC throughout.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_timestamps(values: list[Any], field: str = "timestamp") -> pa.Array:
    """ISO-8601 strings (or None) -> ``timestamp[us, UTC]``.

    Arrow's vectorised parser handles the API's form (``...123456Z``); anything else it refuses
    (no offset, nanoseconds) goes through Python's parser one value at a time.

    Raises:
        ValueError: For a value that is not a timestamp; the message names the field.
    """
    try:
        return pa.array(values, pa.string()).cast(TIMESTAMP_TYPE)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([_parse_one(v, field) for v in values], TIMESTAMP_TYPE)


def contacts_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Build the Arrow table of live contacts as the API returned them.

    Args:
        rows: Contact dicts, each with a non-empty string ``id``.

    Returns:
        A table with every column of ``ARROW_SCHEMA`` (``is_deleted`` false, ``deleted_at``
        null), then one text column per unknown field, sorted by name (strings as-is, other
        values as JSON text).
    """
    n = len(rows)
    arrays: list[pa.Array] = [pa.array([r["id"] for r in rows], pa.string())]
    arrays.extend(_text_array([r.get(name) for r in rows]) for name in TEXT_FIELDS)
    arrays.extend(_json_array([r.get(name) for r in rows]) for name in JSON_FIELDS)
    arrays.extend(parse_timestamps([r.get(name) for r in rows], name) for name in TIMESTAMP_FIELDS)
    arrays.append(pa.array([False] * n, pa.bool_()))
    arrays.append(pa.nulls(n, TIMESTAMP_TYPE))
    table = pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)
    extra = sorted({key for row in rows for key in row} - KNOWN_COLUMNS)
    for name in extra:
        column = pa.array([_text(row.get(name)) for row in rows], pa.string())
        table = table.append_column(pa.field(name, pa.string()), column)
    return table


def fingerprints(table: pa.Table) -> list[int | None]:
    """Per row: ``updated_at``, or ``created_at`` when never updated, as epoch microseconds."""
    stamp = pc.coalesce(table["updated_at"], table["created_at"])
    return stamp.cast(pa.int64()).to_pylist()


def row_fingerprints(rows: Sequence[Mapping[str, Any]]) -> list[int | None]:
    """:func:`fingerprints` straight from the API's dicts, without building an Arrow table.

    Most contacts of a sync are unchanged: deciding on the dicts means only the rows to load
    are converted to Arrow, and a sync with nothing to load never builds an Arrow array at all
    (pyarrow's first conversion from Python objects also imports pandas, ~1 s of start-up).

    Raises:
        ValueError: For a timestamp that is not ISO-8601; the message names the field.
    """
    out: list[int | None] = []
    for row in rows:
        created = _parse_fast(row.get("created_at"), "created_at")
        updated = _parse_fast(row.get("updated_at"), "updated_at")
        out.append(datetime_micros(updated if updated is not None else created))
    return out


def _parse_fast(value: Any, field: str) -> datetime | None:
    """:func:`_parse_one`, trying the API's own form (``...123456Z``) first: one call per value."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)  # aware or naive; datetime_micros takes both
        except ValueError:
            pass
    return _parse_one(value, field)


def datetime_micros(value: datetime | None) -> int | None:
    """A datetime read back from the warehouse as epoch microseconds (naive = UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
