"""Each numbered guarantee of the incremental sync (issue 3), against the sandbox over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.source.runner import make_pipeline, run_sync
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings, warehouse_frame


def _client(sb: SandboxServer) -> LynkistClient:
    return LynkistClient(sb.base_url, sb.keys["acme"]["rw"])


def _row(frame: Any, contact_id: str) -> dict[str, Any]:
    rows = frame[frame["id"] == contact_id].to_dict("records")
    assert len(rows) == 1, f"{contact_id}: {len(rows)} rows"
    return rows[0]


def test_never_updated_contact_is_loaded_exactly_once(sb: SandboxServer, tmp_path: Path) -> None:
    """Guarantee 1: a contact with ``updated_at`` null is loaded once, then never rewritten."""
    sb.admin.seed("acme", 150, seed=1, updated_share=0.0)
    settings = sync_settings(sb, tmp_path / "w.duckdb")

    first = run_sync(settings)
    frame = assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert first.new == 150 and first.rows_written == 150
    assert frame["updated_at"].isna().all()
    load_ids = set(frame["_dlt_load_id"])
    assert len(load_ids) == 1

    second = run_sync(settings)
    frame = assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert (second.new, second.updated, second.rows_written) == (0, 0, 0)
    assert second.unchanged == 150
    assert set(frame["_dlt_load_id"]) == load_ids, "a never-updated contact was rewritten"


def test_update_older_than_the_cursor_is_loaded(sb: SandboxServer, tmp_path: Path) -> None:
    """Guarantee 2: an update stamped in the past (skew, late commit) is still loaded."""
    sb.admin.seed("acme", 120, seed=2, updated_share=0.8)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    frame = warehouse_frame(tmp_path / "w.duckdb")
    high_water = frame["updated_at"].max()
    target = frame[frame["updated_at"].notna()].iloc[0]["id"]

    sb.admin.set_clock_offset(-400 * 86_400.0)  # the writer's clock is 400 days behind
    with _client(sb) as client:
        updated = client.update_contact(target, {"job_title": "Late committer"})
    stamped = datetime.fromisoformat(updated["updated_at"])
    assert stamped < high_water.to_pydatetime(), "the update must be older than the cursor"
    assert stamped < _row(frame, target)["updated_at"].to_pydatetime()

    summary = run_sync(settings)
    frame = assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert summary.updated == 1 and summary.rows_written == 1
    assert _row(frame, target)["job_title"] == "Late committer"


def _position_between(sb: SandboxServer, newer: str, older: str) -> None:
    """Shift the sandbox clock so the next create lands between two created_at values."""
    a, b = datetime.fromisoformat(newer), datetime.fromisoformat(older)
    target = b + (a - b) / 2
    sb.admin.set_clock_offset((target - datetime.now(UTC)).total_seconds())


def test_contact_hidden_by_a_page_shift_is_loaded_by_the_same_run(
    sb: SandboxServer, tmp_path: Path
) -> None:
    """Guarantee 3: an archive on page 1 while the scan runs shifts page 2 up by one.

    A naive scan misses the contact that moved from page 2 to page 1. Here that contact is both
    changed and brand new kinds: one updated known contact and one new contact sit right at the
    page boundary. The run re-scans (the total changed) and loads both; the archived one is
    marked; nothing live is marked deleted.
    """
    sb.admin.seed("acme", 250, seed=3)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    with _client(sb) as client:
        page1 = client.list_contacts(page=1, limit=100).data
        page2 = client.list_contacts(page=2, limit=100).data
        boundary_known = page2[0]["id"]
        client.update_contact(boundary_known, {"status": "customer", "company": "Shifted Ltd"})
        _position_between(sb, page1[-1]["created_at"], page2[0]["created_at"])
        hidden_new = client.create_contact({"first_name": "Hidden", "last_name": "New"})["id"]
        sb.admin.set_clock_offset(0.0)
        # now page 2 starts with hidden_new, then boundary_known
        assert client.list_contacts(page=2, limit=100).data[0]["id"] == hidden_new
    victims = [page1[10]["id"], page1[20]["id"]]
    sb.admin.add_scan_hook("acme", 1, [{"op": "archive", "id": v} for v in victims])

    summary = run_sync(settings)
    frame = assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert summary.scan_passes >= 2
    assert summary.new == 1 and summary.deleted == 2
    assert _row(frame, hidden_new)["first_name"] == "Hidden"
    assert _row(frame, boundary_known)["company"] == "Shifted Ltd"
    assert sorted(frame[frame["is_deleted"]]["id"]) == sorted(victims)


def test_contact_inserted_during_the_scan_is_loaded(sb: SandboxServer, tmp_path: Path) -> None:
    """Guarantee 3: an insert after page 1 shifts everything down (duplicates, one unseen)."""
    sb.admin.seed("acme", 230, seed=4)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    sb.admin.add_scan_hook(
        "acme", 1, [{"op": "create", "contact": {"first_name": "Racer", "tags": ["late"]}}]
    )

    summary = run_sync(settings)
    frame = assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert summary.new == 1 and summary.deleted == 0
    assert summary.rows_written == 1
    assert (frame["first_name"] == "Racer").sum() == 1


def test_without_rescans_a_hidden_contact_is_loaded_by_the_next_run(
    sb: SandboxServer, tmp_path: Path
) -> None:
    """Guarantee 3, worst case: re-scans disabled, the hidden contact comes with the next run."""
    sb.admin.seed("acme", 220, seed=5)
    settings = sync_settings(sb, tmp_path / "w.duckdb", max_rescans=0)
    run_sync(settings)
    with _client(sb) as client:
        page1 = client.list_contacts(page=1, limit=100).data
        page2 = client.list_contacts(page=2, limit=100).data
        _position_between(sb, page1[-1]["created_at"], page2[0]["created_at"])
        hidden = client.create_contact({"first_name": "Hidden"})["id"]
        sb.admin.set_clock_offset(0.0)
    sb.admin.add_scan_hook("acme", 1, [{"op": "archive", "id": page1[0]["id"]}])

    first = run_sync(settings)
    assert first.scan_passes == 1
    assert hidden not in set(warehouse_frame(tmp_path / "w.duckdb")["id"])
    assert first.deleted == 0  # page 1 was read before the archive: seen live this time

    second = run_sync(settings)
    frame = assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert (second.new, second.deleted) == (1, 1)
    assert not _row(frame, hidden)["is_deleted"]


def test_second_run_without_changes_writes_nothing(sb: SandboxServer, tmp_path: Path) -> None:
    """Guarantee 4: no change on the server -> no rows written, and the summary says so."""
    sb.admin.seed("acme", 180, seed=6)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    before = warehouse_frame(tmp_path / "w.duckdb").sort_values("id").reset_index(drop=True)

    summary = run_sync(settings)
    after = warehouse_frame(tmp_path / "w.duckdb").sort_values("id").reset_index(drop=True)
    assert summary.rows_written == 0 and not summary.changed
    assert (summary.new, summary.updated, summary.deleted) == (0, 0, 0)
    assert summary.unchanged == 180
    assert summary.requests == 2  # two pages, nothing else
    assert after.equals(before)


def test_archived_contact_is_marked_deleted_and_keeps_its_data(
    sb: SandboxServer, tmp_path: Path
) -> None:
    """Guarantee 5: archived -> is_deleted with deleted_at, other columns kept."""
    sb.admin.seed("acme", 140, seed=7)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    before = warehouse_frame(tmp_path / "w.duckdb")
    archived = before["id"].tolist()[:3]
    with _client(sb) as client:
        for contact_id in archived:
            client.delete_contact(contact_id)

    started = datetime.now(UTC)
    summary = run_sync(settings)
    frame = assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert summary.deleted == 3 and summary.rows_written == 3
    for contact_id in archived:
        row, old = _row(frame, contact_id), _row(before, contact_id)
        assert row["is_deleted"]
        assert row["deleted_at"].to_pydatetime() >= started
        for column in ("first_name", "email", "tags", "custom_fields", "created_at"):
            assert str(row[column]) == str(old[column]), column
    assert int(frame["is_deleted"].sum()) == 3

    # deleted stays deleted and is not rewritten
    again = run_sync(settings)
    assert (again.deleted, again.rows_written) == (0, 0)


def test_contact_marked_deleted_but_live_again_is_restored(
    sb: SandboxServer, tmp_path: Path
) -> None:
    """Guarantee 5: a contact the warehouse holds as deleted that is live again becomes live."""
    sb.admin.seed("acme", 60, seed=8)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    revived = warehouse_frame(tmp_path / "w.duckdb")["id"].iloc[5]
    pipeline = make_pipeline(settings)
    with pipeline.sql_client() as client:
        client.execute_sql(
            f"UPDATE {client.make_qualified_table_name('contacts')} "
            "SET is_deleted = true, deleted_at = now() WHERE id = %s",
            revived,
        )
    assert _row(warehouse_frame(pipeline), revived)["is_deleted"]

    summary = run_sync(settings)
    frame = assert_warehouse_matches_server(pipeline, sb)
    assert summary.restored == 1 and summary.rows_written == 1
    assert not _row(frame, revived)["is_deleted"]


@pytest.mark.parametrize("tenant_size", [0, 1])
def test_tiny_tenants(sb: SandboxServer, tmp_path: Path, tenant_size: int) -> None:
    """Edge cases: an empty tenant and a single contact sync cleanly, twice."""
    if tenant_size:
        sb.admin.seed("acme", tenant_size, seed=9)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    first = run_sync(settings)
    second = run_sync(settings)
    assert first.new == tenant_size and second.rows_written == 0
    if tenant_size:
        assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)


def test_contact_changed_twice_during_one_run_ends_at_its_last_version(
    sb: SandboxServer, tmp_path: Path
) -> None:
    """A contact emitted by the first scan and changed before the re-scan saw it again.

    One load must not carry two versions of a row (the merge would pick one at random), so
    the second version is loaded by a short follow-up load of that contact alone.
    """
    sb.admin.seed("acme", 260, seed=10)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    with _client(sb) as client:
        newest = client.list_contacts(page=1, limit=100).data[0]["id"]
        client.update_contact(newest, {"job_title": "first change"})
    # page 1 read -> an insert (so the scan repeats); page 3 read -> the contact changes again
    sb.admin.add_scan_hook("acme", 1, [{"op": "create", "contact": {"first_name": "Racer"}}])
    sb.admin.add_scan_hook(
        "acme", 3, [{"op": "update", "id": newest, "fields": {"job_title": "second change"}}]
    )

    summary = run_sync(settings)
    frame = assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert summary.scan_passes >= 2 and summary.refetched == 1
    assert _row(frame, newest)["job_title"] == "second change"
