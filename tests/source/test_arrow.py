"""API contact dicts -> Arrow tables, fingerprints, and the mirror's per-contact decisions."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest

from pipelines.source.arrow import (
    arrow_array,
    contacts_table,
    datetime_micros,
    fingerprints,
    parse_timestamps,
)
from pipelines.source.mirror import Decision, Mirror
from pipelines.source.settings import ARROW_SCHEMA

CONTACT = {
    "id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "first_name": "Anurag",
    "last_name": "Sharma",
    "phone": "+919999999999",
    "email": "anurag@acme.test",
    "company": "Acme Corp",
    "job_title": "Founder",
    "status": "lead",
    "tags": ["india", "saas"],
    "custom_fields": {"plan": "starter", "seats": 3},
    "created_at": "2026-05-12T08:00:00Z",
    "updated_at": "2026-05-25T11:14:33.123456Z",
}


def test_known_fields_are_typed() -> None:
    table = contacts_table([CONTACT, {**CONTACT, "id": "b", "updated_at": None, "tags": []}])
    assert table.schema.equals(ARROW_SCHEMA)
    row = table.to_pylist()[0]
    assert row["tags"] == '["india","saas"]'
    assert row["custom_fields"] == '{"plan":"starter","seats":3}'
    assert row["updated_at"] == datetime(2026, 5, 25, 11, 14, 33, 123456, tzinfo=UTC)
    assert row["is_deleted"] is False and row["deleted_at"] is None
    assert table.to_pylist()[1]["updated_at"] is None


def test_unknown_fields_become_text_columns() -> None:
    rows: list[dict[str, Any]] = [
        {**CONTACT, "loyalty_tier": "gold", "score": {"value": 7}},
        {**CONTACT, "id": "b", "loyalty_tier": None},
    ]
    table = contacts_table(rows)
    assert table.column_names[-2:] == ["loyalty_tier", "score"]
    assert table["loyalty_tier"].to_pylist() == ["gold", None]
    assert table["score"].to_pylist() == ['{"value":7}', None]


def test_non_string_in_a_text_field_is_kept_as_json_text() -> None:
    table = contacts_table([{**CONTACT, "phone": 919999999999, "status": ["a"]}])
    assert table["phone"].to_pylist() == ["919999999999"]
    assert table["status"].to_pylist() == ['["a"]']


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-12T08:00:00.123456Z", datetime(2026, 5, 12, 8, 0, 0, 123456, tzinfo=UTC)),
        ("2026-05-12T10:00:00+02:00", datetime(2026, 5, 12, 8, 0, tzinfo=UTC)),
        ("2026-05-12T08:00:00", datetime(2026, 5, 12, 8, 0, tzinfo=UTC)),  # no offset: UTC
        ("2026-05-12T08:00:00.123456789Z", datetime(2026, 5, 12, 8, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(text: str, expected: datetime) -> None:
    assert parse_timestamps([text, None]).to_pylist() == [expected, None]


def test_garbage_timestamp_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"'created_at'.*'yesterday'"):
        parse_timestamps(["yesterday"], "created_at")


def test_fingerprint_is_updated_at_else_created_at() -> None:
    table = contacts_table([CONTACT, {**CONTACT, "id": "b", "updated_at": None}])
    updated = datetime(2026, 5, 25, 11, 14, 33, 123456, tzinfo=UTC)
    created = datetime(2026, 5, 12, 8, 0, tzinfo=UTC)
    assert fingerprints(table) == [datetime_micros(updated), datetime_micros(created)]
    assert datetime_micros(created.replace(tzinfo=None)) == datetime_micros(created)


def test_mirror_decisions_over_one_run() -> None:
    mirror = Mirror()
    mirror.add("same", 100, deleted=False)
    mirror.add("newer", 100, deleted=False)
    mirror.add("older", 100, deleted=False)  # late commit: fingerprint went back in time
    mirror.add("dead", 100, deleted=True)
    mirror.add("gone", 100, deleted=False)

    assert mirror.observe("same", 100, 1) is Decision.UNCHANGED
    assert mirror.observe("newer", 200, 1) is Decision.UPDATED
    assert mirror.observe("older", 50, 1) is Decision.UPDATED
    assert mirror.observe("dead", 100, 1) is Decision.RESTORED
    assert mirror.observe("fresh", None, 1) is Decision.NEW
    # duplicates of the same version (page overlap) are skipped
    assert mirror.observe("newer", 200, 1) is Decision.SEEN
    assert mirror.observe("fresh", None, 2) is Decision.SEEN
    # changed again after being emitted: not emitted twice in one load
    assert mirror.observe("newer", 300, 2) is Decision.CONFLICT
    # skipped as unchanged, then changed during the run: emitted
    assert mirror.observe("same", 150, 2) is Decision.LATE_CHANGE
    assert [d.emit for d in (Decision.CONFLICT, Decision.LATE_CHANGE)] == [False, True]

    # "older" was seen by pass 1 only, "gone" by none; emitted ids are never candidates
    assert sorted(mirror.missing_from(2)) == ["gone"]
    mirror.add("quiet", 5, deleted=False)
    mirror.observe("quiet", 5, 1)
    assert sorted(mirror.missing_from(2)) == ["gone", "quiet"]
    assert sorted(mirror.missing_from(1)) == ["gone"]


def test_mirror_packs_negative_and_missing_fingerprints() -> None:
    mirror = Mirror()
    mirror.add("old", -86_400_000_000, deleted=False)  # 1969
    mirror.add("none", None, deleted=False)
    assert mirror.observe("old", -86_400_000_000, 1) is Decision.UNCHANGED
    assert mirror.observe("none", None, 1) is Decision.UNCHANGED
    assert mirror.is_live("old") and not mirror.is_live("missing")


def test_tables_concatenate_across_pages_with_different_extra_fields() -> None:
    a = contacts_table([{**CONTACT, "extra_a": "x"}])
    b = contacts_table([{**CONTACT, "id": "b", "extra_b": "y"}])
    merged = pa.concat_tables([a, b], promote_options="default")
    assert merged["extra_a"].to_pylist() == ["x", None]
    assert merged["extra_b"].to_pylist() == [None, "y"]


def test_colliding_field_names_get_stable_distinct_columns() -> None:
    """Before: dlt's "Arrow column name collision after input data normalization"."""
    from pipelines.source.arrow import extra_columns

    one = extra_columns(["firstName", "Lead Score", "lead_score", "_dlt_load_id", "is_deleted"])
    assert one["lead_score"] == "lead_score"  # already spelled as its column: keeps it
    assert len(set(one.values())) == 5 and not set(one.values()) & {"first_name", "is_deleted"}
    assert one["firstName"].startswith("first_name_") and len(one["firstName"]) == 17
    # the same column whatever else arrives with it
    assert extra_columns(["firstName"])["firstName"] == one["firstName"]
    assert extra_columns(["Lead Score", "lead_score"]) == {
        "Lead Score": one["Lead Score"],
        "lead_score": "lead_score",
    }


