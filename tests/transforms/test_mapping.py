"""Tests for transforms.mapping: presets, detection, user mapping files, apply_mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from transforms.mapping import (
    CUSTOM_JSON_COLUMN,
    LIFECYCLE_TO_STATUS,
    PRESETS,
    apply_mapping,
    detect_preset,
    load_mapping_file,
    resolve_mapping,
    validate_target,
)

HUBSPOT_ROW = {
    "Record ID": "5101",
    "First Name": "Anurag",
    "Last Name": "Sharma",
    "Email": "anurag@acme.test",
    "Phone Number": "+91 99999 99999",
    "Mobile Phone Number": "",
    "Company Name": "Acme Corp",
    "Job Title": "Founder",
    "Lifecycle Stage": "Customer",
    "Create Date": "2026-05-12 08:00",
}
SALESFORCE_API_ROW = {
    "Id": "0035g00000AbCdEAAV",
    "FirstName": "Anurag",
    "LastName": "Sharma",
    "Email": "anurag@acme.test",
    "Phone": "+91 99999 99999",
    "MobilePhone": "",
    "Title": "Founder",
    "Account.Name": "Acme Corp",
    "CreatedDate": "2026-05-12T08:00:00.000+0000",
}
SALESFORCE_REPORT_ROW = {
    "Contact ID": "0035g00000AbCdEAAV",
    "First Name": "Anurag",
    "Last Name": "Sharma",
    "Title": "Founder",
    "Account Name": "Acme Corp",
    "Email": "anurag@acme.test",
    "Phone": "+91 99999 99999",
    "Mobile": "",
}
LYNKIST_ROW = {
    "id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "first_name": "Anurag",
    "last_name": "Sharma",
    "phone": "+91 99999 99999",
    "email": "anurag@acme.test",
    "company": "Acme Corp",
    "job_title": "Founder",
    "status": "customer",
    "tags": "india;saas",
    "custom_fields": '{"plan": "starter"}',
    "created_at": "2026-05-12T08:00:00Z",
}
EXPORTS = {
    "hubspot": (HUBSPOT_ROW, {"hubspot_record_id": "5101"}),
    "salesforce-api": (SALESFORCE_API_ROW, {"salesforce_id": "0035g00000AbCdEAAV"}),
    "salesforce-report": (SALESFORCE_REPORT_ROW, {"salesforce_id": "0035g00000AbCdEAAV"}),
    "lynkist": (LYNKIST_ROW, {}),
}
EXPECTED_PRESET = {
    "hubspot": "hubspot",
    "salesforce-api": "salesforce",
    "salesforce-report": "salesforce",
    "lynkist": "lynkist",
}


def frame(*rows: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), dtype="str")


@pytest.mark.parametrize("export", list(EXPORTS))
def test_detect_preset_recognises_each_crm(export: str) -> None:
    row, _ = EXPORTS[export]
    assert detect_preset(list(row)) == EXPECTED_PRESET[export]


@pytest.mark.parametrize("export", list(EXPORTS))
def test_apply_mapping_maps_every_preset_to_lynkist_fields(export: str) -> None:
    row, record_ids = EXPORTS[export]
    mapped = apply_mapping(frame(row))
    got = mapped.iloc[0]
    assert got["first_name"] == "Anurag"
    assert got["last_name"] == "Sharma"
    assert got["email"] == "anurag@acme.test"
    assert got["phone"] == "+91 99999 99999"
    assert got["company"] == "Acme Corp"
    assert got["job_title"] == "Founder"
    assert got["custom_fields"] == record_ids
    assert got["_row_number"] == 1


def test_detect_ignores_case_and_whitespace_in_headers() -> None:
    assert detect_preset([" record id", "FIRST  NAME", "email", "Lifecycle stage"]) == "hubspot"
    mapped = apply_mapping(frame({" record id": "7", "FIRST  NAME": "Ann"}), "hubspot")
    assert mapped.loc[0, "first_name"] == "Ann"
    assert mapped.loc[0, "custom_fields"] == {"hubspot_record_id": "7"}


def test_detect_error_lists_what_it_looked_for() -> None:
    with pytest.raises(ValueError) as info:
        detect_preset(["foo", "bar baz"])
    message = str(info.value)
    for expected in ("'foo'", "'bar baz'", "Record ID", "FirstName", "Contact ID", "first_name"):
        assert expected in message
    assert "--mapping" in message


def test_detect_needs_a_column_identifying_a_person() -> None:
    with pytest.raises(ValueError, match="could not recognise"):
        detect_preset(["Company Name", "Job Title", "Lifecycle Stage"])


def test_detect_refuses_a_tie_between_presets_that_map_differently() -> None:
    # HubSpot maps State/Region to custom_fields.state, Salesforce reports map Mobile to phone.
    with pytest.raises(ValueError, match="several presets"):
        detect_preset(["First Name", "Email", "State/Region", "Mobile"])


def test_detect_prefers_exact_spellings() -> None:
    # Both presets know "Email"; only the lynkist preset spells first_name this way.
    assert detect_preset(["first_name", "Email"]) == "lynkist"
    assert detect_preset(["First Name", "Last Name", "Email"]) in ("hubspot", "salesforce")


def test_mobile_phone_is_a_fallback_for_an_empty_phone() -> None:
    df = frame(
        {"First Name": "A", "Phone Number": "", "Mobile Phone Number": "+1 415 555 2671"},
        {"First Name": "B", "Phone Number": "+1 212 555 0100", "Mobile Phone Number": "+1 415"},
        {"First Name": "C", "Phone Number": "   ", "Mobile Phone Number": ""},
    )
    mapped = apply_mapping(df, "hubspot")
    assert mapped["phone"].tolist() == ["+1 415 555 2671", "+1 212 555 0100", None]


@pytest.mark.parametrize(
    ("stage", "status"),
    [
        ("Subscriber", "lead"),
        ("Lead", "lead"),
        ("Marketing Qualified Lead", "lead"),
        ("marketingqualifiedlead", "lead"),
        ("Sales Qualified Lead", "lead"),
        ("Opportunity", "lead"),
        ("Customer", "customer"),
        ("Evangelist", "customer"),
        ("Other", "Other"),
        ("Partner  Tier 1", "Partner Tier 1"),
        ("", None),
    ],
)
def test_hubspot_lifecycle_stage_becomes_status(stage: str, status: str | None) -> None:
    mapped = apply_mapping(frame({"First Name": "A", "Lifecycle Stage": stage}), "hubspot")
    assert mapped.loc[0, "status"] == status


def test_lifecycle_map_only_yields_conventional_statuses() -> None:
    assert set(LIFECYCLE_TO_STATUS.values()) <= {"active", "lead", "customer"}


def test_unmapped_columns_are_ignored_and_reported() -> None:
    mapped = apply_mapping(frame({**HUBSPOT_ROW, "Shoe Size": "44"}))
    assert mapped.attrs["unmapped_columns"] == ["Shoe Size"]
    assert "Create Date" not in mapped.columns
    report = mapped.attrs["columns"]
    assert report.ignored == {
        "Create Date": "ignored by the mapping (CRM bookkeeping)",
        "Shoe Size": "not in the mapping: add it to a mapping file to keep it",
    }
    assert set(report.mapped) | set(report.ignored) == set(HUBSPOT_ROW) | {"Shoe Size"}


def test_output_has_only_targets_present_and_none_for_empty() -> None:
    mapped = apply_mapping(frame({"First Name": "  Ann   Lee ", "Email": ""}), "hubspot")
    assert list(mapped.columns) == ["_row_number", "first_name", "email", "custom_fields"]
    assert mapped.loc[0, "first_name"] == "Ann Lee"
    assert mapped.loc[0, "email"] is None
    assert mapped.loc[0, "custom_fields"] == {}


def test_row_numbers_are_one_based_or_kept() -> None:
    df = frame({"first_name": "a"}, {"first_name": "b"}, {"first_name": "c"})
    assert apply_mapping(df)["_row_number"].tolist() == [1, 2, 3]
    df["_row_number"] = ["10", "11", "12"]
    assert apply_mapping(df)["_row_number"].tolist() == [10, 11, 12]


def test_lynkist_preset_keeps_json_and_prefixed_custom_fields() -> None:
    df = frame({**LYNKIST_ROW, "custom_fields.region": " EMEA "})
    mapped = apply_mapping(df)
    assert mapped.loc[0, CUSTOM_JSON_COLUMN] == '{"plan": "starter"}'
    assert mapped.loc[0, "custom_fields"] == {"region": "EMEA"}
    assert mapped.loc[0, "tags"] == "india;saas"
    assert mapped.loc[0, "id"] == LYNKIST_ROW["id"]
    assert mapped.attrs["unmapped_columns"] == []  # created_at is ignored on purpose


def test_salesforce_full_name_column_maps_to_pseudo_field() -> None:
    mapped = apply_mapping(frame({"Id": "003x", "Name": "Ann Lee", "Email": "a@x.test"}))
    assert mapped.loc[0, "full_name"] == "Ann Lee"
    assert "first_name" not in mapped.columns


def test_custom_fields_keep_empty_cells_as_none() -> None:
    # None (not absent) so that --clear-empty can clear the stored key; the push never sends it.
    df = frame({"First Name": "A", "City": "Pune", "Record ID": ""})
    assert apply_mapping(df, "hubspot").loc[0, "custom_fields"] == {
        "city": "Pune",
        "hubspot_record_id": None,
    }


def test_explicit_mapping_dict() -> None:
    df = frame({"Given": "Ann", "Mail": "a@x.test", "Plan": "pro", "Junk": "x"})
    mapped = apply_mapping(
        df, {"Given": "first_name", "Mail": "email", "Plan": "custom_fields.plan", "Junk": None}
    )
    assert mapped.loc[0, "first_name"] == "Ann"
    assert mapped.loc[0, "email"] == "a@x.test"
    assert mapped.loc[0, "custom_fields"] == {"plan": "pro"}
    assert mapped.attrs["unmapped_columns"] == []


def test_overrides_win_over_the_preset_and_extend_it() -> None:
    df = frame(
        {"First Name": "Ann", "Email": "old@x.test", "Work Email": "new@x.test", "Plan": "pro"}
    )
    mapped = apply_mapping(
        df,
        "auto",
        overrides={"Work Email": "email", "Plan": "custom_fields.plan", "First Name": "last_name"},
    )
    row = mapped.iloc[0]
    assert row["email"] == "new@x.test"
    assert row["last_name"] == "Ann"
    assert "first_name" not in mapped.columns
    assert row["custom_fields"] == {"plan": "pro"}


def test_overrides_alone_when_no_preset_matches() -> None:
    df = frame({"Vorname": "Jörg", "E-Mail": "j@x.test"})
    mapped = apply_mapping(df, "auto", overrides={"Vorname": "first_name", "E-Mail": "email"})
    assert mapped.loc[0, "first_name"] == "Jörg"
    with pytest.raises(ValueError, match="could not recognise"):
        apply_mapping(df)


def test_unknown_preset_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown mapping preset 'zoho'"):
        resolve_mapping(["First Name"], "zoho")


@pytest.mark.parametrize(
    "target", ["first_name", "custom_fields.plan", "status:lifecycle", "full_name", "id", ""]
)
def test_valid_targets(target: str) -> None:
    assert validate_target(target) == target


@pytest.mark.parametrize("target", ["firstname", "custom_fields.", "status:unknown", "created_at"])
def test_invalid_targets(target: str) -> None:
    with pytest.raises(ValueError):
        validate_target(target)


def test_every_preset_target_is_valid() -> None:
    for preset in PRESETS.values():
        for target in preset.values():
            assert validate_target(target) == target


MAPPING_FILES = {
    "map.json": json.dumps({"Given": "first_name", "Plan": "custom_fields.plan", "X": None}),
    "wrapped.json": json.dumps({"columns": {"Given": "first_name", "Plan": "custom_fields.plan"}}),
    "map.toml": 'Given = "first_name"\nPlan = "custom_fields.plan"\nX = ""\n',
    "table.toml": '[columns]\nGiven = "first_name"\nPlan = "custom_fields.plan"\n',
    "map.csv": "column,field\nGiven,first_name\nPlan,custom_fields.plan\nX,\n",
    "noheader.csv": "Given,first_name\r\nPlan,custom_fields.plan\r\n",
    "map.tsv": "Given\tfirst_name\nPlan\tcustom_fields.plan\n",
}


@pytest.mark.parametrize("name", list(MAPPING_FILES))
def test_load_mapping_file_formats(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(MAPPING_FILES[name], encoding="utf-8")
    mapping = load_mapping_file(path)
    assert mapping["Given"] == "first_name"
    assert mapping["Plan"] == "custom_fields.plan"
    assert mapping.get("X", "") == ""
    mapped = apply_mapping(frame({"Given": "Ann", "Plan": "pro"}), mapping)
    assert mapped.loc[0, "first_name"] == "Ann"
    assert mapped.loc[0, "custom_fields"] == {"plan": "pro"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.json", '{"Given": "firstname"}', "column 'Given': unknown target 'firstname'"),
        ("bad.json", "[1, 2]", "expected an object"),
        ("bad.json", "{not json", "cannot parse"),
        ("bad.toml", "Given = 3\n", "expected a field name"),
        ("bad.csv", "Given,first_name,extra\n", "expected two columns"),
        ("empty.csv", "\n\n", "no column -> field entries"),
    ],
)
def test_load_mapping_file_errors_name_the_file(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_mapping_file(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_a_non_numeric_row_number_column_is_replaced() -> None:
    df = frame({"first_name": "a", "_row_number": "x"}, {"first_name": "b", "_row_number": "7"})
    assert apply_mapping(df)["_row_number"].tolist() == [1, 2]


@pytest.mark.parametrize(
    "mapping", ["lynkist", {"Vorname": "first_name"}, {"FirstName": None, "Mail": ""}]
)
def test_a_mapping_that_maps_no_column_is_an_error(mapping: Any) -> None:
    df = frame({"FirstName": "Ann", "Mail": "a@x.test"})
    with pytest.raises(ValueError, match="matches none of the export's columns"):
        apply_mapping(df, mapping)
