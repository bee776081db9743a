"""Match keys: which column identifies a contact, and how its values are normalized.

Input rows and warehouse contacts are compared on normalized values only, so that
``Ana@Acme.test`` matches ``ana@acme.test`` and ``+1 (415) 555-0100`` matches
``+14155550100``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from transforms.phones import phone_key

_CUSTOM_PREFIX = "custom_fields."


@dataclass(frozen=True)
class MatchKey:
    """A parsed ``--match-on`` value.

    Attributes:
        kind: ``"email"``, ``"phone"``, ``"id"`` or ``"custom"``.
        custom_key: The key inside ``custom_fields`` when ``kind == "custom"``.
    """

    kind: str
    custom_key: str | None = None

    @property
    def label(self) -> str:
        """The spelling the user gave (``email`` or ``custom_fields.hubspot_id``)."""
        return f"{_CUSTOM_PREFIX}{self.custom_key}" if self.kind == "custom" else self.kind


def parse_match_on(value: str) -> MatchKey:
    """Parse a ``--match-on`` value.

    Args:
        value: ``email``, ``phone``, ``id`` or ``custom_fields.<key>``.

    Returns:
        The parsed key.

    Raises:
        ValueError: For anything else; the message lists what is accepted.
    """
    text = value.strip()
    if text in ("email", "phone", "id"):
        return MatchKey(text)
    if text.startswith(_CUSTOM_PREFIX) and len(text) > len(_CUSTOM_PREFIX):
        return MatchKey("custom", text[len(_CUSTOM_PREFIX) :])
    raise ValueError(
        f"--match-on {value!r} is not supported: use email, phone, id or custom_fields.<key>"
    )


def scalar_text(value: Any) -> str | None:
    """Render a scalar (from a CSV cell or a JSON document) as comparable text.

    ``None``, NaN and blank strings become ``None``; JSON scalars are rendered as JSON would
    (``42`` -> ``"42"``, ``True`` -> ``"true"``) so that a CSV cell ``"42"`` equals a stored 42.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, float) and value != value:  # NaN from pandas
        return None
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, default=str)


def normalize_phone(value: Any, default_region: str | None = "US") -> str | None:
    """A phone as compared for matching: :func:`transforms.phones.phone_key` (E.164 when valid
    in its region, the same rule the cleaning step applies; else as written, unpunctuated)."""
    return phone_key(scalar_text(value), default_region)


def normalize_key(key: MatchKey, value: Any, default_region: str | None = "US") -> str | None:
    """Normalize one match-key value; ``None`` when the value is empty."""
    if key.kind == "phone":
        return normalize_phone(value, default_region)
    text = scalar_text(value)
    if text is None:
        return None
    if key.kind in ("email", "id"):
        return text.lower()
    return text


def key_of(key: MatchKey, fields: dict[str, Any], default_region: str | None = "US") -> str | None:
    """The normalized match key of a row or contact given as a dict of fields."""
    if key.kind == "custom":
        custom = fields.get("custom_fields")
        if not isinstance(custom, dict):
            return None
        return normalize_key(key, custom.get(key.custom_key or ""), default_region)
    return normalize_key(key, fields.get(key.kind), default_region)
