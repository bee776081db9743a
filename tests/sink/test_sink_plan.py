"""Unit tests of the push plan: pure diffing of cleaned rows against a mirror DataFrame."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from pipelines.sink.keys import MatchKey, normalize_phone, parse_match_on
from pipelines.sink.plan import as_tag_list, build_plan

EMAIL = MatchKey("email")


def contact(id_: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": id_,
        "first_name": "Ana",
        "last_name": None,
        "phone": None,
        "email": None,
        "company": None,
        "job_title": None,
        "status": None,
        "tags": "[]",
        "custom_fields": "{}",
    }
    base.update(fields)
    return base


def rows(*records: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame(list(records))
    df["_row_number"] = range(1, len(df) + 1)
    return df


def test_create_update_unchanged_and_key_rejects() -> None:
    mirror = pd.DataFrame(
        [
            contact("c1", email="ana@acme.test", company="Acme"),
            contact("c2", first_name="Bo", email="bo@acme.test", company="Acme"),
            contact("c3", first_name="Dup", email="dup@acme.test"),
            contact("c4", first_name="Dup2", email="DUP@acme.test"),
        ]
    )
    df = rows(
        {"first_name": "Ana", "email": "ANA@acme.test", "company": "Acme"},  # unchanged
        {"first_name": "Bo", "email": "bo@acme.test", "company": "Initech"},  # update
        {"first_name": "Cy", "email": "cy@acme.test", "company": "Acme"},  # create
        {"first_name": "Dee", "email": "dup@acme.test", "company": None},  # 2 contacts
        {"first_name": "Eve", "email": None, "company": "Acme"},  # no key
        {"first_name": "F1", "email": "same@acme.test", "company": None},  # shared key
        {"first_name": "F2", "email": "Same@acme.test", "company": None},  # shared key
    )
    plan = build_plan(df, mirror, match_on=EMAIL)
    actions = [r.action for r in plan.rows]
    assert actions == ["unchanged", "update", "create", "reject", "reject", "reject", "reject"]
    assert plan.rows[0].contact_id == "c1"
    assert plan.rows[1].payload == {"company": "Initech"}
    assert plan.rows[1].changes == {"company": ("Acme", "Initech")}
    assert plan.rows[2].payload == {"first_name": "Cy", "email": "cy@acme.test", "company": "Acme"}
    assert "matches 2 contacts" in (plan.rows[3].reason or "")
    assert "no email" in (plan.rows[4].reason or "")
    assert "2 input rows" in (plan.rows[5].reason or "")
    assert plan.counts() == {"create": 1, "update": 1, "unchanged": 1, "reject": 4}


def test_cleaning_rejects_are_kept_in_row_order() -> None:
    df = pd.DataFrame([{"first_name": "A", "email": "a@x.test", "_row_number": 2}])
    rejected = pd.DataFrame([{"_row_number": 1, "reason": "email 'nope' is not valid"}])
    plan = build_plan(df, pd.DataFrame(), match_on=EMAIL, rejected=rejected)
    assert [(r.row_number, r.action) for r in plan.rows] == [(1, "reject"), (2, "create")]
    assert plan.rows[0].reason == "email 'nope' is not valid"
    frame = plan.to_frame()
    assert list(frame["action"]) == ["reject", "create"]


def test_empty_cells_keep_values_unless_clear_empty() -> None:
    mirror = pd.DataFrame([contact("c1", email="a@x.test", company="Acme", job_title="CEO")])
    df = rows({"first_name": "", "email": "a@x.test", "company": None, "job_title": "CEO"})
    assert build_plan(df, mirror, match_on=EMAIL).rows[0].action == "unchanged"
    plan = build_plan(df, mirror, match_on=EMAIL, clear_empty=True)
    row = plan.rows[0]
    assert row.action == "update"
    # first_name is required by the API, so even clear_empty never sends null for it
    assert row.payload == {"company": None}


def test_unmapped_columns_are_never_touched() -> None:
    mirror = pd.DataFrame([contact("c1", email="a@x.test", company="Acme", status="lead")])
    df = rows({"first_name": "Ana", "email": "a@x.test"})
    plan = build_plan(df, mirror, match_on=EMAIL, clear_empty=True)
    assert plan.rows[0].action == "unchanged"


def test_tags_union_and_replace() -> None:
    mirror = pd.DataFrame([contact("c1", email="a@x.test", tags=json.dumps(["vip", "eu"]))])
    union = build_plan(rows({"email": "a@x.test", "tags": ["eu", "new"]}), mirror, match_on=EMAIL)
    assert union.rows[0].payload == {"tags": ["vip", "eu", "new"]}
    subset = build_plan(rows({"email": "a@x.test", "tags": "eu"}), mirror, match_on=EMAIL)
    assert subset.rows[0].action == "unchanged"
    replace = build_plan(
        rows({"email": "a@x.test", "tags": ["eu", "new"]}), mirror, match_on=EMAIL, tags="replace"
    )
    assert replace.rows[0].payload == {"tags": ["eu", "new"]}
    same_set = build_plan(
        rows({"email": "a@x.test", "tags": "eu;vip"}), mirror, match_on=EMAIL, tags="replace"
    )
    assert same_set.rows[0].action == "unchanged"
    empty = rows({"email": "a@x.test", "tags": None})
    assert build_plan(empty, mirror, match_on=EMAIL, tags="replace").rows[0].action == "unchanged"
    cleared = build_plan(empty, mirror, match_on=EMAIL, tags="replace", clear_empty=True)
    assert cleared.rows[0].payload == {"tags": []}


def test_custom_fields_merge_key_by_key() -> None:
    stored = {"plan": "starter", "score": 42, "hubspot_id": "901"}
    mirror = pd.DataFrame([contact("c1", email="a@x.test", custom_fields=json.dumps(stored))])
    same = rows({"email": "a@x.test", "custom_fields": {"score": "42", "hubspot_id": "901"}})
    assert build_plan(same, mirror, match_on=EMAIL).rows[0].action == "unchanged"
    changed = rows({"email": "a@x.test", "custom_fields": {"plan": "pro", "region": None}})
    plan = build_plan(changed, mirror, match_on=EMAIL)
    # the whole merged object is sent because PATCH replaces custom_fields
    assert plan.rows[0].payload == {
        "custom_fields": {"plan": "pro", "score": 42, "hubspot_id": "901"}
    }
    cleared = rows({"email": "a@x.test", "custom_fields": {"plan": None, "score": "42"}})
    plan = build_plan(cleared, mirror, match_on=EMAIL, clear_empty=True)
    assert plan.rows[0].payload == {"custom_fields": {"score": 42, "hubspot_id": "901"}}


def test_match_on_custom_field_phone_and_id() -> None:
    mirror = pd.DataFrame(
        [
            contact("c1", phone="+1 (415) 555-0100", custom_fields={"hubspot_id": 901}),
            contact("c2", first_name="Bo", phone="+442071838750"),
        ]
    )
    by_custom = build_plan(
        rows(
            {"first_name": "Ana", "custom_fields": {"hubspot_id": "901"}},
            {"first_name": "New", "custom_fields": {"hubspot_id": "902"}},
        ),
        mirror,
        match_on=parse_match_on("custom_fields.hubspot_id"),
    )
    assert [r.action for r in by_custom.rows] == ["unchanged", "create"]
    assert by_custom.rows[1].payload["custom_fields"] == {"hubspot_id": "902"}

    by_phone = build_plan(
        rows({"first_name": "Ana", "phone": "+14155550100"}, {"first_name": "Bob", "phone": None}),
        mirror,
        match_on=parse_match_on("phone"),
    )
    assert [r.action for r in by_phone.rows] == ["unchanged", "reject"]

    by_id = build_plan(
        rows({"id": "C2", "first_name": "Bob"}, {"id": "zz", "first_name": "X"}),
        mirror,
        match_on=parse_match_on("id"),
    )
    assert by_id.rows[0].action == "update"
    assert by_id.rows[0].payload == {"first_name": "Bob"}
    assert by_id.rows[1].action == "reject"
    assert "no live contact has id" in (by_id.rows[1].reason or "")


def test_create_needs_first_name_and_drops_empty_cells() -> None:
    plan = build_plan(
        rows(
            {"first_name": None, "email": "x@x.test", "tags": None, "custom_fields": {}},
            {"first_name": "Y", "email": "y@x.test", "tags": "", "custom_fields": {"a": None}},
        ),
        pd.DataFrame(),
        match_on=EMAIL,
    )
    assert plan.rows[0].action == "reject"
    assert "first_name" in (plan.rows[0].reason or "")
    assert plan.rows[1].payload == {"first_name": "Y", "email": "y@x.test"}


@pytest.mark.parametrize("bad", ["name", "custom_fields.", "", "tags"])
def test_parse_match_on_rejects_unknown_keys(bad: str) -> None:
    with pytest.raises(ValueError, match=r"custom_fields\.<key>"):
        parse_match_on(bad)


def test_helpers() -> None:
    assert normalize_phone("0044 20 7183 8750") == "+442071838750"
    assert normalize_phone("(415) 555-0100", "US") == "+14155550100"
    assert as_tag_list('["a", "b", "a"]') == ["a", "b"]
    assert as_tag_list("a; b,c") == ["a", "b", "c"]


def test_notebook_frames_keep_integral_numbers_as_text() -> None:
    from transforms.text import as_text_frame

    df = pd.DataFrame({"phone": [4155550100, None], "id": [7, 8], "score": [1.5, None]})
    out = as_text_frame(df)
    assert list(out["phone"]) == ["4155550100", ""]
    assert list(out["id"]) == ["7", "8"]
    assert out["score"].iloc[0] == 1.5  # not integral: left to the cleaning step


def _mapped_and_cleaned(csv_text: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from transforms.cleaning import clean_contacts
    from transforms.csv_io import read_export
    from transforms.mapping import apply_mapping

    cleaned = clean_contacts(apply_mapping(read_export(csv_text.encode())))
    return cleaned.valid, cleaned.rejected


def test_clear_empty_clears_a_keyed_custom_field_through_the_mapping_step() -> None:
    # An empty custom_fields.plan cell left {"plan": "pro"} when the mapping dropped the key.
    mirror = pd.DataFrame(
        [contact("c1", email="a@x.test", custom_fields=json.dumps({"plan": "pro", "n": 1}))]
    )
    valid, rejected = _mapped_and_cleaned("first_name,email,custom_fields.plan\nAna,a@x.test,\n")
    kept = build_plan(valid, mirror, match_on=EMAIL, rejected=rejected)
    assert kept.rows[0].action == "unchanged"
    cleared = build_plan(valid, mirror, match_on=EMAIL, rejected=rejected, clear_empty=True)
    assert cleared.rows[0].payload == {"custom_fields": {"n": 1}}
    assert cleared.to_frame()["changed_fields"].tolist() == ["custom_fields.plan"]


def test_a_rejected_row_keeps_its_match_key() -> None:
    valid, rejected = _mapped_and_cleaned(
        "first_name,email,phone\nAna,Ana@X.test,12ab\n,bo@x.test,\nCy,cy@x.test,\n"
    )
    plan = build_plan(valid, pd.DataFrame(), match_on=EMAIL, rejected=rejected)
    assert [(r.action, r.match_key) for r in plan.rows] == [
        ("reject", "ana@x.test"),
        ("reject", "bo@x.test"),
        ("create", "cy@x.test"),
    ]
    assert plan.to_frame()["match_key"].tolist() == ["ana@x.test", "bo@x.test", "cy@x.test"]


def test_changed_fields_name_the_custom_keys_that_change() -> None:
    stored = {"plan": "starter", "score": 42, "gone": "x"}
    mirror = pd.DataFrame([contact("c1", email="a@x.test", custom_fields=json.dumps(stored))])
    df = rows(
        {"email": "a@x.test", "company": "Acme", "custom_fields": {"plan": "pro", "gone": None}}
    )
    plan = build_plan(df, mirror, match_on=EMAIL, clear_empty=True)
    assert plan.to_frame()["changed_fields"].tolist() == [
        "company,custom_fields.plan,custom_fields.gone"
    ]
