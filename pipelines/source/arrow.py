"""API contact dicts -> typed Arrow tables, and the fingerprint that decides what changed.

dlt loads Arrow tables several times faster than lists of dicts (no per-row normalisation), so
every page becomes one table with the schema of :data:`~pipelines.source.settings.ARROW_SCHEMA`.
Fields the API may add later are kept as extra text columns rather than dropped.

One bad record never fails a page. A value that cannot be stored as sent is stored as far as
it can be and reported as a :class:`RecordProblem` (which the source writes to the
``contacts_rejected`` table, raw record included):

- a lone surrogate (``"\\ud83d"``, not encodable as UTF-8) is replaced by U+FFFD;
- a timestamp that is not ISO-8601 (``""``, ``"0000-00-00T00:00:00Z"``, ``1767225600``) is
  stored as null (epoch numbers are not guessed at: seconds or milliseconds?);
- a value over :data:`~pipelines.source.settings.MAX_VALUE_BYTES` is stored as null.

The fast path (whole columns at once) is unchanged for clean pages; a column falls back to
value-by-value conversion only when Arrow refuses it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.source.settings import (
    API_COLUMNS,
    ARROW_SCHEMA,
    JSON_FIELDS,
    KNOWN_COLUMNS,
    LOAD_ID_COLUMN,
    MAX_RAW_CHARS,
    MAX_RAW_VALUE_CHARS,
    MAX_VALUE_BYTES,
    TEXT_FIELDS,
    TIMESTAMP_FIELDS,
    TIMESTAMP_TYPE,
)

__all__ = [
    "Converted",
    "RecordProblem",
    "arrow_array",
    "contacts_table",
    "convert_contacts",
    "fingerprints",
    "parse_timestamps",
    "raw_payload",
    "to_json_text",
    "with_load_id",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Fractions longer than microseconds (nanosecond clocks) are cut to what the warehouse stores.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")

SURROGATE = "lone surrogate replaced by U+FFFD"
NOT_A_TIMESTAMP = "not an ISO-8601 timestamp: stored as null"


@dataclass(frozen=True)
class RecordProblem:
    """One value of one contact that could not be stored as the API sent it.

    Attributes:
        contact_id: The contact's id.
        field: The API field name.
        reason: What was wrong and what was stored instead.
        raw: The whole record as received, as JSON text, long values cut (see
            :func:`raw_payload`).
        unreliable_fingerprint: The record's ``updated_at``/``created_at`` could not be read,
            so "unchanged" cannot be decided: the source loads it again on every run.
    """

    contact_id: str
    field: str
    reason: str
    raw: str
    unreliable_fingerprint: bool = False


@dataclass
class Converted:
    """One page (or batch) converted: the table to load and what had to be repaired.

    Attributes:
        table: The Arrow table (schema of ``ARROW_SCHEMA`` plus unknown fields).
        problems: Values stored other than as sent.
        renamed: Unknown API fields stored under another column name (original -> column),
            because their normalised name was taken.
    """

    table: pa.Table
    problems: list[RecordProblem] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)

    def unreliable_ids(self) -> set[str]:
        """Ids whose fingerprint cannot be trusted (unreadable timestamps)."""
        return {p.contact_id for p in self.problems if p.unreliable_fingerprint}


def _validity(values: Sequence[Any]) -> tuple[pa.Buffer | None, int]:
    """Arrow's validity bitmap of ``values`` (None = null) and the null count."""
    nulls = sum(v is None for v in values)
    if not nulls:
        return None, 0
    bits = bytearray((len(values) + 7) // 8)
    for i, value in enumerate(values):
        if value is not None:
            bits[i >> 3] |= 1 << (i & 7)
    return pa.py_buffer(bits), nulls


def _utf8(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise pa.ArrowTypeError(f"Expected bytes, got a {type(value).__name__!r} object")
    return value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, as pyarrow does


def arrow_array(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """``pa.array(values, type_)`` for a list of str, bool or datetime (or None), without pandas.

    ``pa.array`` asks its pandas shim whether its argument is a pandas object, and the first
    time that imports pandas: about a second of CPU, more than all the processing of a
    20,000-contact sync with no change. The sync never needs pandas, so its arrays are built
    from buffers instead: the same values, nulls and errors (``ArrowTypeError`` for a
    non-string, ``UnicodeEncodeError`` for a lone surrogate) as ``pa.array``.

    Args:
        values: Python values of one column (None for null).
        type_: ``pa.string()``, ``pa.bool_()`` or a timestamp type (``datetime`` values;
            naive ones are taken as UTC).
    """
    validity, nulls = _validity(values)
    n = len(values)
    if pa.types.is_string(type_):
        parts = [_utf8(v) for v in values]
        try:
            offsets = array("i", accumulate(map(len, parts), initial=0))
        except OverflowError:  # 32-bit offsets: over 2 GiB of text in one page's column
            raise pa.ArrowInvalid("more than 2 GiB of text in one column") from None
        buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(parts))]
    elif pa.types.is_boolean(type_):
        bits = bytearray((n + 7) // 8)
        for i, value in enumerate(values):
            if value:
                bits[i >> 3] |= 1 << (i & 7)
        buffers = [validity, pa.py_buffer(bits)]
    elif pa.types.is_timestamp(type_) and type_.unit == "us":
        micros = array("q", (datetime_micros(v) or 0 for v in values))
        buffers = [validity, pa.py_buffer(micros)]
    else:
        raise TypeError(f"arrow_array does not build {type_} arrays")
    return pa.Array.from_buffers(type_, n, buffers, null_count=nulls)


def to_json_text(value: Any) -> str:
    """Compact JSON text of a decoded JSON value."""
    return orjson.dumps(value).decode()


def _lenient_json_text(value: Any) -> str:
    """JSON text of anything the API's JSON decodes to (orjson refuses surrogates, big ints)."""
    try:
        return to_json_text(value)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def replace_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (a no-op for valid text)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_RAW_VALUE_CHARS:
        return f"{value[:MAX_RAW_VALUE_CHARS]}…[{len(value):,} characters]"
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v) for v in value]
    return value


