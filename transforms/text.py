"""Vectorized text normalization shared by the mapping and cleaning transforms.

The patterns are written so that both regex engines pandas may use give the same result: RE2
(through pyarrow, for the default ``str`` dtype of pandas 3) and Python's ``re`` (object
columns). That is why they use ``\\xhh`` escapes and literal characters instead of ``\\s`` or
``\\uXXXX``, whose meaning differs between the two.
"""

from __future__ import annotations

from typing import Final

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
