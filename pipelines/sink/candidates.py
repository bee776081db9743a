"""Which warehouse rows a push must read: a SQL pre-filter by the input rows' match keys.

A push of N rows needs the live contacts that could match one of its N keys, not the whole
tenant. The filter here selects a *superset* of them in SQL (DuckDB dialect; the warehouse
transpiles it), cheaply; the planner then compares normalized keys exactly
(:func:`pipelines.sink.keys.key_of`), so a loose filter costs rows read, never a wrong match:

- ``email`` / ``id``: ``lower(trim(column))`` among the keys (the normalization itself);
- ``phone``: the stored number's digits contain the last digits of a key — any spelling of the
  same number keeps its subscriber digits contiguous (``(415) 555-0100``, ``+1 415 555 0100``,
  ``4155550100 x12``) — plus every number written with letters (vanity numbers);
- ``custom_fields.<key>``: the JSON text mentions the key.

Beyond :data:`MAX_FILTERED_KEYS` keys the whole mirror is read: the input is then as large as
a full read anyway, and one query beats a very long one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipelines.sink.keys import MatchKey

__all__ = ["MAX_FILTERED_KEYS", "PHONE_TAIL_DIGITS", "candidate_filter"]

#: More keys than this: read every live contact instead of filtering.
MAX_FILTERED_KEYS = 2_000
#: Trailing digits of a phone key that every spelling of the number contains.
PHONE_TAIL_DIGITS = 7

_NON_DIGITS = re.compile(r"[^0-9]")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def candidate_filter(match_on: MatchKey, keys: Iterable[str]) -> str | None:
    """A SQL condition (DuckDB dialect) over ``contacts`` selecting a superset of the matches.

    Args:
        match_on: The push's match key.
        keys: The input rows' normalized keys.

    Returns:
        The condition; ``"FALSE"`` when there are no keys; ``None`` when every live contact
        must be read (too many keys, or keys that cannot be narrowed).
    """
    wanted = sorted(set(keys))
    if not wanted:
        return "FALSE"
    if len(wanted) > MAX_FILTERED_KEYS:
        return None
    if match_on.kind in ("email", "id"):
        column = match_on.kind
        values = ", ".join(_literal(key) for key in wanted)
        return f"lower(trim({column})) IN ({values})"
    if match_on.kind == "phone":
        tails = set()
        for key in wanted:
            digits = _NON_DIGITS.sub("", key)
            if not digits:
                return None  # a key without digits: nothing to narrow by
            tails.add(digits[-PHONE_TAIL_DIGITS:])
        digits_of_phone = "regexp_replace(phone, '[^0-9]', '', 'g')"
        contains = " OR ".join(f"strpos({digits_of_phone}, '{tail}') > 0" for tail in sorted(tails))
        return f"phone IS NOT NULL AND (regexp_matches(phone, '[A-Za-z]') OR {contains})"
    if match_on.kind == "custom" and match_on.custom_key:
        return f"strpos(CAST(custom_fields AS TEXT), {_literal(match_on.custom_key)}) > 0"
    return None
