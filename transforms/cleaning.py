"""Clean and validate mapped contact rows before they are pushed to Lynkist.

Rules (each rejection names the field, the value, and — when known — the source column):

- Text fields are trimmed, runs of whitespace become one space, invisible characters (control
  characters, zero-width spaces, stray BOMs) are dropped, and empty strings become ``None``.
- ``full_name`` (a pseudo-field from the mapping) fills ``first_name``/``last_name`` when
  ``first_name`` is missing: ``"Last, First"`` is split at the comma, otherwise the last word is
  the last name and the rest the first name (``"Mary Ann Lee"`` → ``"Mary Ann"``, ``"Lee"``).
- ``first_name`` is required, 1-255 characters (the API's limits) → else rejected.
- ``phone``: :func:`transforms.phones.to_e164` — read in the row's country
  (``custom_fields.country``, a name or ISO code, set by the presets from the export's country
  column) or else ``default_region``; must be *valid* for that region
  (``phonenumbers.is_valid_number``) and is written in E.164; else rejected with the value, the
  region and the fix — or, with ``keep_invalid_phones``, kept as written. Stricter than the
  API on purpose: a wrong number is worse than none.
- ``email`` is validated and normalized by :func:`transforms.contact.normalize_email` (the API's
  own rule: syntax only, ``.test`` domains accepted) → else rejected. ``_email_key`` holds the
  lower-cased address for case-insensitive matching; ``email`` keeps the normalized form sent
  to the API.
- ``tags``: a JSON list, or text split on ``;`` and ``,``; items trimmed, empties dropped,
  exact duplicates removed (first occurrence kept, case preserved). Nested JSON → rejected.
- ``custom_fields``: keyed columns from the mapping, merged over a JSON object column (which
  must parse to an object → else rejected).
- ``status``, ``last_name``, ``company``, ``job_title``: free-form, never rejected.

Expensive per-value checks (phone, email, tags, JSON) run once per distinct value; the rest are
vectorized pandas string operations, so 100k rows clean in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from transforms.contact import (
    FIRST_NAME_MAX,
    FIRST_NAME_MIN,
    PHONE_MAX,
    WRITABLE_FIELDS,
    normalize_email,
)
from transforms.mapping import (
    COUNTRY_KEY,
    CUSTOM_JSON_COLUMN,
    FULL_NAME,
    ROW_ERROR,
    ROW_NUMBER,
    row_numbers,
)
from transforms.phones import check_region, region_of_country, to_e164
from transforms.text import normalize_text, numbers_as_text, parse_tags, to_object

#: Match key column added next to ``email``: the normalized address, lower-cased.
EMAIL_KEY: Final = "_email_key"
#: Text fields carried through as they are after whitespace normalization.
_FREE_TEXT: Final = ("last_name", "company", "job_title", "status")
#: Distinct invalid phones whose rejection names the regions they are valid in (a few ms
#: each); past that the reason gives the generic fix, so a file of bad numbers stays fast.
_HINTED_PHONES: Final = 200
#: Output column order of ``CleanResult.valid``.
_VALID_ORDER: Final = (ROW_NUMBER, "id", *WRITABLE_FIELDS, EMAIL_KEY)
_SHOWN_CHARS: Final = 80


@dataclass
class CleanResult:
    """Outcome of :func:`clean_contacts`; every input row is in exactly one of the frames.

    Attributes:
        valid: ``_row_number``, the cleaned fields (``None`` where empty), ``tags`` (list or
            ``None``), ``custom_fields`` (dict), ``_email_key`` when ``email`` is present.
        rejected: ``_row_number``, ``reason`` (every problem of the row, ``"; "``-joined),
            ``reasons`` (the same as a list; each names the field and the value, e.g.
            ``phone: "12ab" is not a valid phone number in US (...)``), and the row's fields as
            mapped (whitespace-normalized, not validated).
    """

    valid: pd.DataFrame
    rejected: pd.DataFrame


def _show(value: object) -> str:
    text = str(value)
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 1] + "…"
    return json.dumps(text, ensure_ascii=False)


def _as_text(values: pd.Series) -> pd.Series:
    return normalize_text(numbers_as_text(values))


def _per_distinct(
    values: pd.Series, check: Callable[[str], tuple[Any, str | None]]
) -> tuple[pd.Series, pd.Series]:
    """Run ``check`` once per distinct non-missing value; map results back onto the rows.

    Returns:
        (cleaned values as an object Series, error messages as an object Series), ``None``
        where the input was missing or where the value is rejected / accepted respectively.
    """
    cleaned: dict[Hashable, Any] = {}
    errors: dict[Hashable, str | None] = {}
    for value in values.dropna().unique():
        cleaned[value], errors[value] = check(str(value))
    as_object = values.astype(object)
    clean_series = as_object.map(cleaned).astype(object)
    error_series = as_object.map(errors).astype(object)
    missing = values.isna()
    return (
        clean_series.where(~missing & clean_series.notna(), None),
        error_series.where(~missing & error_series.notna(), None),
    )


def _phones(
    phones: pd.Series,
    countries: pd.Series,
    default_region: str | None,
    *,
    keep_invalid: bool,
) -> tuple[pd.Series, pd.Series]:
    """E.164 phones and per-row errors; each row is read in its own country when it has one.

    Each distinct (phone, region) pair is checked once.
    """
    results: dict[tuple[str, str | None, str | None], tuple[str | None, str | None]] = {}
    cleaned: list[str | None] = []
    errors: list[str | None] = []
    rejected_so_far = 0
    for phone, country in zip(phones.tolist(), countries.tolist(), strict=True):
        if not isinstance(phone, str):
            cleaned.append(None)
            errors.append(None)
            continue
        country_text = country if isinstance(country, str) else None
        key = (phone, country_text, default_region)
        if key not in results:
            hint = rejected_so_far < _HINTED_PHONES
            results[key] = _check_phone(phone, country_text, default_region, keep_invalid, hint)
            rejected_so_far += results[key][1] is not None
        value, error = results[key]
        cleaned.append(value)
        errors.append(error)
    return (
        pd.Series(cleaned, index=phones.index, dtype=object),
        pd.Series(errors, index=phones.index, dtype=object),
    )


def _check_phone(
    phone: str, country: str | None, default_region: str | None, keep_invalid: bool, hint: bool
) -> tuple[str | None, str | None]:
    region = region_of_country(country) if country else None
    if region is not None:
        result = to_e164(phone, region, country=country, hint=hint)
    else:
        result = to_e164(phone, default_region, hint=hint)
    if result.e164 is not None:
        return result.e164, None
    if keep_invalid:
        if len(phone) <= PHONE_MAX:
            return phone, None
        shown = _show(phone)
        return None, f"phone: {shown} is longer than {PHONE_MAX} characters (kept as written)"
    unknown = (
        f" (country {_show(country)} not recognised, read in the default region)"
        if country and region is None
        else ""
    )
    return None, f"phone: {result.error}{unknown}"


def _check_email(value: str) -> tuple[str | None, str | None]:
    try:
        return normalize_email(value), None
    except ValueError as exc:
        return None, f"email: {_show(value)} is not a valid email address ({exc})"


def _check_tags(value: str) -> tuple[list[str] | None, str | None]:
    try:
        return parse_tags(value), None
    except ValueError as exc:
        return None, f"tags: {_show(value)} {exc}"


def _check_json_object(value: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        return None, f"custom_fields: {_show(value)} is not valid JSON ({exc.args[0]})"
    if not isinstance(parsed, dict):
        return None, f"custom_fields: {_show(value)} is not a JSON object"
    return parsed, None


def _tags_text(values: pd.Series) -> pd.Series:
    if values.dtype == object:
        # Notebook frames may already hold lists; give them the JSON form the parser reads.
        values = values.map(lambda v: json.dumps(list(v)) if isinstance(v, list | tuple) else v)
    return _as_text(values)


def _split_full_name(full: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(first, last) parts of full names; see the module docstring for the rule."""
    comma = full.str.contains(",", regex=False).fillna(False).astype(bool)
    by_comma = full.str.split(",", n=1, expand=True).reindex(columns=[0, 1])
    by_space = full.str.rsplit(" ", n=1, expand=True).reindex(columns=[0, 1])
    first = normalize_text(by_comma[1].where(comma, by_space[0]))
    last = normalize_text(by_comma[0].where(comma, by_space[1]))
    return first, last


