"""Map a CRM export's columns onto Lynkist contact fields.

A mapping is a dict ``column -> target``. A target is one of:

- a Lynkist writable field: ``first_name``, ``last_name``, ``phone``, ``email``, ``company``,
  ``job_title``, ``status``, ``tags`` (a ``;``/``,`` separated string or a JSON list),
  ``custom_fields`` (a JSON object as text, merged with the keyed custom fields);
- ``custom_fields.<key>``: the cell becomes ``custom_fields[<key>]``; an empty cell gives
  ``None`` there, which the push ignores — or, with ``--clear-empty``, removes the stored key;
- ``id``: the Lynkist contact id (only meaningful as a match key);
- ``full_name``: split into first/last name by the cleaning step when those are missing;
- ``status:lifecycle`` / ``status:salesforce``: ``status``, with HubSpot lifecycle stages
  (:data:`LIFECYCLE_TO_STATUS`) or Salesforce lead statuses (:data:`SALESFORCE_STATUS_TO_STATUS`)
  translated (unknown values are kept as written, since status is free-form);
- ``""`` (:data:`IGNORE`): the column is deliberately ignored.

Several columns may map to one target: the first non-empty one, in mapping order, wins (so
HubSpot's "Mobile Phone Number" is used only when "Phone Number" is empty). Columns are matched
exactly first, then ignoring case and surrounding/repeated whitespace. Columns no mapping entry
names are ignored and reported (``DataFrame.attrs["unmapped_columns"]`` and a log line).

Presets (:data:`PRESETS`) cover HubSpot's contact and lead exports, Salesforce contact and lead
exports (API names from Data Loader / Workbench and report labels), Pipedrive's person export
and Lynkist's own field names. The CRM's record id goes to ``custom_fields``
(``hubspot_record_id``, ``salesforce_id``, ``pipedrive_id``) so a later push can match on it
(``--match-on custom_fields.hubspot_record_id``). Every preset reads ``Tags``/``Tag``/``Labels``
as ``tags``; owner columns go to ``custom_fields.owner``; the country column to
``custom_fields.country``, which is also the region its row's phone numbers are read in.
Bookkeeping columns (create / modify dates) are ignored on purpose. Every input column is
accounted for in ``attrs["columns"]`` (:class:`ColumnReport`), which the push prints.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from transforms.contact import WRITABLE_FIELDS
from transforms.text import normalize_text, to_object

logger = logging.getLogger(__name__)

#: Target meaning "ignore this column on purpose" (not reported as unknown).
IGNORE: Final = ""
#: Prefix of targets that fill one key of ``custom_fields``.
CUSTOM_PREFIX: Final = "custom_fields."
#: Pseudo-field split into first/last name by :func:`transforms.cleaning.clean_contacts`.
FULL_NAME: Final = "full_name"
#: Column carrying the raw JSON text of a ``custom_fields`` target, parsed by the cleaning step
#: (which can reject a row; mapping cannot).
CUSTOM_JSON_COLUMN: Final = "_custom_fields_json"
#: 1-based input row number column, added by :func:`apply_mapping` when absent.
ROW_NUMBER: Final = "_row_number"
#: Column a reader may add to flag a row it could not parse cleanly (cleaning rejects the row).
ROW_ERROR: Final = "_row_error"

#: HubSpot lifecycle stages (internal names and export labels, compared without case, spaces
#: or punctuation) → Lynkist's conventional status values. Every pre-sale stage is a ``lead``;
#: ``evangelist`` is a customer who promotes you, so ``customer``. ``other`` and anything not
#: listed is kept as written: the API's status is free-form and we do not invent meaning.
LIFECYCLE_TO_STATUS: Final[dict[str, str]] = {
    "subscriber": "lead",
    "lead": "lead",
    "marketingqualifiedlead": "lead",
    "mql": "lead",
    "salesqualifiedlead": "lead",
    "sql": "lead",
    "opportunity": "lead",
    "customer": "customer",
    "evangelist": "customer",
}
#: Salesforce lead status (the default picklist, compared like lifecycle stages): the open and
#: working stages are a ``lead``, a converted lead a ``customer``. "Closed - Not Converted" and
#: an org's own values are kept as written (they mean different things in different orgs).
SALESFORCE_STATUS_TO_STATUS: Final[dict[str, str]] = {
    "open": "lead",
    "opennotcontacted": "lead",
    "working": "lead",
    "workingcontacted": "lead",
    "closedconverted": "customer",
    "converted": "customer",
}
#: Value translations a target may name after a colon (``status:lifecycle``).
TRANSLATIONS: Final[dict[str, dict[str, str]]] = {
    "lifecycle": LIFECYCLE_TO_STATUS,
    "salesforce": SALESFORCE_STATUS_TO_STATUS,
}
#: ``custom_fields`` key holding the row's country; phones are read in it (see
#: :func:`transforms.phones.region_of_country`).
COUNTRY_KEY: Final = "country"

_STRING_FIELDS: Final = tuple(f for f in WRITABLE_FIELDS if f != "custom_fields")
#: Plain (string-valued) targets, in the order output columns are laid out.
PLAIN_TARGETS: Final = ("id", *_STRING_FIELDS, FULL_NAME)

#: Columns every preset reads the same way: a free tag column, and a row's country (for its
#: phone numbers).
_COMMON: Final[dict[str, str]] = {
    "Tags": "tags",
    "Tag": "tags",
    "Labels": "tags",
}


def _pipedrive() -> dict[str, str]:
    """Pipedrive's person export; exported from a deal or lead list, headers get "Person - "."""
    person = {
        "ID": "custom_fields.pipedrive_id",
        "Name": FULL_NAME,
        "First name": "first_name",
        "Last name": "last_name",
        "Organization": "company",
        "Email - Work": "email",
        "Email - Home": "email",
        "Email - Other": "email",
        "Phone - Work": "phone",
        "Phone - Mobile": "phone",
        "Phone - Home": "phone",
        "Phone - Other": "phone",
        "Job title": "job_title",
        "Label": "tags",
        "Labels": "tags",
        "Owner": "custom_fields.owner",
        "Postal address - Country": f"custom_fields.{COUNTRY_KEY}",
        "Postal address - City/town/village/locality": "custom_fields.city",
        "Person created": IGNORE,
        "Update time": IGNORE,
        "Visible to": IGNORE,
    }
    return {**person, **{f"Person - {column}": target for column, target in person.items()}}


