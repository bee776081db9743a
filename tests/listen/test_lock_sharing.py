"""A sync or push that finds the listener flushing waits; one that finds a sync still fails."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pipelines.warehouse import Warehouse, WarehouseLockedError, warehouse_lock


def _hold(warehouse: Warehouse, command: str, release: threading.Event, held: threading.Event):
    def run() -> None:
        with warehouse_lock(warehouse, command=command):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert held.wait(30)
    return thread


def test_a_sync_waits_for_the_listeners_flush(tmp_path: Path) -> None:
    warehouse = Warehouse(duckdb_path=tmp_path / "w.duckdb")
    release, held = threading.Event(), threading.Event()
    holder = _hold(warehouse, "listen", release, held)
    threading.Timer(0.5, release.set).start()  # the flush ends
    started = time.monotonic()
    with warehouse_lock(warehouse, command="sync"):  # wait_s=0: would fail at once otherwise
        waited = time.monotonic() - started
    holder.join(30)
    assert release.is_set() and waited >= 0.4


def test_a_second_sync_still_fails_at_once(tmp_path: Path) -> None:
    warehouse = Warehouse(duckdb_path=tmp_path / "w.duckdb")
    release, held = threading.Event(), threading.Event()
    holder = _hold(warehouse, "sync", release, held)
    try:
        with (
            pytest.raises(WarehouseLockedError, match="another lynkist sync"),
            warehouse_lock(warehouse, command="sync"),
        ):
            pass
    finally:
        release.set()
        holder.join(30)
