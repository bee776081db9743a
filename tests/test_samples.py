"""Tests for lynkist_sandbox.exports: the bundled HubSpot sample and the export generators."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from lynkist_sandbox.exports import (
    HUBSPOT_SAMPLE,
    LAYOUTS,
    build_push_export,
    export_from_contacts,
    generate_export,
)
from lynkist_sandbox.seed import generate_contacts
from transforms.cleaning import CleanResult, clean_contacts
from transforms.contact import normalize_email
from transforms.csv_io import read_export
from transforms.mapping import detect_preset

LAYOUT_NAMES = list(LAYOUTS)
#: Contact fields each layout carries (the rest cannot round-trip through it).
CARRIED = {
    "hubspot": ("first_name", "last_name", "phone", "email", "company", "job_title", "status"),
    "salesforce": ("first_name", "last_name", "phone", "email", "company", "job_title"),
    "salesforce-report": ("first_name", "last_name", "phone", "email", "company", "job_title"),
    "lynkist": (
        "id",
        "first_name",
        "last_name",
        "phone",
        "email",
        "company",
        "job_title",
        "status",
        "tags",
        "custom_fields",
    ),
}


def clean(df: pd.DataFrame) -> CleanResult:
    from transforms.mapping import apply_mapping

    return clean_contacts(apply_mapping(df))


@pytest.fixture(scope="module")
def contacts() -> list[dict[str, Any]]:
    return generate_contacts(300, seed=11)


# --- bundled sample ---------------------------------------------------------------------------


def test_hubspot_sample_has_valid_and_rejected_rows() -> None:
    df = read_export(HUBSPOT_SAMPLE)
    assert len(df) == 40
    assert detect_preset(df.columns) == "hubspot"
    result = clean(df)
    assert len(result.valid) + len(result.rejected) == 40
    reasons = dict(zip(result.rejected["_row_number"], result.rejected["reason"], strict=True))
    assert sorted(reasons) == [35, 36, 37, 40]
    assert reasons[35].startswith('email: "maria.gonzalez@" is not a valid email address')
    assert reasons[36].startswith('phone: "12ab" is not a valid phone number')
    assert reasons[37].startswith("first_name: missing (required)")
    assert reasons[40].startswith('phone: "+1 555" is not a valid phone number')


def test_hubspot_sample_has_a_duplicate_email_and_formula_like_cells() -> None:
    valid = clean(read_export(HUBSPOT_SAMPLE)).valid
    counts = valid["_email_key"].value_counts()
    assert counts.get("lara.croft@acme.test") == 2
    assert counts.max() == 2 and (counts == 2).sum() == 1
    cells = pd.concat([valid["company"], valid["job_title"]]).dropna()
    assert cells.str.startswith(("=", "+")).sum() == 2
    assert set(valid["status"].dropna()) <= {"lead", "customer"}


# --- generate_export --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_generate_export_layout_is_detected_and_clean(layout: str) -> None:
    df = generate_export(500, preset=layout, seed=1)
    assert list(df.columns) == [header for header, _ in LAYOUTS[layout].columns]
    assert detect_preset(df.columns) == LAYOUTS[layout].preset
    assert all(str(dtype) == "str" for dtype in df.dtypes)
    result = clean(df)
    assert result.rejected.empty, result.rejected["reason"].head().tolist()
    assert len(result.valid) == 500
    assert result.valid["email"].notna().mean() > 0.9
    assert result.valid["phone"].notna().mean() > 0.85
    assert result.valid["phone"].dropna().str.match(r"^\+[1-9]\d{7,14}$").all()


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_generate_export_is_deterministic(layout: str) -> None:
    pd.testing.assert_frame_equal(
        generate_export(200, preset=layout, seed=5), generate_export(200, preset=layout, seed=5)
    )
    assert not generate_export(200, preset=layout, seed=5).equals(
        generate_export(200, preset=layout, seed=6)
    )


def test_generated_emails_never_repeat_within_or_across_seeds() -> None:
    keys = pd.concat(
        [
            clean(generate_export(2000, seed=s, missing_email=0.0)).valid["_email_key"]
            for s in (0, 1, 2)
        ]
    )
    assert keys.is_unique
    assert len(keys) == 6000


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_invalid_rows_are_exactly_the_rejected_ones(layout: str) -> None:
    df = generate_export(600, preset=layout, seed=2, invalid=0.1)
    invalid = df.attrs["invalid_rows"]
    assert 30 < len(invalid) < 100
    result = clean(df)
    assert result.rejected["_row_number"].tolist() == invalid
    kinds = result.rejected["reason"].str.split(":").str[0].value_counts()
    assert set(kinds.index) == {"email", "phone", "first_name"}


def test_hubspot_export_exercises_lifecycle_and_mobile_fallback() -> None:
    df = generate_export(2000, seed=3)
    assert df["Lifecycle Stage"].nunique() >= 8
    only_mobile = (df["Phone Number"] == "") & (df["Mobile Phone Number"] != "")
    assert only_mobile.sum() > 50
    valid = clean(df).valid
    assert valid.loc[only_mobile.to_numpy(), "phone"].notna().all()
    assert set(valid["status"].dropna()) == {"lead", "customer", "Other"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"preset": "pipedrive"}, "unknown export layout"), ({"invalid": 1.5}, "between 0 and 1")],
)
def test_generate_export_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_export(10, **kwargs)


# --- export_from_contacts ---------------------------------------------------------------------


def expected_value(contact: dict[str, Any], field: str) -> Any:
    value = contact.get(field)
    if field == "email" and value:
        return normalize_email(value)
    if field == "custom_fields":
        return value or {}
    if field == "tags":
        return value or None  # an empty cell means "no tags given", not "clear the tags"
    return value


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_unchanged_contacts_round_trip_exactly(layout: str, contacts: list[dict[str, Any]]) -> None:
    result = clean(export_from_contacts(contacts, layout))
    assert result.rejected.empty, result.rejected["reason"].head().tolist()
    for contact, row in zip(contacts, result.valid.to_dict("records"), strict=True):
        for field in CARRIED[layout]:
            assert row[field] == expected_value(contact, field), (layout, field, contact)


@pytest.mark.parametrize(
    ("layout", "fields"),
    [
        ("hubspot", ("job_title",)),
        ("hubspot", ("status", "phone", "custom_fields.hubspot_lead_status")),
        ("salesforce", ("company", "last_name", "first_name")),
        ("salesforce-report", ("job_title", "custom_fields.lead_source")),
        ("lynkist", ("tags", "custom_fields.plan", "status")),
    ],
)
def test_changed_fields_differ_and_the_rest_round_trip(
    layout: str, fields: tuple[str, ...], contacts: list[dict[str, Any]]
) -> None:
    result = clean(export_from_contacts(contacts, layout, change=fields, seed=4))
    assert result.rejected.empty, result.rejected["reason"].head().tolist()
    for contact, row in zip(contacts, result.valid.to_dict("records"), strict=True):
        for field in fields:
            if field.startswith("custom_fields."):
                key = field.removeprefix("custom_fields.")
                assert row["custom_fields"].get(key) != (contact["custom_fields"] or {}).get(key)
            else:
                assert row[field] != expected_value(contact, field), (field, contact)
        for field in CARRIED[layout]:
            if field not in fields and field != "custom_fields":
                assert row[field] == expected_value(contact, field)


def test_export_from_contacts_is_deterministic(contacts: list[dict[str, Any]]) -> None:
    first = export_from_contacts(contacts[:50], change=("job_title", "phone"), seed=9)
    again = export_from_contacts(contacts[:50], change=("job_title", "phone"), seed=9)
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.parametrize(
    ("layout", "change", "message"),
    [
        ("hubspot", ("tags",), "the hubspot layout has no column for 'tags'"),
        ("salesforce", ("status",), "no column for 'status'"),
        ("hubspot", ("created_at",), "cannot change 'created_at'"),
        ("salesforce", ("custom_fields.plan",), "no column for 'custom_fields.plan'"),
    ],
)
def test_export_from_contacts_refuses_changes_the_layout_cannot_carry(
    layout: str, change: tuple[str, ...], message: str, contacts: list[dict[str, Any]]
) -> None:
    with pytest.raises(ValueError, match=message):
        export_from_contacts(contacts[:3], layout, change=change)


# --- build_push_export ------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["hubspot", "salesforce"])
def test_build_push_export_mixes_new_changed_unchanged(
    layout: str, contacts: list[dict[str, Any]]
) -> None:
    df = build_push_export(contacts, new=120, changed=70, unchanged=50, preset=layout, seed=3)
    assert len(df) == 240
    kinds = pd.Series(df.attrs["row_kinds"])
    assert kinds.value_counts().to_dict() == {"new": 120, "changed": 70, "unchanged": 50}
    assert df.attrs["expected"] == {"new": 120, "changed": 70, "unchanged": 50}
    assert kinds.head(30).nunique() > 1  # shuffled
    result = clean(df)
    assert result.rejected.empty
    existing = {normalize_email(c["email"]).lower(): c for c in contacts if c["email"]}
    keys = result.valid["_email_key"]
    is_known = keys.isin(list(existing)).to_numpy()
    assert (kinds[~is_known] == "new").all()
    assert (kinds[is_known] != "new").all()
    titles = result.valid["job_title"].to_numpy()
    for kind, key, title in zip(kinds, keys, titles, strict=True):
        if kind == "changed":
            assert title != existing[key]["job_title"]
        elif kind == "unchanged":
            assert title == existing[key]["job_title"]


def test_build_push_export_needs_enough_contacts(contacts: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="need that many contacts with a unique email"):
        build_push_export(contacts[:10], new=1, changed=6, unchanged=5)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layouts_agree_with_the_mapping_presets(layout: str) -> None:
    from transforms.mapping import IGNORE, resolve_mapping

    spec = LAYOUTS[layout]
    resolved = resolve_mapping([header for header, _ in spec.columns], spec.preset)
    meta = {"meta.mobile": "phone", "meta.created": IGNORE}
    for header, source in spec.columns:
        assert resolved.get(header) == meta.get(source, source), header
