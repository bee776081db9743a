"""Writes racing the scan: inserts, updates and archives between page requests."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.source.runner import SyncSettings, run_sync
from tests.chaos.figures import fault_counts, report
from tests.chaos.seeds import CHAOS_SEEDS, QUICK_SEEDS
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings, warehouse_frame

PAGE = 20
CONTACTS = 200  # 10 pages


def live_marked_deleted(db: Path, sb: SandboxServer) -> list[str]:
    """Contacts live on the server that the warehouse marks deleted (must never happen)."""
    live = {c["id"] for c in sb.admin.contacts("acme") if c["archived_at"] is None}
    frame = warehouse_frame(db)
    marked = frame[frame["is_deleted"].fillna(False).astype(bool)]["id"]
    return sorted(set(marked) & live)


def install_hooks(sb: SandboxServer, rng: random.Random, tag: str) -> list[str]:
    """Writes after pages 1, 3, 5 and 8: each a mix of inserts, updates and archives.

    Returns:
        First names of the inserted contacts, to check afterwards that every hook fired.
    """
    live = [c for c in sb.admin.contacts("acme") if c["archived_at"] is None]
    rng.shuffle(live)
    inserted: list[str] = []
    for after_page in (1, 3, 5, 8):
        ops: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 4)):
            name = f"{tag}-p{after_page}-{len(inserted)}"
            inserted.append(name)
            ops.append({"op": "create", "contact": {"first_name": name}})
        for _ in range(rng.randint(1, 4)):
            contact = live.pop()
            ops.append({"op": "update", "id": contact["id"], "fields": {"job_title": tag}})
        for _ in range(rng.randint(1, 4)):
            ops.append({"op": "archive", "id": live.pop()["id"]})
        rng.shuffle(ops)
        sb.admin.add_scan_hook("acme", after_page, ops)
    return inserted


def racing_round(sb: SandboxServer, settings: SyncSettings, rng: random.Random, tag: str) -> bool:
    """One sync with writes racing its scan, then one calm sync; returns whether the first
    was already exact."""
    db = Path(settings.duckdb_path)
    inserted = install_hooks(sb, rng, tag)
    summary = run_sync(settings)
    names = {c["first_name"] for c in sb.admin.contacts("acme")}
    assert set(inserted) <= names, "a scan hook did not fire"
    assert live_marked_deleted(db, sb) == []
    try:
        assert_warehouse_matches_server(db, sb)
        exact_at_once = True
    except AssertionError:
        exact_at_once = False
    assert summary.pages >= CONTACTS // PAGE
    run_sync(settings)
    assert live_marked_deleted(db, sb) == []
    assert_warehouse_matches_server(db, sb)
    return exact_at_once


@pytest.mark.parametrize(
    "seed",
    [pytest.param(s, id=f"seed{s}") for s in QUICK_SEEDS[:1]]
    + [pytest.param(s, id=f"seed{s}", marks=pytest.mark.chaos) for s in CHAOS_SEEDS[:10]],
)
def test_writes_racing_the_scan(sb: SandboxServer, tmp_path: Path, seed: int) -> None:
    """A full scan and an incremental scan, each raced: exact after at most two syncs."""
    sb.admin.seed("acme", CONTACTS, seed=seed)
    rng = random.Random(seed)
    settings = sync_settings(sb, tmp_path / "w.duckdb", page_limit=PAGE)

    full = racing_round(sb, settings, rng, f"full{seed}")
    incremental = racing_round(sb, settings, rng, f"incr{seed}")

    report(
        "race",
        seed=seed,
        faults=fault_counts(sb),
        raced_syncs=2,
        full_scan_exact_after_raced_sync=int(full),
        incremental_exact_after_raced_sync=int(incremental),
        live_marked_deleted=0,
    )
