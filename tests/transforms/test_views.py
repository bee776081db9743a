"""The analysis views, on DuckDB and PostgreSQL, against the sandbox's ground truth."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd
import pytest

from pipelines.warehouse import create_views
from tests.analysis_support import DemoWarehouse, duckdb_warehouse, postgres_warehouse  # noqa: F401
from tests.plugins.postgres import postgres_dsn  # noqa: F401
from transforms.views import (
    CONTACT_VIEWS,
    EVENT_VIEWS,
    PUSH_VIEWS,
    contacts_all_sql,
    view_definitions,
    view_sql,
)

E164 = re.compile(r"\+[1-9]\d{1,14}")


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest) -> DemoWarehouse:
    return request.getfixturevalue(f"{request.param}_warehouse")


def query(warehouse: DemoWarehouse, sql: str) -> pd.DataFrame:
    with warehouse.pipeline.sql_client() as client, client.execute_query(sql) as cursor:
        columns = [d[0] for d in cursor.description]
        # object columns keep None as None (cursor.df() would turn it into NaN)
        return pd.DataFrame(
            [tuple(row) for row in cursor.fetchall()], columns=columns, dtype=object
        )


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def email_key(contact: dict[str, Any]) -> str | None:
    return (contact["email"] or "").strip().lower() or None


def phone_key(contact: dict[str, Any]) -> str | None:
    return re.sub(r"[^0-9+]", "", contact["phone"] or "") or None


def reason(error: str) -> str:
    """An error without the values it quotes or its parenthesised / bracketed detail."""
    blanked = re.sub(r"\"[^\"]*\"|'[^']*'", "<value>", error)
    return re.sub(r"\s*(\([^)]*\)|\[[^]]*\])", "", blanked).strip()


def expected_issues(live: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Python's own answer to every data-quality check: issue -> ids of live contacts."""
    emails = Counter(k for c in live if (k := email_key(c)))
    phones = Counter(k for c in live if (k := phone_key(c)))
    issues: dict[str, set[str]] = defaultdict(set)
    for c in live:
        email, phone = email_key(c), phone_key(c)
        if email is None:
            issues["missing_email"].add(c["id"])
        if phone is None:
            issues["missing_phone"].add(c["id"])
            if email is None:
                issues["missing_email_and_phone"].add(c["id"])
        elif not E164.fullmatch(c["phone"]):
            issues["phone_not_e164"].add(c["id"])
        if email is not None and emails[email] > 1:
            issues["duplicate_email"].add(c["id"])
        if phone is not None and phones[phone] > 1:
            issues["duplicate_phone"].add(c["id"])
    return issues


def test_every_view_is_created(warehouse: DemoWarehouse) -> None:
    # the event views come with contact_events (lynkist listen), which this warehouse lacks
    assert warehouse.views == list(CONTACT_VIEWS + PUSH_VIEWS)
    for name in warehouse.views:
        assert query(warehouse, f"SELECT COUNT(*) AS n FROM {name}")["n"][0] >= 0


def test_contacts_current_is_the_live_contacts_with_tags_as_a_list(
    warehouse: DemoWarehouse,
) -> None:
    current = query(warehouse, "SELECT * FROM contacts_current")
    live = {c["id"]: c for c in warehouse.live}
    assert len(live) < len(warehouse.contacts)  # some were archived
    assert sorted(current["id"]) == sorted(live)
    for row in current.to_dict("records"):
        contact = live[row["id"]]
        assert list(row["tags"]) == contact["tags"]
        assert as_json(row["custom_fields"]) == contact["custom_fields"]
        for name in ("first_name", "last_name", "email", "phone", "company", "job_title", "status"):
            assert row[name] == contact[name], name
        assert row["created_at"] == ts(contact["created_at"])
    assert "is_deleted" not in current.columns


def test_contacts_summary_counts_live_and_archived(warehouse: DemoWarehouse) -> None:
    summary = query(warehouse, "SELECT * FROM contacts_summary").to_dict("records")
    assert len(summary) == 1
    row = summary[0]
    assert (row["live_contacts"], row["archived_contacts"], row["all_contacts"]) == (
        len(warehouse.live),
        len(warehouse.contacts) - len(warehouse.live),
        len(warehouse.contacts),
    )
    assert row["last_created_at"] == max(ts(c["created_at"]) for c in warehouse.contacts)


