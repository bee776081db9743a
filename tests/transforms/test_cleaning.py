"""Tests for transforms.cleaning.clean_contacts: every rule, accepting and rejecting."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import pytest

import transforms.cleaning as cleaning
from transforms.cleaning import CleanResult, clean_contacts
from transforms.contact import FIRST_NAME_MAX, normalize_email
from transforms.mapping import apply_mapping


def clean(*rows: dict[str, Any], region: str | None = "US") -> CleanResult:
    return clean_contacts(pd.DataFrame(list(rows), dtype=object), default_region=region)


def only_valid(row: dict[str, Any], region: str | None = "US") -> dict[str, Any]:
    result = clean({"first_name": "Ann", **row}, region=region)
    assert result.rejected.empty, result.rejected["reason"].tolist()
    return dict(result.valid.iloc[0])


def only_reason(row: dict[str, Any], region: str | None = "US") -> str:
    result = clean({"first_name": "Ann", **row}, region=region)
    assert result.valid.empty
    assert len(result.rejected) == 1
    reason = result.rejected.iloc[0]["reason"]
    assert isinstance(reason, str)
    return reason


# --- text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann  ", "Ann"),
        ("Mary \t\n Ann", "Mary Ann"),
        ("Zo\u00eb\u00a0Lee", "Zoë Lee"),
        ("An\u200bn\x00", "Ann"),
        ("\ufeffAnn", "Ann"),
    ],
)
def test_text_is_trimmed_and_whitespace_collapsed(raw: str, expected: str) -> None:
    assert only_valid({"first_name": raw, "company": f" {raw} "})["company"] == expected
    assert only_valid({"first_name": raw})["first_name"] == expected


@pytest.mark.parametrize("empty", ["", "   ", "\t", None, math.nan])
def test_empty_cells_become_none(empty: Any) -> None:
    row = only_valid(
        {"last_name": empty, "company": empty, "phone": empty, "email": empty, "tags": empty}
    )
    assert row["last_name"] is None
    assert row["company"] is None
    assert row["phone"] is None
    assert row["email"] is None
    assert row["tags"] is None
    assert row["_email_key"] is None


def test_status_and_job_title_are_free_form() -> None:
    row = only_valid({"status": " VIP  partner ", "job_title": "??"})
    assert row["status"] == "VIP partner"
    assert row["job_title"] == "??"


# --- first_name -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["", "  ", None])
def test_missing_first_name_is_rejected(missing: Any) -> None:
    assert only_reason({"first_name": missing}) == "first_name: missing (required)"


def test_first_name_column_absent_is_rejected() -> None:
    result = clean_contacts(pd.DataFrame({"email": ["a@x.test"]}))
    assert result.rejected["reason"].tolist() == ["first_name: missing (required)"]


def test_first_name_length_limit_mirrors_the_api() -> None:
    assert only_valid({"first_name": "x" * FIRST_NAME_MAX})["first_name"] == "x" * 255
    reason = only_reason({"first_name": "y" * (FIRST_NAME_MAX + 1)})
    assert reason.startswith('first_name: "yyyy')
    assert "256 characters long (the API allows at most 255)" in reason


# --- full name --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("full", "first", "last"),
    [
        ("Ann Lee", "Ann", "Lee"),
        ("Mary  Ann Lee", "Mary Ann", "Lee"),
        ("Lee, Mary Ann", "Mary Ann", "Lee"),
        ("Cher", "Cher", None),
        ("  ", None, None),
    ],
)
def test_full_name_is_split_when_first_name_is_missing(
    full: str, first: str | None, last: str | None
) -> None:
    result = clean({"full_name": full, "email": "a@x.test"})
    if first is None:
        assert result.rejected["reason"].tolist() == ["first_name: missing (required)"]
        return
    row = result.valid.iloc[0]
    assert (row["first_name"], row["last_name"]) == (first, last)


def test_full_name_never_overrides_given_names() -> None:
    result = clean(
        {"first_name": "Ann", "last_name": "Lee", "full_name": "Bob Ray"},
        {"first_name": None, "last_name": "Keep", "full_name": "Bob Ray"},
    )
    assert result.valid["first_name"].tolist() == ["Ann", "Bob"]
    assert result.valid["last_name"].tolist() == ["Lee", "Keep"]
    assert "full_name" not in result.valid.columns


# --- phone ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("+1 415 555 2671", None, "+14155552671"),
        ("+91 99999 99999", "US", "+919999999999"),
        ("+919999999999", None, "+919999999999"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", "US", "+442079460958"),
        ("1-800-FLOWERS", "US", "+18003569377"),
        ("+1 415 555 2671 ext. 12", "US", "+14155552671"),
    ],
)
def test_phone_becomes_e164(raw: str, region: str | None, e164: str) -> None:
    assert only_valid({"phone": raw}, region=region)["phone"] == e164


@pytest.mark.parametrize(
    ("raw", "region", "detail"),
    [
        ("12ab", "US", "in US (in no country either): check the digits"),
        ("abc", "US", "in US (in no country either)"),
        ("+1 555", "US", "(wrong country code, area code or length after the +)"),
        ("555-2671", "US", "in US (valid in"),
        ("+1 415 555 2671 999 999 999", "US", "after the +"),
        ("415 555 2671", None, "without a country code (valid in US"),
        ("+999 123 456 789", "US", "after the +"),
        # Possible (right length) but not valid: no NANP area code starts with 0 or 1.
        ("04 50 11 22 33", "US", "in US (valid in FR"),
        ("(123) 555-0100", "US", "in US"),
    ],
)
def test_invalid_phones_are_rejected(raw: str, region: str | None, detail: str) -> None:
    reason = only_reason({"phone": raw}, region=region)
    assert reason.startswith(f'phone: "{raw}" is not a valid phone number ')
    assert detail in reason


def test_french_number_is_read_in_the_default_region_or_the_rows_country() -> None:
    assert only_valid({"phone": "04 50 11 22 33"}, region="FR")["phone"] == "+33450112233"
    for country in ("France", "FR", "fra", "Frankreich", " france "):
        row = {"phone": "04 50 11 22 33", "custom_fields": {"country": country}}
        assert only_valid(row, region="US")["phone"] == "+33450112233", country
    reason = only_reason({"phone": "04 50 11 22 33"}, region="US")
    assert reason == (
        'phone: "04 50 11 22 33" is not a valid phone number in US (valid in FR, DE, IT and 6 '
        "more): give the row's country in a country column, write it with +<country code>, or "
        "use --default-region FR"
    )


def test_an_unrecognised_country_falls_back_to_the_default_region_and_says_so() -> None:
    row = {"phone": "04 50 11 22 33", "custom_fields": {"country": "Narnia"}}
    reason = only_reason(row, region="US")
    assert 'country "Narnia" not recognised, read in the default region' in reason
    row = {"phone": "(415) 555-2671", "custom_fields": {"country": "Narnia"}}
    assert only_valid(row, region="US")["phone"] == "+14155552671"


def test_keep_invalid_phones_keeps_the_number_as_written() -> None:
    df = pd.DataFrame({"first_name": ["Ann", "Bo"], "phone": ["04 50 11 22 33", "1" * 25]})
    result = clean_contacts(df, default_region="US", keep_invalid_phones=True)
    assert result.valid["phone"].tolist() == ["04 50 11 22 33"]
    assert "longer than 20 characters" in result.rejected["reason"].iloc[0]


def test_phone_numbers_given_as_numbers_keep_their_digits() -> None:
    df = pd.DataFrame({"first_name": ["Ann", "Bo"], "phone": [4155552671.0, math.nan]})
    assert clean_contacts(df).valid["phone"].tolist() == ["+14155552671", None]


def test_unknown_default_region_is_an_error() -> None:
    with pytest.raises(ValueError, match="default region: unknown region 'XX'"):
        clean_contacts(pd.DataFrame({"first_name": ["Ann"]}), default_region="XX")


def test_default_region_is_case_insensitive() -> None:
    assert only_valid({"phone": "020 7946 0958"}, region="gb")["phone"] == "+442079460958"


# --- email ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "email", "key"),
    [
        ("anurag@acme.test", "anurag@acme.test", "anurag@acme.test"),
        (" Anurag@ACME.Test ", "Anurag@acme.test", "anurag@acme.test"),
        ("lara+news@example.com", "lara+news@example.com", "lara+news@example.com"),
        ("josé@exämple.test", "josé@exämple.test", "josé@exämple.test"),
    ],
)
def test_email_is_normalized_and_keyed_lower_case(raw: str, email: str, key: str) -> None:
    row = only_valid({"email": raw})
    assert row["email"] == email == normalize_email(raw.strip())
    assert row["_email_key"] == key


@pytest.mark.parametrize(
    "raw", ["not-an-email", "foo@", "@acme.test", "a b@acme.test", "x@localhost", "a@b..test"]
)
def test_invalid_email_is_rejected_with_the_validator_reason(raw: str) -> None:
    reason = only_reason({"email": raw})
    assert reason.startswith(f'email: "{raw}" is not a valid email address (')
    with pytest.raises(ValueError) as info:
        normalize_email(raw)
    assert str(info.value) in reason


# --- tags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "tags"),
    [
        ("vip", ["vip"]),
        ("a; b,a , c", ["a", "b", "c"]),
        ("VIP;vip", ["VIP", "vip"]),
        (";; , ;", []),
        ('["india", "saas", "india"]', ["india", "saas"]),
        ("[1, null, true, 2.5]", ["1", "true", "2.5"]),
        ("[not json", ["[not json"]),
        (["x", "y", "x"], ["x", "y"]),
        ("new  york; big   apple", ["new york", "big apple"]),
    ],
)
def test_tags_are_parsed_trimmed_and_deduplicated(raw: Any, tags: list[str]) -> None:
    assert only_valid({"tags": raw})["tags"] == tags


def test_nested_json_tags_are_rejected() -> None:
    reason = only_reason({"tags": '["a", {"b": 1}]'})
    assert reason == 'tags: "[\\"a\\", {\\"b\\": 1}]" contains a nested object or list'


def test_rows_never_share_a_tag_list() -> None:
    result = clean({"first_name": "A", "tags": "x;y"}, {"first_name": "B", "tags": "x;y"})
    first, second = result.valid["tags"].tolist()
    assert first == second
    assert first is not second


# --- custom_fields ----------------------------------------------------------------------------


def test_custom_fields_merge_json_and_keyed_columns() -> None:
    df = pd.DataFrame(
        {
            "first_name": ["Ann"],
            "custom_fields": [{"plan": "pro", "region": "EU"}],
            "_custom_fields_json": ['{"plan": "starter", "seats": 5}'],
        }
    )
    row = clean_contacts(df).valid.iloc[0]
    assert row["custom_fields"] == {"plan": "pro", "seats": 5, "region": "EU"}


@pytest.mark.parametrize(
    ("raw", "detail"),
    [("{bad", "is not valid JSON"), ("[1, 2]", "is not a JSON object"), ('"x"', "JSON object")],
)
def test_bad_custom_fields_json_is_rejected(raw: str, detail: str) -> None:
    reason = only_reason({"_custom_fields_json": raw})
    assert reason.startswith(f"custom_fields: {json.dumps(raw)}")
    assert detail in reason


def test_custom_fields_json_text_in_a_hand_built_frame() -> None:
    assert only_valid({"custom_fields": '{"a": 1}'})["custom_fields"] == {"a": 1}
    assert "not valid JSON" in only_reason({"custom_fields": "{oops"})


def test_custom_fields_default_to_empty_dict() -> None:
    assert only_valid({})["custom_fields"] == {}


# --- reasons, partition, shapes ---------------------------------------------------------------


def test_reader_row_errors_reject_the_row() -> None:
    reason = only_reason({"_row_error": "row: 5 fields, the header has 4"})
    assert reason == "row: 5 fields, the header has 4"


def test_all_reasons_of_a_row_are_listed() -> None:
    result = clean({"first_name": "", "phone": "12ab", "email": "foo@"})
    parts = result.rejected.iloc[0]["reasons"]
    assert result.rejected.iloc[0]["reason"] == "; ".join(parts)
    assert len(parts) == 3
    assert parts[0] == "first_name: missing (required)"
    assert parts[1].startswith('phone: "12ab"')
    assert parts[2].startswith('email: "foo@"')


def test_reasons_name_the_source_column_after_mapping() -> None:
    df = pd.DataFrame(
        {"First Name": ["Ann"], "Phone Number": ["12ab"], "Email": ["a@x.test"]}, dtype="str"
    )
    reason = clean_contacts(apply_mapping(df, "hubspot")).rejected.iloc[0]["reason"]
    assert reason.startswith('phone: "12ab" is not a valid phone number in US')
    assert reason.endswith('[column "Phone Number"]')


def test_every_row_is_valid_or_rejected_exactly_once() -> None:
    rows = [
        {"first_name": "A", "email": "a@x.test"},
        {"first_name": "", "email": "b@x.test"},
        {"first_name": "C", "email": "bad"},
        {"first_name": "D", "phone": "+1 415 555 2671"},
        {"first_name": "E", "phone": "1"},
    ]
    df = pd.DataFrame(rows, index=[10, 20, 30, 40, 50], dtype=object)
    result = clean_contacts(df)
    assert result.valid["_row_number"].tolist() == [1, 4]
    assert result.rejected["_row_number"].tolist() == [2, 3, 5]
    assert result.valid.index.tolist() == [10, 40]
    assert result.rejected.index.tolist() == [20, 30, 50]
    assert result.rejected["email"].tolist() == ["b@x.test", "bad", None]


def test_valid_frame_columns_and_python_values() -> None:
    df = pd.DataFrame(
        {"first_name": ["Ann"], "last_name": [None], "email": ["A@x.test"], "id": ["u1"]}
    )
    valid = clean_contacts(df).valid
    assert list(valid.columns) == [
        "_row_number",
        "id",
        "first_name",
        "last_name",
        "email",
        "custom_fields",
        "_email_key",
    ]
    assert valid.iloc[0]["last_name"] is None
    assert isinstance(valid.iloc[0]["first_name"], str)


def test_empty_input() -> None:
    result = clean_contacts(pd.DataFrame({"first_name": pd.Series([], dtype="str")}))
    assert result.valid.empty
    assert result.rejected.empty
    assert "reason" in result.rejected.columns


def test_hubspot_export_end_to_end() -> None:
    df = pd.DataFrame(
        {
            "Record ID": ["1", "2"],
            "First Name": ["Ann", "Bo"],
            "Email": ["Ann@Acme.test", "bo@acme.test"],
            "Phone Number": ["(415) 555-2671", ""],
            "Mobile Phone Number": ["", "+44 20 7946 0958"],
            "Lifecycle Stage": ["Marketing Qualified Lead", "Customer"],
        },
        dtype="str",
    )
    valid = clean_contacts(apply_mapping(df)).valid
    assert valid["phone"].tolist() == ["+14155552671", "+442079460958"]
    assert valid["status"].tolist() == ["lead", "customer"]
    assert valid["_email_key"].tolist() == ["ann@acme.test", "bo@acme.test"]
    assert valid["custom_fields"].tolist() == [
        {"hubspot_record_id": "1"},
        {"hubspot_record_id": "2"},
    ]


def test_expensive_checks_run_once_per_distinct_value(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting_normalize_email(value: str) -> str:
        calls.append(value)
        return normalize_email(value)

    monkeypatch.setattr(cleaning, "normalize_email", counting_normalize_email)
    df = pd.DataFrame(
        {"first_name": ["A"] * 3000, "email": [f"user{i % 7}@x.test" for i in range(3000)]}
    )
    result = clean_contacts(df)
    assert len(result.valid) == 3000
    assert sorted(calls) == sorted(f"user{i}@x.test" for i in range(7))


def test_a_file_of_bad_phones_stays_fast_and_every_row_keeps_a_reason() -> None:
    # Naming the regions a number is valid in costs milliseconds; after the first 200 distinct
    # bad numbers the reason gives the generic fix instead.
    n = 500
    df = pd.DataFrame({"first_name": ["A"] * n, "phone": [f"04 50 {i:06d}" for i in range(n)]})
    reasons = clean_contacts(df).rejected["reason"].tolist()
    assert len(reasons) == n
    assert "(valid in FR" in reasons[0]
    assert reasons[-1].endswith("or use --default-region)")