PRESETS: Final[dict[str, dict[str, str]]] = {
    "hubspot": {
        # Contacts (Contacts → Export, "all properties" or a view's columns).
        "Record ID": "custom_fields.hubspot_record_id",
        "First Name": "first_name",
        "Last Name": "last_name",
        "Email": "email",
        "Phone Number": "phone",
        "Mobile Phone Number": "phone",
        "Company Name": "company",
        "Associated Company": "company",
        "Job Title": "job_title",
        "Lifecycle Stage": "status:lifecycle",
        "Lead Status": "custom_fields.hubspot_lead_status",
        "Contact owner": "custom_fields.owner",
        "Marketing contact status": "custom_fields.hubspot_marketing_status",
        "City": "custom_fields.city",
        "State/Region": "custom_fields.state",
        "Country/Region": f"custom_fields.{COUNTRY_KEY}",
        # Leads (Sales Hub's lead object; the export adds the associated contact's columns).
        "Lead name": FULL_NAME,
        "Lead owner": "custom_fields.owner",
        "Lead pipeline stage": "custom_fields.hubspot_lead_stage",
        "Lead label": "custom_fields.hubspot_lead_label",
        "Lead type": "custom_fields.hubspot_lead_type",
        # Bookkeeping of the CRM, not of the person.
        "Create Date": IGNORE,
        "Last Activity Date": IGNORE,
        "Last Modified Date": IGNORE,
        **_COMMON,
    },
    "salesforce": {
        # Contact and lead API names (Data Loader, Workbench, SOQL exports).
        "Id": "custom_fields.salesforce_id",
        "FirstName": "first_name",
        "LastName": "last_name",
        "Name": FULL_NAME,
        "Email": "email",
        "Phone": "phone",
        "MobilePhone": "phone",
        "Title": "job_title",
        "Account.Name": "company",
        "AccountName": "company",
        "Company": "company",
        "Status": "status:salesforce",
        "Owner.Name": "custom_fields.owner",
        "OwnerName": "custom_fields.owner",
        "OwnerId": "custom_fields.salesforce_owner_id",
        "Department": "custom_fields.department",
        "LeadSource": "custom_fields.lead_source",
        "Industry": "custom_fields.industry",
        "MailingCity": "custom_fields.city",
        "MailingState": "custom_fields.state",
        "MailingCountry": f"custom_fields.{COUNTRY_KEY}",
        "City": "custom_fields.city",
        "State": "custom_fields.state",
        "Country": f"custom_fields.{COUNTRY_KEY}",
        "CreatedDate": IGNORE,
        "LastModifiedDate": IGNORE,
        "SystemModstamp": IGNORE,
        "IsDeleted": IGNORE,
        # Report labels (Reports → Export → Details Only).
        "Contact ID": "custom_fields.salesforce_id",
        "Lead ID": "custom_fields.salesforce_id",
        "First Name": "first_name",
        "Last Name": "last_name",
        "Full Name": FULL_NAME,
        "Mobile": "phone",
        "Account Name": "company",
        "Company / Account": "company",
        "Lead Status": "status:salesforce",
        "Contact Owner": "custom_fields.owner",
        "Lead Owner": "custom_fields.owner",
        "Owner Name": "custom_fields.owner",
        "Lead Source": "custom_fields.lead_source",
        "Mailing City": "custom_fields.city",
        "Mailing State/Province": "custom_fields.state",
        "Mailing Country": f"custom_fields.{COUNTRY_KEY}",
        "State/Province": "custom_fields.state",
        "Created Date": IGNORE,
        "Last Modified Date": IGNORE,
        **_COMMON,
    },
    "pipedrive": _pipedrive(),
    "lynkist": {
        "id": "id",
        "first_name": "first_name",
        "last_name": "last_name",
        "phone": "phone",
        "email": "email",
        "company": "company",
        "job_title": "job_title",
        "status": "status",
        "tags": "tags",
        "custom_fields": "custom_fields",
        "created_at": IGNORE,
        "updated_at": IGNORE,
    },
}
#: Presets whose exports may also carry flattened ``custom_fields.<key>`` columns.
_PREFIX_PRESETS: Final = frozenset({"lynkist"})
#: Targets that identify a person; detection needs at least one column mapping to one of them.
_IDENTITY_TARGETS: Final = frozenset({"first_name", FULL_NAME, "email", "phone", "id"})
#: What detection looks for, as shown in its error message.
_SIGNATURES: Final = {
    "HubSpot": "Record ID, First Name, Last Name, Email, Phone Number, Company Name, "
    "Lifecycle Stage",
    "Salesforce API names": "Id, FirstName, LastName, Name, Email, Phone, Account.Name",
    "Salesforce report labels": "Contact ID, First Name, Last Name, Email, Phone, Account Name",
    "Pipedrive": "Name, Organization, Email - Work, Phone - Work, Labels, Owner",
    "Lynkist": "id, first_name, last_name, email, phone, tags, custom_fields",
}


