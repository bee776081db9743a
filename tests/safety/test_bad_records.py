"""Issue 10 §2: one bad record never poisons the warehouse.

Each bad record is planted in the sandbox exactly as an API could send it (validation
bypassed); the sync must still load the rest of the tenant, store the record as far as it can,
name it, and record the value in ``contacts_rejected``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.client import LynkistClient
from pipelines.source.runner import run_sync
from tests.sync.helpers import sync_settings, warehouse_frame

CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    # name: (planted fields, field reported, reason fragment)
    "surrogate in a text field": ({"first_name": "Ana \ud83d"}, "first_name", "surrogate"),
    "surrogate in a tag": ({"tags": ["ok", "\ud83d"]}, "tags", "surrogate"),
    "surrogate in custom_fields": ({"custom_fields": {"k": "\udc00"}}, "custom_fields", "surro"),
    "updated_at empty": ({"updated_at": ""}, "updated_at", "ISO-8601"),
    "updated_at zero date": ({"updated_at": "0000-00-00T00:00:00Z"}, "updated_at", "ISO-8601"),
    "updated_at epoch text": ({"updated_at": "1767225600"}, "updated_at", "ISO-8601"),
    "updated_at epoch number": ({"updated_at": 1767225600}, "updated_at", "ISO-8601"),
}


def _rejected(db: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(db), read_only=True) as conn:
        cursor = conn.execute("SELECT * FROM lynkist.contacts_rejected ORDER BY id, field")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _genuine_update(sb: SandboxServer) -> str:
    """Update one ordinary contact through the API; returns its id."""
    contact = next(c for c in sb.admin.contacts() if c["first_name"] != "Bad")
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        client.update_contact(contact["id"], {"status": "genuine-update"})
    return str(contact["id"])


def test_bad_records_never_stop_the_sync(sb: SandboxServer, tmp_path: Path) -> None:
    """Before: each of these failed the whole run ("surrogates not allowed", "not an ISO-8601
    timestamp"), genuine updates to other contacts were not loaded, no contact was named."""
    db = tmp_path / "w.duckdb"
    sb.admin.seed("acme", 30, seed=3)
    run_sync(sync_settings(sb, db))
    planted = sb.admin.plant([{"first_name": "Bad", **fields} for fields, _, _ in CASES.values()])
    expected = {
        bad: (field, reason)
        for bad, (_, field, reason) in zip(planted, CASES.values(), strict=True)
    }
    updated = _genuine_update(sb)

    first = run_sync(sync_settings(sb, db))

    rows = warehouse_frame(db).set_index("id")
    assert rows.loc[updated, "status"] == "genuine-update"  # the rest of the tenant loads
    for bad in planted:  # each stored as far as it can be
        assert bad in rows.index and not rows.loc[bad, "is_deleted"]
    assert {p["id"]: p["field"] for p in first.problems} == {b: f for b, (f, _) in expected.items()}
    for problem in first.problems:
        assert expected[problem["id"]][1] in problem["reason"]
    [warning] = first.warnings
    assert "7 contact(s)" in warning and "contacts_rejected" in warning and "2 more" in warning
    rejected = {row["id"]: row for row in _rejected(db)}
    assert set(rejected) == set(planted)
    for bad, row in rejected.items():
        assert (row["field"], row["resolved_at"]) == (expected[bad][0], None)
        assert expected[bad][1] in row["reason"]
        assert json.loads(row["raw"])["id"] == bad  # the raw record, as JSON text
        assert row["first_seen"] == row["last_seen"]

    second = run_sync(sync_settings(sb, db))  # still bad: reported again, nothing breaks
    assert {p["id"] for p in second.problems} == set(planted)
    for row in _rejected(db):
        assert row["first_seen"] == rejected[row["id"]]["first_seen"]
        assert row["last_seen"] > rejected[row["id"]]["last_seen"]


def test_stored_as_far_as_it_can_be_then_resolved_when_fixed(
    sb: SandboxServer, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    sb.admin.seed("acme", 5, seed=4)
    [bad] = sb.admin.plant(
        [
            {
                "first_name": "Bad \ud83d",
                "tags": ["\ud83d", "vip"],
                "company": "Acme",
                "updated_at": "0000-00-00T00:00:00Z",
            }
        ]
    )
    first = run_sync(sync_settings(sb, db))
    assert {(p["id"], p["field"]) for p in first.problems} == {
        (bad, "first_name"),
        (bad, "tags"),
        (bad, "updated_at"),
    }
    row = warehouse_frame(db).set_index("id").loc[bad]
    assert row["first_name"] == "Bad \ufffd" and json.loads(row["tags"]) == ["\ufffd", "vip"]
    assert row["company"] == "Acme" and pd.isna(row["updated_at"])

    # unreadable updated_at: changes cannot be detected, so the record is loaded every run
    still_bad = {"first_name": "Bad \ud83d", "updated_at": "0000-00-00T00:00:00Z", "tags": []}
    sb.admin.plant([{"id": bad, **still_bad, "company": "Acme 2"}])
    second = run_sync(sync_settings(sb, db))
    assert warehouse_frame(db).set_index("id").loc[bad, "company"] == "Acme 2"
    assert second.resolved_problems == 1  # the tags were fixed

    fixed = {"first_name": "Fixed", "updated_at": "2026-06-01T00:00:00Z", "tags": []}
    sb.admin.plant([{"id": bad, **fixed, "company": "Acme 2"}])
    third = run_sync(sync_settings(sb, db))
    assert third.problems == [] and third.warnings == [] and third.resolved_problems == 2
    rejected = _rejected(db)
    assert {r["field"] for r in rejected} == {"first_name", "tags", "updated_at"}
    assert all(r["resolved_at"] is not None for r in rejected)
    assert warehouse_frame(db).set_index("id").loc[bad, "first_name"] == "Fixed"


@pytest.mark.parametrize(
    ("fields", "columns"),
    [
        ({"firstName": "camel"}, {"first_name": "Bad", "first_name_": "camel"}),
        ({"Lead Score": 7, "lead_score": 9}, {"lead_score": "9", "lead_score_": "7"}),
    ],
)
def test_colliding_new_fields_get_their_own_columns(
    sb: SandboxServer, tmp_path: Path, fields: dict[str, Any], columns: dict[str, str]
) -> None:
    db = tmp_path / "w.duckdb"
    sb.admin.seed("acme", 5, seed=5)
    run_sync(sync_settings(sb, db))
    [bad] = sb.admin.plant([{"first_name": "Bad", **fields}])
    updated = _genuine_update(sb)

    summary = run_sync(sync_settings(sb, db))
    again = run_sync(sync_settings(sb, db))

    frame = warehouse_frame(db).set_index("id")
    assert frame.loc[updated, "status"] == "genuine-update"
    row = frame.loc[bad]
    for prefix, value in columns.items():
        # the renamed column is "<name>_<6 hex digits>", stable from run to run
        renamed = prefix.endswith("_")
        [name] = [
            c
            for c in frame.columns
            if c == prefix or (renamed and c.startswith(prefix) and len(c) == len(prefix) + 6)
        ]
        assert row[name] == value
    assert summary.renamed_fields == again.renamed_fields and len(summary.renamed_fields) == 1
    assert again.problems == []


@pytest.mark.parametrize("mb", [25, pytest.param(50, marks=pytest.mark.chaos)])
def test_a_huge_value_is_set_aside_within_the_memory_cap(
    sb: SandboxServer, tmp_path: Path, mb: int
) -> None:
    """Before: DuckDB ran out of memory in the merge (128 MB cap), on every later run too."""
    db = tmp_path / "w.duckdb"
    sb.admin.seed("acme", 50, seed=6)
    run_sync(sync_settings(sb, db))
    [big] = sb.admin.plant([{"first_name": "Bad", "company": "x" * (mb * 1_000_000)}])
    updated = _genuine_update(sb)

    summary = run_sync(sync_settings(sb, db))

    frame = warehouse_frame(db).set_index("id")
    assert frame.loc[updated, "status"] == "genuine-update"
    assert frame.loc[big, "first_name"] == "Bad" and pd.isna(frame.loc[big, "company"])
    assert [(p["id"], p["field"]) for p in summary.problems] == [(big, "company")]
    [row] = _rejected(db)
    assert f"{mb}.0 MB" in row["reason"] and len(row["raw"]) < 20_000
    assert run_sync(sync_settings(sb, db)).problems[0]["id"] == big


def test_cli_names_the_record_in_one_warning_line_and_exits_0(
    sb: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LYNKIST_API_KEY", sb.keys["acme"]["rw"])
    monkeypatch.setenv("LYNKIST_BASE_URL", sb.base_url)
    sb.admin.seed("acme", 10, seed=7)
    [bad] = sb.admin.plant([{"first_name": "Bad", "updated_at": 1767225600}])
    db = str(tmp_path / "w.duckdb")

    assert main(["sync", "--duckdb", db, "--json"]) == 0

    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["new"] == 11
    reason = "not an ISO-8601 timestamp: stored as null"
    assert summary["problems"] == [{"id": bad, "field": "updated_at", "reason": reason}]
    assert len(summary["warnings"]) == 1
    [line] = captured.err.strip().splitlines()
    assert line.startswith("lynkist sync: warning: 1 contact(s)") and bad in line
    assert "Traceback" not in captured.err
