"""Plan a push: diff cleaned input rows against the warehouse mirror of the live contacts.

Pure pandas and Python, no I/O. Every input row gets exactly one planned action:

* ``create`` — no live contact has the row's match key;
* ``update`` — one contact matches and at least one mapped field differs (only those are sent);
* ``unchanged`` — one contact matches and nothing differs (no API call);
* ``reject`` — the row is invalid, has no match key, shares its key with another input row, or
  its key matches several contacts; ``reason`` says which.

Field semantics: an empty cell never clears a value unless ``clear_empty``; ``custom_fields``
are merged key by key with the stored object (PATCH replaces the whole object, so the merged
object is sent); tags are united with the stored ones (``tags="union"``) or replace them
(``tags="replace"``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from pipelines.sink.keys import MatchKey, key_of, normalize_key, normalize_phone, scalar_text
from transforms.contact import NULLABLE_FIELDS
from transforms.text import parse_tags

Action = Literal["create", "update", "unchanged", "reject"]
TagsMode = Literal["union", "replace"]

#: Scalar (string) fields a push may set, in the API's order.
SCALAR_FIELDS = ("first_name", "last_name", "phone", "email", "company", "job_title", "status")


@dataclass
class PlannedRow:
    """What the push will do with one input row.

    Attributes:
        row_number: 1-based row of the input file.
        match_key: The normalized match-key value (``None`` when the row has none).
        action: ``create``, ``update``, ``unchanged`` or ``reject``.
        contact_id: The matched contact (updates and unchanged rows).
        payload: Body of the create item or of the PATCH (only the fields that differ).
        changes: Field -> ``(stored value, new value)`` for updates.
        reason: Why a row is rejected.
    """

    row_number: int
    match_key: str | None
    action: Action
    contact_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    reason: str | None = None


@dataclass
class Plan:
    """The planned action of every input row, in input order."""

    rows: list[PlannedRow]
    match_on: MatchKey

    def by_action(self, action: Action) -> list[PlannedRow]:
        """The rows planned for one action."""
        return [row for row in self.rows if row.action == action]

    def counts(self) -> dict[str, int]:
        """Number of rows per action (every action present, zero included)."""
        counter = Counter(row.action for row in self.rows)
        return {name: counter.get(name, 0) for name in ("create", "update", "unchanged", "reject")}

    def to_frame(self) -> pd.DataFrame:
        """One row per input row: row_number, match_key, action, contact_id, changed_fields,
        reason."""
        return pd.DataFrame(
            {
                "row_number": [r.row_number for r in self.rows],
                "match_key": [r.match_key for r in self.rows],
                "action": [r.action for r in self.rows],
                "contact_id": [r.contact_id for r in self.rows],
                "changed_fields": [",".join(changed_fields(r.changes)) or None for r in self.rows],
                "reason": [r.reason for r in self.rows],
            }
        )


def changed_custom_keys(old: Any, new: Any) -> list[str]:
    """Keys of ``custom_fields`` whose value differs between two objects (added, changed or
    removed), in the new object's order then the removed ones."""
    before, after = as_dict(old), as_dict(new)
    changed = [
        k for k, v in after.items() if k not in before or not _same_custom_value(before[k], v)
    ]
    return changed + [k for k in before if k not in after]


def changed_fields(changes: dict[str, tuple[Any, Any]]) -> list[str]:
    """Changed field names, with ``custom_fields`` spelled per key (``custom_fields.plan``)."""
    names: list[str] = []
    for name, (old, new) in changes.items():
        if name == "custom_fields":
            names.extend(f"custom_fields.{key}" for key in changed_custom_keys(old, new))
        else:
            names.append(name)
    return names


def as_tag_list(value: Any) -> list[str]:
    """Stored or planned tags as a list (:func:`transforms.text.parse_tags`; a stored value
    with nested items, which the API never returns, counts as no tags)."""
    try:
        return parse_tags(value)
    except ValueError:
        return []