def _source_hint(df: pd.DataFrame, field: str) -> str:
    sources = df.attrs.get("sources", {}).get(field) if isinstance(df.attrs, dict) else None
    if not sources:
        return ""
    return " [column " + " / ".join(json.dumps(str(c), ensure_ascii=False) for c in sources) + "]"


def _with_hint(errors: pd.Series, hint: str) -> pd.Series:
    if not hint:
        return errors
    return errors.map(lambda e: None if e is None else e + hint).astype(object)


def _merge(from_json: dict[str, Any], keyed: dict[str, Any]) -> dict[str, Any]:
    """Keyed columns win over the JSON column, except where their cell is empty (``None``)."""
    return {**from_json, **{k: v for k, v in keyed.items() if v is not None or k not in from_json}}


def _custom_fields(df: pd.DataFrame, index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """Merged custom_fields dicts and per-row errors."""
    base_errors = pd.Series(None, index=index, dtype=object)
    if "custom_fields" in df.columns:
        raw = df["custom_fields"].astype(object)
        is_text = raw.map(lambda v: isinstance(v, str))
        merged = raw.map(lambda v: dict(v) if isinstance(v, dict) else {}).astype(object)
        if bool(is_text.any()):
            # A frame built by hand may carry JSON text directly in custom_fields.
            parsed, errors = _per_distinct(_as_text(raw.where(is_text)), _check_json_object)
            merged = pd.Series(
                [dict(p) if p is not None else m for p, m in zip(parsed, merged, strict=True)],
                index=index,
                dtype=object,
            )
            base_errors = errors
    else:
        merged = pd.Series([{} for _ in range(len(index))], index=index, dtype=object)
    if CUSTOM_JSON_COLUMN in df.columns:
        parsed, errors = _per_distinct(_as_text(df[CUSTOM_JSON_COLUMN]), _check_json_object)
        merged = pd.Series(
            [m if p is None else _merge(p, m) for p, m in zip(parsed, merged, strict=True)],
            index=index,
            dtype=object,
        )
        base_errors = base_errors.where(base_errors.notna(), errors)
    return merged, base_errors


def _country_cell(custom: Any) -> str | None:
    if isinstance(custom, dict):
        value = custom.get(COUNTRY_KEY)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def clean_contacts(
    df: pd.DataFrame, *, default_region: str | None = "US", keep_invalid_phones: bool = False
) -> CleanResult:
    """Clean mapped rows and split them into valid and rejected ones.

    Args:
        df: Rows as produced by :func:`transforms.mapping.apply_mapping` (or any frame with
            Lynkist field columns; ``_row_number`` is added as 1..n when absent).
        default_region: ISO 3166 region used for phone numbers written without ``+`` and a
            country code, in rows without a recognised ``custom_fields.country``; ``None``
            requires such numbers to carry their country code.
        keep_invalid_phones: Keep a phone that is not valid in its region as written
            (whitespace-normalized) instead of rejecting the row.

    Returns:
        A :class:`CleanResult`; together its frames hold every input row exactly once, each
        keeping the input's index.

    Raises:
        ValueError: When ``default_region`` is not a region ``phonenumbers`` knows.
    """
    try:
        region = check_region(default_region)
    except ValueError as exc:
        raise ValueError(f"default region: {exc}") from None
    index = df.index
    row_number = row_numbers(df)

    text: dict[str, pd.Series] = {}
    for field in ("id", "first_name", *_FREE_TEXT, "phone", "email", FULL_NAME):
        if field in df.columns:
            text[field] = _as_text(df[field])
    if "tags" in df.columns:
        text["tags"] = _tags_text(df["tags"])

    first = text.get("first_name", pd.Series(pd.NA, index=index, dtype="str"))
    if FULL_NAME in text:
        split_first, split_last = _split_full_name(text[FULL_NAME])
        needs = first.isna()
        first = first.fillna(split_first.where(needs))
        last = text.get("last_name", pd.Series(pd.NA, index=index, dtype="str"))
        text["last_name"] = last.fillna(split_last.where(needs))
    text["first_name"] = first

    errors: dict[str, pd.Series] = {}
    hint = _source_hint(df, "first_name") or _source_hint(df, FULL_NAME)
    lengths = first.str.len()
    missing_first = first.isna() | (lengths < FIRST_NAME_MIN)
    too_long = lengths > FIRST_NAME_MAX
    first_errors = pd.Series(None, index=index, dtype=object)
    first_errors[missing_first.to_numpy()] = "first_name: missing (required)" + hint
    if bool(too_long.any()):
        first_errors[too_long.fillna(False).to_numpy(dtype=bool)] = [
            f"first_name: {_show(v)} is {len(v)} characters long "
            f"(the API allows at most {FIRST_NAME_MAX}){hint}"
            for v in first[too_long.fillna(False)]
        ]
    errors["first_name"] = first_errors

    cleaned: dict[str, pd.Series] = {}
    if "phone" in text:
        custom_series = df["custom_fields"] if "custom_fields" in df.columns else None
        countries = pd.Series(
            [
                _country_cell(c)
                for c in (custom_series if custom_series is not None else [None] * len(index))
            ],
            index=index,
            dtype=object,
        )
        cleaned["phone"], phone_errors = _phones(
            text["phone"], countries, region, keep_invalid=keep_invalid_phones
        )
        errors["phone"] = _with_hint(phone_errors, _source_hint(df, "phone"))
    if "email" in text:
        cleaned["email"], email_errors = _per_distinct(text["email"], _check_email)
        errors["email"] = _with_hint(email_errors, _source_hint(df, "email"))
    if "tags" in text:
        tags, errors["tags"] = _per_distinct(text["tags"], _check_tags)
        # Rows sharing a tag string must not share one list object (callers may extend it).
        cleaned["tags"] = tags.map(lambda v: None if v is None else list(v)).astype(object)
    custom, errors["custom_fields"] = _custom_fields(df, index)
    if ROW_ERROR in df.columns:
        errors["row"] = to_object(_as_text(df[ROW_ERROR]))

    error_frame = pd.DataFrame(errors, index=index)
    rejected_mask = error_frame.notna().any(axis=1).to_numpy()
    valid_mask = ~rejected_mask

    valid_columns: dict[str, pd.Series] = {ROW_NUMBER: row_number}
    for field in ("id", "first_name", *_FREE_TEXT):
        if field in text:
            valid_columns[field] = to_object(text[field])
    valid_columns.update(cleaned)
    valid_columns["custom_fields"] = custom
    if "email" in cleaned:
        email = cleaned["email"]
        valid_columns[EMAIL_KEY] = email.map(lambda v: None if v is None else v.lower()).astype(
            object
        )
    valid = pd.DataFrame(
        {c: valid_columns[c] for c in _VALID_ORDER if c in valid_columns}, index=index
    )[valid_mask]

    reasons = [
        [e for e in row if isinstance(e, str)]
        for row in error_frame[rejected_mask].itertuples(index=False, name=None)
    ]
    rejected_index = index[rejected_mask]
    rejected_columns: dict[str, Any] = {
        ROW_NUMBER: row_number[rejected_mask],
        "reason": pd.Series(["; ".join(r) for r in reasons], index=rejected_index, dtype=object),
        "reasons": pd.Series(reasons, index=rejected_index, dtype=object),
    }
    for field in ("id", "first_name", *_FREE_TEXT, "phone", "email", "tags"):
        if field in text:
            rejected_columns[field] = to_object(text[field])[rejected_mask]
    rejected_columns["custom_fields"] = custom[rejected_mask]
    rejected = pd.DataFrame(rejected_columns, index=index[rejected_mask])
    return CleanResult(valid=valid, rejected=rejected)
