"""The scan started before dlt (pipelines.source.quick): the same warehouse as dlt's path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.source.runner import SyncSummary, run_sync
from tests.fresh_process import run_cli
from tests.sync.helpers import (
    JSON_FIELDS,
    TEXT_FIELDS,
    assert_warehouse_matches_server,
    sync_settings,
    warehouse_frame,
)

#: What a summary says about the data (timings, request counts and views aside).
COUNTS = (
    "new",
    "updated",
    "deleted",
    "unchanged",
    "restored",
    "rows_written",
    "problems",
    "renamed_fields",
    "resolved_problems",
)


def _counts(summary: SyncSummary) -> dict[str, Any]:
    return {name: getattr(summary, name) for name in COUNTS}


def _rows(db: Path) -> list[dict[str, Any]]:
    """The contacts table, row lineage and deletion times (the runs' clocks) aside."""
    frame = warehouse_frame(db).drop(columns=["_dlt_load_id"])
    frame["deleted_at"] = frame["deleted_at"].notna()
    return frame.sort_values("id").astype(object).where(frame.notna(), None).to_dict("records")


def _change(sb: SandboxServer, *, updates: int, archives: int, creates: int, skewed: int) -> None:
    live = [
        c for c in sb.admin.contacts("acme") if c["archived_at"] is None and "firstName" not in c
    ]
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for contact in live[:updates]:
            client.update_contact(contact["id"], {"job_title": "Changed", "tags": ["moved"]})
        for contact in live[updates : updates + archives]:
            client.delete_contact(contact["id"])
        for i in range(creates):
            client.create_contact({"first_name": f"New {i}", "custom_fields": {"n": i}})
    if skewed:  # an update stamped earlier than the copy in the warehouse (clock skew)
        sb.admin.set_clock_offset(-400 * 86_400.0)
        with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
            for contact in live[-skewed:]:
                client.update_contact(contact["id"], {"company": "Skewed Ltd"})
        sb.admin.set_clock_offset(0.0)


@pytest.mark.parametrize(
    "changes",
    [
        {"updates": 0, "archives": 0, "creates": 0, "skewed": 0},
        {"updates": 3, "archives": 0, "creates": 0, "skewed": 0},
        {"updates": 0, "archives": 2, "creates": 0, "skewed": 0},
        {"updates": 2, "archives": 2, "creates": 3, "skewed": 1},
        {"updates": 0, "archives": 0, "creates": 0, "skewed": 2},
    ],
    ids=["nothing", "updates", "archives", "everything", "skewed-only"],
)
def test_quick_start_gives_the_warehouse_and_summary_of_dlts_path(
    sb: SandboxServer, tmp_path: Path, changes: dict[str, int]
) -> None:
    """Two warehouses of one tenant, one synced with the quick start and one through dlt from
    the start: after the same changes both hold the same rows, and the summaries agree. A quick
    start that skipped a real change would leave its warehouse behind the other's."""
    sb.admin.seed("acme", 250, seed=31)
    [model] = sb.admin.contacts("acme")[:1]
    writable = {k: model[k] for k in (*TEXT_FIELDS, *JSON_FIELDS)}
    sb.admin.plant(
        [{**writable, "updated_at": None, "firstName": "Camel too"}]
    )  # stored under a renamed column
    quick = sync_settings(sb, tmp_path / "quick" / "w.duckdb", create_views=True)
    slow = sync_settings(sb, tmp_path / "slow" / "w.duckdb", create_views=True, quick_start=False)
    for settings in (quick, slow):
        Path(settings.duckdb_path).parent.mkdir()
        assert run_sync(settings).new == 251

    _change(sb, **changes)
    by_quick, by_slow = run_sync(quick), run_sync(slow)

    assert _counts(by_quick) == _counts(by_slow)
    assert by_quick.renamed_fields == {"firstName": by_quick.renamed_fields["firstName"]}
    assert by_quick.views == by_slow.views
    assert _rows(Path(quick.duckdb_path)) == _rows(Path(slow.duckdb_path))
    assert_warehouse_matches_server(quick.duckdb_path, sb)
    expected = changes["updates"] + changes["archives"] + changes["creates"] + changes["skewed"]
    assert by_quick.rows_written == expected


def _sync_in_a_fresh_process(sb: SandboxServer, db: Path) -> dict[str, Any]:
    """``lynkist sync --json`` in its own interpreter; also which heavy modules it imported."""
    args = ["sync", "--base-url", sb.base_url, "--duckdb", str(db), "--json"]
    return run_cli(args, api_key=sb.keys["acme"]["rw"])


def test_a_sync_with_nothing_to_write_never_imports_dlt(sb: SandboxServer, tmp_path: Path) -> None:
    """The command's no-change run ends before dlt (and pandas) are imported; a change after it
    is loaded through dlt as usual."""
    sb.admin.seed("acme", 120, seed=37)
    db = tmp_path / "w.duckdb"
    first = _sync_in_a_fresh_process(sb, db)
    assert (first["new"], first["imported"]) == (120, ["dlt"])  # pandas: see with_load_id

    same = _sync_in_a_fresh_process(sb, db)
    assert (same["unchanged"], same["rows_written"], same["imported"]) == (120, 0, [])
    assert same["views"] == first["views"] and same["views"]

    _change(sb, updates=1, archives=1, creates=0, skewed=0)
    changed = _sync_in_a_fresh_process(sb, db)
    assert (changed["updated"], changed["deleted"], changed["rows_written"]) == (1, 1, 2)
    assert "dlt" in changed["imported"]
    assert_warehouse_matches_server(db, sb)