def test_growth_counts_creations_archives_and_the_running_live_total(
    warehouse: DemoWarehouse,
) -> None:
    growth = query(warehouse, "SELECT * FROM contacts_growth")
    archived = len(warehouse.contacts) - len(warehouse.live)
    created_per_day = Counter(ts(c["created_at"]).date() for c in warehouse.contacts)
    for grain in ("day", "week"):
        rows = growth[growth["grain"] == grain].sort_values("period_start")
        assert rows["created"].sum() == len(warehouse.contacts)
        assert rows["archived"].sum() == archived
        assert rows["live_total"].iloc[-1] == len(warehouse.live)
        assert list(rows["live_total"]) == list((rows["created"] - rows["archived"]).cumsum())
    daily = growth[(growth["grain"] == "day") & (growth["created"] > 0)]
    assert dict(zip(daily["period_start"], daily["created"], strict=True)) == created_per_day
    weeks = growth[growth["grain"] == "week"]["period_start"]
    assert {pd.Timestamp(d).weekday() for d in weeks} == {0}  # ISO weeks start on Monday


def test_status_funnel_matches_the_live_contacts(warehouse: DemoWarehouse) -> None:
    funnel = query(warehouse, "SELECT * FROM contacts_status_funnel")
    expected = Counter(c["status"] or "(none)" for c in warehouse.live)
    assert dict(zip(funnel["status"], funnel["contacts"], strict=True)) == expected
    order = dict(zip(funnel["status"], funnel["stage_order"], strict=True))
    assert order["lead"] < order["active"] < order["customer"] < order["prospect"]
    assert float(funnel["pct_of_live"].astype(float).sum()) == pytest.approx(100, abs=0.5)


def test_tag_counts_match_the_live_contacts(warehouse: DemoWarehouse) -> None:
    tags = query(warehouse, "SELECT * FROM contacts_tag_counts")
    expected = Counter(tag for c in warehouse.live for tag in set(c["tags"]))
    assert dict(zip(tags["tag"], tags["contacts"], strict=True)) == expected
    assert expected["upgraded"] == 4  # tags changed by the second sync are seen


def test_data_quality_flags_exactly_the_problem_contacts(warehouse: DemoWarehouse) -> None:
    issues = query(warehouse, "SELECT * FROM contacts_data_quality_issues")
    expected = expected_issues(warehouse.live)
    found = {name: set(group["id"]) for name, group in issues.groupby("issue")}
    assert found == {name: ids for name, ids in expected.items() if ids}
    assert len(expected["duplicate_email"]) == 2  # one of the three was archived
    assert len(expected["duplicate_phone"]) == 2  # same number, different formatting
    assert len(expected["phone_not_e164"]) == 3

    summary = query(warehouse, "SELECT * FROM contacts_data_quality ORDER BY check_order")
    assert list(summary["issue"]) == [
        "missing_email_and_phone",
        "missing_email",
        "missing_phone",
        "phone_not_e164",
        "duplicate_email",
        "duplicate_phone",
    ]
    assert dict(zip(summary["issue"], summary["contacts"], strict=True)) == {
        name: len(expected[name]) for name in summary["issue"]
    }


def test_push_views_summarise_every_run(warehouse: DemoWarehouse) -> None:
    results = warehouse.push_results
    assert {"created", "updated", "rejected"} <= set(results["outcome"])
    history = query(warehouse, "SELECT * FROM push_history")
    assert sorted(history["run_id"]) == sorted(results["run_id"].unique())
    for run in history.itertuples():
        rows = results[results["run_id"] == run.run_id]
        assert run.rows == len(rows)
        outcomes = Counter(rows["outcome"])
        actions = Counter(rows["action"])
        for outcome in ("created", "updated", "unchanged", "rejected", "failed"):
            assert getattr(run, outcome) == outcomes[outcome]
        for action in ("create", "update", "unchanged", "reject"):
            assert getattr(run, f"action_{action}") == actions[action]
        errors = Counter(reason(e) for e in rows["error"] if isinstance(e, str) and e)
        top_count = max(errors.values(), default=0)
        assert run.top_error_rows == top_count
        if errors:
            assert errors[str(run.top_error)] == top_count

    reasons = query(warehouse, "SELECT * FROM push_error_reasons")
    expected = Counter(
        (r, reason(e)) for r, e in zip(results["run_id"], results["error"], strict=True) if e
    )
    keys = zip(reasons["run_id"], reasons["reason"], strict=True)
    assert dict(zip(keys, reasons["rows"], strict=True)) == expected
    # the same failure with different values counts as one reason
    assert "email: <value> is not a valid email address" in set(reasons["reason"])
    assert expected[(results["run_id"][0], "email: <value> is not a valid email address")] == 2
    by_outcome = query(warehouse, "SELECT * FROM push_outcomes")
    assert by_outcome["rows"].sum() == len(results)