def _norm(name: str) -> str:
    return " ".join(str(name).replace("\ufeff", "").split()).casefold()


def validate_target(target: str) -> str:
    """Check a mapping target and return it in canonical form.

    Args:
        target: A field name, ``custom_fields.<key>``, ``id``, ``full_name``,
            ``<field>:<translation>`` or ``""`` (ignore).

    Returns:
        The target, stripped.

    Raises:
        ValueError: When the target is not one of the above; the message lists what is allowed.
    """
    target = target.strip()
    if target == IGNORE:
        return target
    if target.startswith(CUSTOM_PREFIX):
        if target[len(CUSTOM_PREFIX) :].strip():
            return CUSTOM_PREFIX + target[len(CUSTOM_PREFIX) :].strip()
        raise ValueError('"custom_fields." needs a key, e.g. "custom_fields.plan"')
    field, _, translation = target.partition(":")
    if field in (*PLAIN_TARGETS, "custom_fields") and (
        not translation or (field == "status" and translation in TRANSLATIONS)
    ):
        return target
    allowed = ", ".join((*PLAIN_TARGETS, "custom_fields", "custom_fields.<key>"))
    raise ValueError(
        f"unknown target {target!r}: use one of {allowed}, status:lifecycle, "
        "status:salesforce, or an empty value to ignore the column"
    )