def test_bad_values_are_repaired_and_reported_not_raised() -> None:
    from pipelines.source.arrow import convert_contacts

    converted = convert_contacts(
        [
            {**CONTACT, "first_name": "A\ud83d", "custom_fields": {"k": "\udc00"}},
            {**CONTACT, "id": "b", "updated_at": 1767225600, "tags": ["\ud83d"]},
        ]
    )
    rows = converted.table.to_pylist()
    assert rows[0]["first_name"] == "A\ufffd" and rows[0]["custom_fields"] == '{"k":"\ufffd"}'
    assert rows[1]["updated_at"] is None and rows[1]["tags"] == '["\ufffd"]'
    found = {(p.contact_id, p.field, p.unreliable_fingerprint) for p in converted.problems}
    assert found == {
        (CONTACT["id"], "first_name", False),
        (CONTACT["id"], "custom_fields", False),
        ("b", "updated_at", True),
        ("b", "tags", False),
    }
    assert converted.unreliable_ids() == {"b"}
    assert all(
        "\\ud83d" in p.raw or "\\udc00" in p.raw
        for p in converted.problems
        if p.contact_id == CONTACT["id"]
    )


_TS = pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    ("values", "type_"),
    [
        (["a", None, "é€😀", ""], pa.string()),
        ([None] * 9, pa.string()),
        ([], pa.string()),
        ([1, "x"], pa.string()),
        ([["a"], "x"], pa.string()),
        (["\ud83d"], pa.string()),
        ([True, None, False] * 6, pa.bool_()),
        (
            [
                datetime(2026, 5, 1, tzinfo=UTC),
                None,
                datetime(1960, 5, 5, 1, 2, 3, 7),
                datetime(2026, 1, 1, 5, tzinfo=timezone(timedelta(hours=2))),
            ],
            _TS,
        ),
    ],
)
def test_arrow_array_is_pa_array(values: list[Any], type_: pa.DataType) -> None:
    """Same values, nulls and errors as ``pa.array`` (the converter's fallbacks rely on them)."""
    try:
        expected: Any = pa.array(values, type_)
    except Exception as exc:
        with pytest.raises(type(exc)):
            arrow_array(values, type_)
        return
    built = arrow_array(values, type_)
    built.validate(full=True)
    assert built.equals(expected)
    assert built.null_count == expected.null_count


def test_converting_a_page_does_not_import_pandas() -> None:
    """pandas costs a no-change sync about a second of CPU: pa.array on a list imports it."""
    code = (
        "import sys; from pipelines.source.arrow import convert_contacts, fingerprints\n"
        f"t = convert_contacts([{CONTACT!r}, {{'id': 'x', 'created_at': 'junk'}}]).table\n"
        "fingerprints(t); print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_with_load_id_sets_one_value_for_every_row_without_pandas() -> None:
    """dlt's lineage column as dlt builds it (dictionary-encoded, not null), replacing an old
    one (a deleted contact's row read back), in a process that never imports pandas."""
    code = (
        "import sys; from pipelines.source.arrow import contacts_table, with_load_id\n"
        f"t = with_load_id(contacts_table([{CONTACT!r}, {{'id': 'x'}}]), 'old')\n"
        "t = with_load_id(t, '1767225600.1234567')\n"
        "f = t.schema.field('_dlt_load_id')\n"
        "print(t.column('_dlt_load_id').to_pylist(), t.column_names.count('_dlt_load_id'), "
        "str(f.type), f.nullable, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "['1767225600.1234567', '1767225600.1234567'] 1 dictionary<values=string, "
        "indices=int8, ordered=0> False False"
    )