def test_create_views_again_replaces_them(warehouse: DemoWarehouse) -> None:
    assert create_views(warehouse.pipeline) == list(CONTACT_VIEWS + PUSH_VIEWS)
    current = query(warehouse, "SELECT * FROM contacts_current")
    assert len(current) == len(warehouse.live)


def test_push_views_wait_for_push_results_and_nothing_without_contacts() -> None:
    contacts = {"id": "VARCHAR", "tags": "JSON", "created_at": "TIMESTAMP WITH TIME ZONE"}
    assert [name for name, _ in view_definitions("duckdb", {"contacts": contacts})] == list(
        CONTACT_VIEWS
    )
    assert view_definitions("postgres", {}) == []


def test_contacts_all_reads_nested_tags_and_fills_missing_columns() -> None:
    """dlt's other tags layout (contacts__tags) and columns dlt has not materialized yet."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE contacts (id VARCHAR, first_name VARCHAR, status VARCHAR, "
        "created_at TIMESTAMPTZ, is_deleted BOOLEAN, _dlt_id VARCHAR);"
        "CREATE TABLE contacts__tags (value VARCHAR, _dlt_parent_id VARCHAR, _dlt_list_idx INT);"
        "INSERT INTO contacts VALUES ('a', 'Ann', 'lead', '2026-01-01 00:00:00+00', NULL, 'd1'),"
        " ('b', 'Bob', NULL, '2026-01-02 00:00:00+00', TRUE, 'd2');"
        "INSERT INTO contacts__tags VALUES ('y', 'd1', 1), ('x', 'd1', 0), ('z', 'd2', 0);"
    )
    columns = {
        name: str(dtype)
        for name, dtype in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'contacts'"
        ).fetchall()
    }
    con.execute(
        f"CREATE VIEW contacts_all AS {contacts_all_sql('duckdb', columns, has_tags_table=True)}"
    )
    con.execute(f"CREATE VIEW contacts_current AS {view_sql('contacts_current')}")
    rows = con.execute(
        "SELECT id, tags, email, custom_fields, updated_at FROM contacts_current"
    ).fetchall()
    assert rows == [("a", ["x", "y"], None, None, None)]


def test_event_views_read_notes_and_communications(warehouse: DemoWarehouse) -> None:
    note = {"id": "n1", "body": "call back", "author": "ops", "created_at": "2026-01-02T03:04:05Z"}
    call = {"id": "m1", "channel": "call", "direction": "inbound", "subject": "hi"}
    rows = [
        ("e1", "contact.note_added", "c1", {"id": "c1", "note": note}),
        ("e2", "contact.communication_added", "c2", {"id": "c2", "communication": call}),
        ("e3", "contact.updated", "c1", {"id": "c1", "first_name": "x"}),
    ]
    with warehouse.pipeline.sql_client() as client:
        table = client.make_qualified_table_name("contact_events")
        json_type = "JSON" if client.capabilities.sqlglot_dialect == "duckdb" else "JSONB"
        client.execute_sql(
            f"CREATE TABLE {table} (event_id TEXT, event TEXT, tenant TEXT, contact_id TEXT, "
            f"occurred_at TIMESTAMP WITH TIME ZONE, received_at TIMESTAMP WITH TIME ZONE, "
            f"payload {json_type})"
        )
        for event_id, kind, contact_id, data in rows:
            payload = json.dumps({"id": event_id, "event": kind, "data": data})
            client.execute_sql(
                f"INSERT INTO {table} VALUES (%s, %s, 'acme', %s, now(), now(), %s)",
                event_id,
                kind,
                contact_id,
                payload,
            )
    try:
        assert create_views(warehouse.pipeline) == list(CONTACT_VIEWS + PUSH_VIEWS + EVENT_VIEWS)
        notes = query(warehouse, "SELECT contact_id, note_id, body, author FROM contact_notes")
        assert notes.values.tolist() == [["c1", "n1", "call back", "ops"]]
        calls = query(
            warehouse,
            "SELECT contact_id, communication_id, channel, direction, subject, body "
            "FROM contact_communications",
        )
        assert calls.values.tolist() == [["c2", "m1", "call", "inbound", "hi", None]]
    finally:
        with warehouse.pipeline.sql_client() as client:
            for name in EVENT_VIEWS:
                client.execute_sql(f"DROP VIEW IF EXISTS {client.make_qualified_table_name(name)}")
            client.execute_sql(f"DROP TABLE {client.make_qualified_table_name('contact_events')}")