def _match(columns: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """Pair each column with its mapping entry (exact name first, then normalized name)."""
    by_norm: dict[str, str] = {}
    for key in mapping:
        by_norm.setdefault(_norm(key), key)
    matched: dict[str, str] = {}
    for column in columns:
        if column in mapping:
            matched[column] = column
        elif (found := by_norm.get(_norm(column))) is not None:
            matched[column] = found
    return matched


def _preset_mapping(name: str, columns: Sequence[str]) -> dict[str, str]:
    """The preset's entries for these columns, in preset (= priority) order."""
    preset = PRESETS[name]
    matched = _match(columns, preset)
    order = {key: i for i, key in enumerate(preset)}
    resolved = {
        column: preset[key] for column, key in sorted(matched.items(), key=lambda c: order[c[1]])
    }
    if name in _PREFIX_PRESETS:
        for column in columns:
            if column not in resolved and column.startswith(CUSTOM_PREFIX):
                resolved[column] = validate_target(column)
    return resolved


def detect_preset(columns: Iterable[str]) -> str:
    """Recognise which CRM produced an export from its header row.

    Args:
        columns: The export's column names.

    Returns:
        ``"hubspot"``, ``"salesforce"`` or ``"lynkist"``: the preset matching the most columns
        (exact spellings break ties; presets that would map the columns identically are
        interchangeable, and the first is returned).

    Raises:
        ValueError: When no preset recognises a column identifying a person (name, email, phone
            or id), or two presets would map the columns differently with equal confidence.
            The message lists the columns each preset looks for.
    """
    columns = [str(c) for c in columns]
    candidates: list[tuple[int, int, str, dict[str, str]]] = []
    for name in PRESETS:
        resolved = _preset_mapping(name, columns)
        if not any(t.partition(":")[0] in _IDENTITY_TARGETS for t in resolved.values()):
            continue
        exact = sum(1 for column in resolved if column in PRESETS[name])
        candidates.append((len(resolved), exact, name, resolved))
    if not candidates:
        looked_for = "; ".join(f"{label}: {cols}" for label, cols in _SIGNATURES.items())
        shown = ", ".join(repr(c) for c in columns[:12]) + (", …" if len(columns) > 12 else "")
        raise ValueError(
            f"could not recognise the export's columns ({shown or 'none'}). Looked for {looked_for}"
            ". Choose a preset (--mapping hubspot|salesforce|pipedrive|lynkist) or give a "
            "mapping file (column -> field)."
        )
    best = max(candidates, key=lambda c: (c[0], c[1]))
    rivals = [c for c in candidates if (c[0], c[1]) == (best[0], best[1]) and c[3] != best[3]]
    if rivals:
        names = ", ".join(sorted({best[2], *(c[2] for c in rivals)}))
        raise ValueError(
            f"the export's columns fit several presets equally well ({names}); choose one with "
            "--mapping or give a mapping file"
        )
    return next(c[2] for c in candidates if (c[0], c[1]) == (best[0], best[1]))


def resolve_mapping(
    columns: Iterable[str],
    mapping: str | Mapping[str, str | None] = "auto",
    *,
    overrides: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """Work out the concrete ``column -> target`` mapping for an export's columns.

    Args:
        columns: The export's column names.
        mapping: ``"auto"`` (detect the preset), a preset name, or an explicit mapping.
        overrides: User mapping (e.g. from :func:`load_mapping_file`); its entries win over
            the preset's for the same column, and come first for the same target. With
            ``"auto"`` and headers no preset recognises, the overrides alone are used.

    Returns:
        Only the columns present, each with a validated target (``""`` = ignored), in priority
        order.

    Raises:
        ValueError: Unknown preset name, invalid target, or no column mapped to anything.
    """
    columns = [str(c) for c in columns]
    user = {k: validate_target(v or IGNORE) for k, v in (overrides or {}).items()}
    user_resolved = {column: user[key] for column, key in _match(columns, user).items()}
    if isinstance(mapping, str):
        name = mapping.strip().lower()
        if name == "auto":
            try:
                name = detect_preset(columns)
            except ValueError:
                if not user_resolved:
                    raise
                return user_resolved
        if name not in PRESETS:
            raise ValueError(
                f"unknown mapping preset {mapping!r}: use auto, {', '.join(PRESETS)} "
                "or a mapping file"
            )
        base = _preset_mapping(name, columns)
    else:
        explicit = {k: validate_target(v or IGNORE) for k, v in mapping.items()}
        base = {column: explicit[key] for column, key in _match(columns, explicit).items()}
    resolved = dict(user_resolved)
    for column, target in base.items():
        resolved.setdefault(column, target)
    if not any(target != IGNORE for target in resolved.values()):
        shown = ", ".join(repr(c) for c in columns[:12]) + (", …" if len(columns) > 12 else "")
        raise ValueError(
            f"the mapping matches none of the export's columns ({shown or 'none'}); check the "
            "preset or the mapping file's column names"
        )
    return resolved


def unmapped_columns(columns: Iterable[str], resolved: Mapping[str, str]) -> list[str]:
    """Columns a resolved mapping neither maps nor ignores on purpose (to report to the user)."""
    return [c for c in columns if c not in resolved and not str(c).startswith("_")]


#: Why a column is ignored, as shown in the push summary.
IGNORED_ON_PURPOSE: Final = "ignored by the mapping (CRM bookkeeping)"
IGNORED_UNKNOWN: Final = "not in the mapping: add it to a mapping file to keep it"


@dataclass(frozen=True)
class ColumnReport:
    """Where every input column goes.

    Attributes:
        mapped: Column → target (``email``, ``custom_fields.owner``, ``status:lifecycle``…),
            in input order.
        ignored: Column → why it is not used (:data:`IGNORED_ON_PURPOSE` or
            :data:`IGNORED_UNKNOWN`), in input order.
    """

    mapped: dict[str, str]
    ignored: dict[str, str]

    def as_dict(self) -> dict[str, dict[str, str]]:
        """JSON-ready form (``{"mapped": {...}, "ignored": {...}}``)."""
        return {"mapped": dict(self.mapped), "ignored": dict(self.ignored)}


def column_report(columns: Iterable[str], resolved: Mapping[str, str]) -> ColumnReport:
    """Account for every input column (internal ``_``-prefixed columns excepted).

    Args:
        columns: The export's columns.
        resolved: The mapping from :func:`resolve_mapping`.

    Returns:
        A :class:`ColumnReport`; each column is in exactly one of its two dicts.
    """
    mapped: dict[str, str] = {}
    ignored: dict[str, str] = {}
    for column in (str(c) for c in columns):
        if column.startswith("_"):
            continue
        target = resolved.get(column)
        if target is None:
            ignored[column] = IGNORED_UNKNOWN
        elif target == IGNORE:
            ignored[column] = IGNORED_ON_PURPOSE
        else:
            mapped[column] = target
    return ColumnReport(mapped, ignored)


def load_mapping_file(path: str | Path) -> dict[str, str]:
    """Read a user mapping file: ``column -> target``.

    Formats, chosen by extension:

    - ``.json``: an object ``{"Column": "field", ...}`` (``null`` ignores the column), or
      ``{"columns": {...}}``;
    - ``.toml``: a table of ``"Column" = "field"`` pairs at top level or under ``[columns]``;
    - ``.csv`` / anything else: two columns, column then target, one pair per line; an optional
      header line ``column,field`` (or ``source,target``) is skipped.

    Args:
        path: The file.

    Returns:
        The mapping with validated targets.

    Raises:
        ValueError: Unreadable content or an invalid target; the message names the file and entry.
        OSError: The file cannot be read.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    try:
        if suffix in (".json", ".toml"):
            data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
            if not isinstance(data, dict):
                raise ValueError("expected an object of column -> field")
            if set(data) == {"columns"} and isinstance(data["columns"], dict):
                data = data["columns"]
            pairs = list(data.items())
        else:
            pairs = _csv_pairs(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, csv.Error) as exc:
        raise ValueError(f"mapping file {path}: cannot parse it ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"mapping file {path}: {exc}") from None
    mapping: dict[str, str] = {}
    for column, target in pairs:
        if target is not None and not isinstance(target, str):
            raise ValueError(
                f"mapping file {path}: column {column!r} maps to {target!r}, expected a field name"
            )
        try:
            mapping[str(column).strip()] = validate_target(target or IGNORE)
        except ValueError as exc:
            raise ValueError(f"mapping file {path}: column {column!r}: {exc}") from None
    if not mapping:
        raise ValueError(f"mapping file {path}: no column -> field entries")
    return mapping


def _csv_pairs(text: str) -> list[tuple[str, str]]:
    sample = text[:4096]
    delimiter = "\t" if "\t" in sample and "," not in sample else ","
    if ";" in sample and "," not in sample and "\t" not in sample:
        delimiter = ";"
    pairs: list[tuple[str, str]] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) > 2 and any(cell.strip() for cell in row[2:]):
            raise ValueError(f"line {lineno}: expected two columns (column, field), got {row}")
        column, target = row[0].strip(), (row[1] if len(row) > 1 else "").strip()
        is_header = column.lower() in ("column", "source") and target.lower() in ("field", "target")
        if lineno == 1 and is_header:
            continue
        pairs.append((column, target))
    return pairs


def row_numbers(df: pd.DataFrame) -> pd.Series:
    """The frame's ``_row_number`` column when it holds whole numbers, else 1..n."""
    if ROW_NUMBER in df.columns:
        numbers = pd.to_numeric(df[ROW_NUMBER], errors="coerce")
        if bool(numbers.notna().all()) and bool((numbers % 1 == 0).all()):
            return numbers.astype("int64")
    return pd.Series(range(1, len(df) + 1), index=df.index, dtype="int64")


def _coalesce(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """First non-empty normalized value across ``columns`` (in order), as dtype ``str``."""
    result = normalize_text(frame[columns[0]])
    for column in columns[1:]:
        result = result.fillna(normalize_text(frame[column]))
    return result


def _translate(values: pd.Series, table: Mapping[str, str]) -> pd.Series:
    keys = values.str.lower().str.replace("[^0-9a-z]+", "", regex=True)
    translated = keys.map(table)
    return translated.fillna(values)


def apply_mapping(
    df: pd.DataFrame,
    mapping: str | Mapping[str, str | None] = "auto",
    *,
    overrides: Mapping[str, str | None] | None = None,
) -> pd.DataFrame:
    """Rename and combine an export's columns into Lynkist fields.

    Args:
        df: The export, one row per input row (all columns as text; see
            :func:`transforms.csv_io.read_export`).
        mapping: ``"auto"``, a preset name, or an explicit ``column -> target`` mapping.
        overrides: User mapping entries that win over the preset (see :func:`resolve_mapping`).

    Returns:
        A new DataFrame with the same index: ``_row_number`` (1-based input row, kept from
        ``df`` when present), the mapped plain targets present (``id``, Lynkist fields,
        ``full_name``) as whitespace-normalized text or ``None``, ``custom_fields`` (a dict per
        row, ``None`` for an empty keyed cell), ``_custom_fields_json`` when a JSON column is
        mapped, and
        ``_row_error`` when ``df`` has it. ``attrs["mapping"]`` holds the resolved mapping,
        ``attrs["sources"]`` target -> columns, ``attrs["unmapped_columns"]`` what was ignored,
        ``attrs["columns"]`` a :class:`ColumnReport` of every input column.

    Raises:
        ValueError: As :func:`resolve_mapping`.
    """
    columns = [str(c) for c in df.columns]
    frame = df.copy(deep=False)
    frame.columns = pd.Index(columns)
    resolved = resolve_mapping(columns, mapping, overrides=overrides)
    sources: dict[str, list[str]] = {}
    for column, target in resolved.items():
        if target != IGNORE:
            sources.setdefault(target, []).append(column)

    out = pd.DataFrame(index=df.index)
    out[ROW_NUMBER] = row_numbers(frame)

    field_values: dict[str, pd.Series] = {}
    for target, cols in sources.items():
        field, _, translation = target.partition(":")
        if field in PLAIN_TARGETS:
            values = _coalesce(frame, cols)
            if translation:
                values = _translate(values, TRANSLATIONS[translation])
            previous = field_values.get(field)
            field_values[field] = values if previous is None else previous.fillna(values)
    for field in PLAIN_TARGETS:
        if field in field_values:
            out[field] = to_object(field_values[field])

    keyed = [
        (t[len(CUSTOM_PREFIX) :], cols)
        for t, cols in sources.items()
        if t.startswith(CUSTOM_PREFIX)
    ]
    custom: list[dict[str, object]] = [{} for _ in range(len(frame))]
    for key, cols in keyed:
        for row, value in zip(custom, to_object(_coalesce(frame, cols)).tolist(), strict=True):
            row[key] = value
    out["custom_fields"] = pd.Series(custom, index=df.index, dtype=object)
    if "custom_fields" in sources:
        out[CUSTOM_JSON_COLUMN] = to_object(_coalesce(frame, sources["custom_fields"]))
    if ROW_ERROR in frame.columns:
        out[ROW_ERROR] = to_object(normalize_text(frame[ROW_ERROR]))

    unmapped = unmapped_columns(columns, resolved)
    if unmapped:
        logger.info("ignoring %d unmapped column(s): %s", len(unmapped), ", ".join(unmapped))
    out.attrs["mapping"] = dict(resolved)
    by_field: dict[str, list[str]] = {}
    for target, cols in sources.items():
        by_field.setdefault(target.partition(":")[0], []).extend(cols)
    out.attrs["sources"] = by_field
    out.attrs["unmapped_columns"] = unmapped
    out.attrs["columns"] = column_report(columns, resolved)
    return out
