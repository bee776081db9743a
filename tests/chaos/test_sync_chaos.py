"""Sync under 5xx, 429 (mixed Retry-After), dropped connections and answers near the timeout."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient, LynkistError
from pipelines.source.runner import SyncSettings, SyncSummary, run_sync
from tests.chaos.figures import fault_counts, report
from tests.chaos.seeds import CLIENT_TIMEOUT, faults_for, seed_params
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings, warehouse_frame


def sync_until_done(settings: SyncSettings, attempts: int = 3) -> tuple[SyncSummary, int]:
    """Run syncs until one completes; returns its summary and how many failed before it."""
    for failed in range(attempts):
        try:
            return run_sync(settings), failed
        except LynkistError:
            # retries exhausted: allowed, as long as the next run completes the work
            continue
    raise AssertionError(f"{attempts} syncs in a row failed under transient faults")


def _change(sb: SandboxServer, seed: int) -> tuple[int, int, int]:
    live = [c for c in sb.admin.contacts("acme") if c["archived_at"] is None]
    updates, archives, creates = live[:25], live[25:35], 8
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for i, contact in enumerate(updates):
            client.update_contact(contact["id"], {"job_title": f"chaos {seed}/{i}", "tags": ["c"]})
        for contact in archives:
            client.delete_contact(contact["id"])
        for i in range(creates):
            client.create_contact({"first_name": f"Chaos{seed}", "custom_fields": {"i": i}})
    return len(updates), len(archives), creates


def _none(value: object) -> object:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def discrepancies(db: Path, sb: SandboxServer) -> tuple[int, int]:
    """Live contacts missing from the warehouse (or stale), and ids stored more than once.

    Counted for the figures before :func:`assert_warehouse_matches_server` checks every field.
    """
    frame = warehouse_frame(db)
    stored = {r["id"]: r for r in frame.to_dict("records")}
    lost = sum(
        1
        for c in sb.admin.contacts("acme")
        if c["archived_at"] is None
        and (c["id"] not in stored or _none(stored[c["id"]]["job_title"]) != c["job_title"])
    )
    return lost, len(frame) - frame["id"].nunique()


@pytest.mark.parametrize("seed", seed_params())
def test_sync_under_faults_equals_server(sb: SandboxServer, tmp_path: Path, seed: int) -> None:
    """Full then incremental sync under faults: the warehouse equals the server after each."""
    sb.admin.seed("acme", 300, seed=seed)
    sb.admin.set_settings(retry_after="mixed")
    db = tmp_path / "w.duckdb"
    settings = sync_settings(sb, db, timeout=CLIENT_TIMEOUT, page_limit=20)

    sb.admin.set_faults(**faults_for(seed))
    first, failed_first = sync_until_done(settings)
    faults = fault_counts(sb)
    sb.admin.set_faults()
    lost, duplicated = discrepancies(db, sb)
    assert_warehouse_matches_server(db, sb)
    assert first.new == 300

    updated, archived, created = _change(sb, seed)
    sb.admin.clear_requests()
    sb.admin.set_faults(**faults_for(seed + 10_000))
    second, failed_second = sync_until_done(settings)
    faults += fault_counts(sb)
    sb.admin.set_faults()
    lost2, duplicated2 = discrepancies(db, sb)
    assert_warehouse_matches_server(db, sb)
    if not failed_second:  # a failed run may have loaded part of the changes already
        assert (second.new, second.updated, second.deleted) == (created, updated, archived)

    assert sum(faults.values()) > 0, "no fault was injected: the test proves nothing"
    report(
        "sync",
        seed=seed,
        faults=faults,
        requests=first.requests + second.requests,
        retries=first.retries + second.retries,
        failed_runs=failed_first + failed_second,
        rows_lost=lost + lost2,
        rows_duplicated=duplicated + duplicated2,
    )
