"""Vectorized text normalization shared by the mapping and cleaning transforms.

The patterns are written so that both regex engines pandas may use give the same result: RE2
(through pyarrow, for the default ``str`` dtype of pandas 3) and Python's ``re`` (object
columns). That is why they use ``\\xhh`` escapes and literal characters instead of ``\\s`` or
``\\uXXXX``, whose meaning differs between the two.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import pandas as pd

#: Invisible characters removed outright: C0/C1 controls that are not whitespace, zero-width
#: spaces/joiners, word joiner, and stray byte-order marks. They never carry meaning in a name
#: or an address, and NUL bytes cannot be stored by some warehouses (PostgreSQL text).
INVISIBLE_PATTERN: Final = (
    "[\\x00-\\x08\\x0e-\\x1f\\x7f-\\x84\\x86-\\x9f\u200b\u200c\u200d\u2060\ufeff]"
)
#: Runs of whitespace (ASCII, NEL, no-break and the Unicode space separators) → one space.
WHITESPACE_PATTERN: Final = (
    "[\\t\\n\\x0b\\x0c\\r \\x85\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
)


def normalize_text(values: pd.Series) -> pd.Series:
    """Trim, collapse whitespace, drop invisible characters; empty strings become missing.

    Args:
        values: Any Series; non-string values are converted with ``str`` first.

    Returns:
        A Series of dtype ``str`` with the same index, missing (NaN) where the input was missing
        or became empty.
    """
    text = values.astype("str")
    text = text.str.replace(INVISIBLE_PATTERN, "", regex=True)
    text = text.str.replace(WHITESPACE_PATTERN, " ", regex=True).str.strip(" ")
    return text.mask(text == "")


def to_object(values: pd.Series) -> pd.Series:
    """Return an object Series holding Python values, with ``None`` for every missing value.

    Downstream code builds JSON payloads from these values, where NaN would be wrong.
    """
    out = values.astype(object)
    return out.where(values.notna(), None)


def _tag_item(item: Any) -> str | None:
    if item is None or (isinstance(item, float) and item != item):  # None, NaN
        return None
    if isinstance(item, dict | list):
        raise ValueError("contains a nested object or list")
    text = item if isinstance(item, str) else json.dumps(item)
    return re.sub(WHITESPACE_PATTERN, " ", text).strip(" ") or None


def parse_tags(value: Any) -> list[str]:
    """The one tag rule: a list, a JSON list, or text split on ``;`` and ``,``.

    Items are trimmed (whitespace runs become one space), empty ones dropped, exact duplicates
    removed (first kept, case preserved); non-string JSON items are written as JSON (``1``,
    ``true``). Used by the cleaning step (input cells) and the push plan (stored tags).

    Args:
        value: ``None``/NaN (no tags), a string, or a list-like (list, tuple, numpy array,
            pyarrow list).

    Returns:
        The tags, in order.

    Raises:
        ValueError: When an item is itself an object or a list.
    """
    if value is None or (isinstance(value, float) and value != value):
        return []
    items: list[Any]
    if isinstance(value, str):
        text = value.strip()
        parsed = None
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        items = parsed if isinstance(parsed, list) else re.split("[;,]", text)
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        try:  # numpy arrays and pyarrow lists
            items = list(value)
        except TypeError:
            items = [value]
    tags = (_tag_item(item) for item in items)
    return list(dict.fromkeys(tag for tag in tags if tag))


def numbers_as_text(values: pd.Series) -> pd.Series:
    """A numeric column as the text a CSV would hold; other columns unchanged.

    A notebook DataFrame read with pandas' defaults turns a phone or CRM id column with a gap
    into floats (``4155550100.0``): whole-number floats are written back without the ``.0``
    (which would otherwise add a digit to a phone); integers and booleans as ``str``; missing
    values become ``""``.
    """
    if pd.api.types.is_float_dtype(values) and bool(values.notna().any()):
        present = values.dropna()
        if bool((present == present.round()).all()):
            return values.map(lambda v: "" if pd.isna(v) else str(int(v)))
    elif pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.map(lambda v: "" if pd.isna(v) else str(v))
    return values


def as_text_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Every column through :func:`numbers_as_text` (a shallow copy; ``attrs`` kept)."""
    out = df.copy(deep=False)
    for column in out.columns:
        out[column] = numbers_as_text(out[column])
    return out


def without_blank_tail(df: pd.DataFrame) -> pd.DataFrame:
    """The frame without its trailing all-blank rows (a spreadsheet's ``,,,,`` lines at the end).

    Such rows hold no data: a push ignores them rather than rejecting them for a missing first
    name. All-blank rows *between* data rows are kept, so row numbers still match the file.
    Internal (``_``-prefixed) columns are not looked at.
    """
    columns = [c for c in df.columns if not str(c).startswith("_")]
    if df.empty or not columns:
        return df
    filled = (
        as_text_frame(df[columns])
        .astype("str")
        .apply(lambda column: normalize_text(column).notna())
    )
    has_data = filled.any(axis=1).to_numpy()
    last = int(has_data.nonzero()[0].max()) + 1 if has_data.any() else 0
    return df if last == len(df) else df.iloc[:last]