def as_dict(value: Any) -> dict[str, Any]:
    """A custom_fields object from a dict or a JSON string; anything else is empty."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _clean_scalar(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(name): _clean_scalar(value) for name, value in record.items()}
        for record in df.to_dict("records")
    ]


def _same_scalar(name: str, stored: Any, new: str, default_region: str | None) -> bool:
    old = scalar_text(stored)
    if old is None:
        return False
    if name == "email":
        return old.lower() == new.lower()
    if name == "phone":
        return normalize_phone(old, default_region) == normalize_phone(new, default_region)
    return old == new


def _same_custom_value(stored: Any, new: Any) -> bool:
    if stored == new:
        return True
    return scalar_text(stored) == scalar_text(new)


@dataclass(frozen=True)
class _Options:
    columns: frozenset[str]
    clear_empty: bool
    tags_mode: TagsMode
    default_region: str | None


def _create_payload(row: dict[str, Any], opts: _Options) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for name in SCALAR_FIELDS:
        if name in opts.columns:
            text = scalar_text(row.get(name))
            if text is not None:
                payload[name] = text
    if "tags" in opts.columns:
        tags = as_tag_list(row.get("tags"))
        if tags:
            payload["tags"] = tags
    if "custom_fields" in opts.columns:
        custom = {
            key: value
            for key, value in as_dict(row.get("custom_fields")).items()
            if scalar_text(value) is not None
        }
        if custom:
            payload["custom_fields"] = custom
    return payload


def _diff(
    row: dict[str, Any], stored: dict[str, Any], opts: _Options
) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    for name in SCALAR_FIELDS:
        if name not in opts.columns:
            continue
        new = scalar_text(row.get(name))
        old = _clean_scalar(stored.get(name))
        if new is None:
            if opts.clear_empty and name in NULLABLE_FIELDS and scalar_text(old) is not None:
                changes[name] = (old, None)
        elif not _same_scalar(name, old, new, opts.default_region):
            changes[name] = (old, new)

    if "tags" in opts.columns:
        old_tags = as_tag_list(stored.get("tags"))
        new_tags = as_tag_list(row.get("tags"))
        if not new_tags:
            if opts.clear_empty and old_tags:
                changes["tags"] = (old_tags, [])
        elif opts.tags_mode == "replace":
            if set(new_tags) != set(old_tags):
                changes["tags"] = (old_tags, new_tags)
        else:
            united = old_tags + [tag for tag in new_tags if tag not in old_tags]
            if united != old_tags:
                changes["tags"] = (old_tags, united)

    if "custom_fields" in opts.columns:
        old_custom = as_dict(stored.get("custom_fields"))
        merged = dict(old_custom)
        for key, value in as_dict(row.get("custom_fields")).items():
            if scalar_text(value) is None:
                if opts.clear_empty:
                    merged.pop(key, None)
            elif key not in merged or not _same_custom_value(merged[key], value):
                merged[key] = value
        if merged != old_custom:
            changes["custom_fields"] = (old_custom, merged)
    return changes


def build_plan(
    rows: pd.DataFrame,
    mirror: pd.DataFrame,
    *,
    match_on: MatchKey,
    rejected: pd.DataFrame | None = None,
    clear_empty: bool = False,
    tags: TagsMode = "union",
    default_region: str | None = "US",
) -> Plan:
    """Diff cleaned input rows against the live contacts of the mirror.

    Args:
        rows: Cleaned, valid rows: Lynkist field columns (strings or ``None``), optionally
            ``tags`` (list or separated string) and ``custom_fields`` (dict per row), and
            ``_row_number`` (1-based input row).
        mirror: Live contacts of the warehouse: ``id`` and the contact fields (``tags`` and
            ``custom_fields`` as lists/dicts or JSON strings).
        match_on: The match key.
        rejected: Rows the cleaning rejected: ``_row_number`` and ``reason``.
        clear_empty: Let empty cells clear stored values.
        tags: ``union`` adds the row's tags to the stored ones; ``replace`` replaces them.
        default_region: Region for phone numbers without a country code (matching only).

    Returns:
        The plan, one entry per input row (valid and rejected), ordered by row number.
    """
    opts = _Options(frozenset(rows.columns), clear_empty, tags, default_region)
    planned: list[PlannedRow] = []
    if rejected is not None and len(rejected):
        for record in _records(rejected):
            # The key as written (normalized) so the results say which contact the row was for.
            planned.append(
                PlannedRow(
                    int(record["_row_number"]),
                    _rejected_key(match_on, record, default_region),
                    "reject",
                    reason=str(record.get("reason")),
                )
            )

    contacts = _records(mirror) if len(mirror) else []
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for contact in contacts:
        if match_on.kind == "custom":
            contact = {**contact, "custom_fields": as_dict(contact.get("custom_fields"))}
        contact_key = key_of(match_on, contact, default_region)
        if contact_key is not None:
            by_key[contact_key].append(contact)

    records = _records(rows)
    keys = [_row_key(match_on, record, default_region) for record in records]
    seen = Counter(key for key in keys if key is not None)
    for record, key in zip(records, keys, strict=True):
        number = int(record["_row_number"])
        if key is None:
            planned.append(
                PlannedRow(number, None, "reject", reason=f"no {match_on.label} to match on")
            )
            continue
        if seen[key] > 1:
            planned.append(
                PlannedRow(
                    number,
                    key,
                    "reject",
                    reason=f"{match_on.label} {key!r} appears on {seen[key]} input rows",
                )
            )
            continue
        matches = by_key.get(key, [])
        if len(matches) > 1:
            planned.append(
                PlannedRow(
                    number,
                    key,
                    "reject",
                    reason=f"{match_on.label} {key!r} matches {len(matches)} contacts",
                )
            )
        elif not matches:
            planned.append(_plan_create(number, key, record, match_on, opts))
        else:
            stored = matches[0]
            changes = _diff(record, stored, opts)
            if changes:
                planned.append(
                    PlannedRow(
                        number,
                        key,
                        "update",
                        contact_id=str(stored["id"]),
                        payload={name: new for name, (_, new) in changes.items()},
                        changes=changes,
                    )
                )
            else:
                planned.append(PlannedRow(number, key, "unchanged", contact_id=str(stored["id"])))
    planned.sort(key=lambda row: row.row_number)
    return Plan(planned, match_on)


def _rejected_key(match_on: MatchKey, record: dict[str, Any], region: str | None) -> str | None:
    try:
        return _row_key(match_on, record, region)
    except (TypeError, ValueError):  # a rejected row may hold anything
        return None


def input_keys(
    rows: pd.DataFrame, match_on: MatchKey, default_region: str | None = "US"
) -> set[str]:
    """The normalized match keys of cleaned input rows (what the mirror must be read for)."""
    keys = (_row_key(match_on, record, default_region) for record in _records(rows))
    return {key for key in keys if key is not None}


def _row_key(match_on: MatchKey, record: dict[str, Any], region: str | None) -> str | None:
    if match_on.kind == "custom":
        custom = as_dict(record.get("custom_fields"))
        return normalize_key(match_on, custom.get(match_on.custom_key or ""), region)
    return key_of(match_on, record, region)


def _plan_create(
    number: int, key: str, record: dict[str, Any], match_on: MatchKey, opts: _Options
) -> PlannedRow:
    if match_on.kind == "id":
        # The server assigns ids: a row naming an unknown id cannot be created under it, and
        # creating it anyway would add a new contact on every run.
        return PlannedRow(number, key, "reject", reason=f"no live contact has id {key!r}")
    payload = _create_payload(record, opts)
    if "first_name" not in payload:
        return PlannedRow(
            number, key, "reject", reason="first_name is empty: required to create a contact"
        )
    return PlannedRow(number, key, "create", payload=payload)