def raw_payload(row: Mapping[str, Any]) -> str:
    """The record as received, as JSON text fit for a warehouse cell.

    Strings longer than ``MAX_RAW_VALUE_CHARS`` are cut (their length noted), lone surrogates
    stay visible as ``\\ud83d`` escapes, and the whole text is capped at ``MAX_RAW_CHARS``.
    """
    text = json.dumps(_clip(dict(row)), ensure_ascii=True, separators=(",", ":"))
    if len(text) > MAX_RAW_CHARS:
        text = f"{text[:MAX_RAW_CHARS]}…[{len(text):,} characters]"
    return text


class _Page:
    """The rows of one page and the problems found while converting them."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = rows
        self.problems: list[RecordProblem] = []

    def problem(self, index: int, name: str, reason: str, *, unreliable: bool = False) -> None:
        row = self.rows[index]
        self.problems.append(
            RecordProblem(
                replace_surrogates(str(row["id"])), name, reason, raw_payload(row), unreliable
            )
        )

    def _text_value(self, index: int, name: str, value: Any) -> str | None:
        if value is None:
            return None
        text = value if isinstance(value, str) else _lenient_json_text(value)
        fixed = replace_surrogates(text)
        if fixed != text:
            self.problem(index, name, SURROGATE)
        return fixed

    def text_column(self, name: str, values: list[Any]) -> pa.Array:
        """Strings as-is, other values as JSON text; repaired value by value when refused."""
        try:
            column = arrow_array(values, pa.string())
        except (pa.ArrowTypeError, pa.ArrowInvalid, UnicodeEncodeError):
            # A non-string where a string was documented (kept, as JSON text), or a value UTF-8
            # cannot encode.
            column = arrow_array(
                [self._text_value(i, name, v) for i, v in enumerate(values)], pa.string()
            )
        return self._cap(name, column)

    def json_column(self, name: str, values: list[Any]) -> pa.Array:
        """Values as JSON text."""
        try:
            texts = [None if v is None else to_json_text(v) for v in values]
        except (orjson.JSONEncodeError, TypeError):
            texts = []
            for i, v in enumerate(values):
                if v is None:
                    texts.append(None)
                    continue
                text = _lenient_json_text(v)
                fixed = replace_surrogates(text)
                if fixed != text:
                    self.problem(i, name, SURROGATE)
                texts.append(fixed)
        return self._cap(name, arrow_array(texts, pa.string()))

    def _cap(self, name: str, array: pa.Array) -> pa.Array:
        """Null out values over ``MAX_VALUE_BYTES`` (they would not fit the load's memory)."""
        if array.nbytes <= MAX_VALUE_BYTES:  # O(1): no single value can be over
            return array
        lengths = pc.binary_length(array)
        longest = pc.max(lengths).as_py()
        if longest is None or longest <= MAX_VALUE_BYTES:
            return array
        over = pc.fill_null(pc.greater(lengths, MAX_VALUE_BYTES), False)
        for i in pc.indices_nonzero(over).to_pylist():
            size = lengths[i].as_py()
            self.problem(
                i,
                name,
                f"value of {size / 1e6:.1f} MB over the {MAX_VALUE_BYTES / 2**20:.0f} MiB limit: "
                "stored as null",
            )
        return pc.if_else(over, pa.nulls(len(array), pa.string()), array)

    def timestamp_column(self, name: str, values: list[Any]) -> pa.Array:
        """ISO-8601 strings -> timestamps; any other value becomes null and a problem."""
        try:
            return parse_timestamps(values, name)
        except ValueError:
            pass
        out: list[datetime | None] = []
        for i, v in enumerate(values):
            try:
                out.append(_parse_one(v, name))
            except ValueError:
                self.problem(i, name, NOT_A_TIMESTAMP, unreliable=True)
                out.append(None)
        return arrow_array(out, TIMESTAMP_TYPE)


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
        return arrow_array(values, pa.string()).cast(TIMESTAMP_TYPE)
    except (pa.ArrowTypeError, pa.ArrowInvalid, UnicodeEncodeError):
        return arrow_array([_parse_one(v, field) for v in values], TIMESTAMP_TYPE)


def column_name(field_name: str) -> str:
    """The warehouse column of an unknown API field, when nothing collides with it.

    dlt's ``snake_case`` convention (what dlt would apply to the Arrow table itself).
    """
    return _naming().normalize_identifier(replace_surrogates(field_name))


@functools.cache
def _naming() -> Any:
    # dlt on use: pages without unknown fields never need it (see pipelines.source.quick)
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention()


def _suffixed(field_name: str, base: str) -> str:
    digest = hashlib.sha1(field_name.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return f"{base}_{digest}"


def extra_columns(names: Sequence[str]) -> dict[str, str]:
    """Column names for unknown API fields: ``{field: column}``, never two fields to one column.

    A field keeps dlt's normalised form of its name unless that is taken — by a column the
    source owns (``first_name``, ``is_deleted``, ``_dlt_*``), or by another field already
    spelled that way (``lead_score`` next to ``Lead Score``). A field that loses is stored as
    ``<normalised>_<first 6 hex digits of the SHA-1 of its original name>``: the same column on
    every run, e.g. ``firstName`` -> ``first_name_<hash>``.
    """
    normalised = {name: column_name(name) for name in names}
    taken = set(KNOWN_COLUMNS)
    # A field already spelled as its column claims it first, whatever the order of the keys.
    ordered = sorted(names, key=lambda n: (normalised[n] != n, n))
    out: dict[str, str] = {}
    for name in ordered:
        column = normalised[name]
        if column in taken or column.startswith("_dlt"):
            column = _suffixed(name, column)
        while column in taken:  # a hash prefix shared by two names: practically never
            column = _suffixed(column, column)
        taken.add(column)
        out[name] = column
    return out


def convert_contacts(rows: Sequence[Mapping[str, Any]]) -> Converted:
    """Build the Arrow table of live contacts as the API returned them.

    Args:
        rows: Contact dicts, each with a non-empty string ``id``.

    Returns:
        The table — every column of ``ARROW_SCHEMA`` (``is_deleted`` false, ``deleted_at``
        null), then one text column per unknown field sorted by column name (strings as-is,
        other values as JSON text) — with the problems found and the renamed fields.
    """
    n = len(rows)
    page = _Page(rows)
    arrays: list[pa.Array] = [page.text_column("id", [r["id"] for r in rows])]
    arrays.extend(page.text_column(name, [r.get(name) for r in rows]) for name in TEXT_FIELDS)
    arrays.extend(page.json_column(name, [r.get(name) for r in rows]) for name in JSON_FIELDS)
    arrays.extend(
        page.timestamp_column(name, [r.get(name) for r in rows]) for name in TIMESTAMP_FIELDS
    )
    arrays.append(arrow_array([False] * n, pa.bool_()))
    arrays.append(pa.nulls(n, TIMESTAMP_TYPE))
    table = pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)
    extra = sorted({key for row in rows for key in row} - API_COLUMNS)
    columns = extra_columns(extra)
    for name in sorted(extra, key=columns.__getitem__):
        array = page.text_column(name, [row.get(name) for row in rows])
        table = table.append_column(pa.field(columns[name], pa.string()), array)
    renamed = {name: col for name, col in columns.items() if col != column_name(name)}
    return Converted(table, page.problems, renamed)


def contacts_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The Arrow table of :func:`convert_contacts` (problems and renames dropped)."""
    return convert_contacts(rows).table


def fingerprints(table: pa.Table) -> list[int | None]:
    """Per row: ``updated_at``, or ``created_at`` when never updated, as epoch microseconds."""
    stamp = pc.coalesce(table["updated_at"], table["created_at"])
    return stamp.cast(pa.int64()).to_pylist()


def datetime_micros(value: datetime | None) -> int | None:
    """A datetime read back from the warehouse as epoch microseconds (naive = UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def with_load_id(table: pa.Table, load_id: str) -> pa.Table:
    """``table`` with its ``_dlt_load_id`` column set to ``load_id`` (replaced if present).

    What dlt's ``add_dlt_load_id`` does to an Arrow table (a dictionary-encoded column of one
    value), but dlt builds that one-value dictionary with ``pa.array``, whose first call imports
    pandas (see :func:`arrow_array`): about 0.7 s of a sync's CPU for one column.
    """
    n = table.num_rows
    indices = pa.Array.from_buffers(pa.int8(), n, [None, pa.py_buffer(bytes(n))])
    column = pa.DictionaryArray.from_arrays(indices, arrow_array([load_id], pa.string()))
    if (index := table.schema.get_field_index(LOAD_ID_COLUMN)) != -1:
        table = table.remove_column(index)
    return table.append_column(pa.field(LOAD_ID_COLUMN, column.type, nullable=False), column)
