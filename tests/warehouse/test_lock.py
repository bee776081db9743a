"""The one warehouse lock shared by sync, push and the listener."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipelines.warehouse import Warehouse, WarehouseLockedError, lock_path, warehouse_lock

#: Generous bound for thread hand-offs on a contended 2-core machine.
WAIT = 30.0


def _holder(warehouse: Warehouse, taken: threading.Event, release: threading.Event) -> None:
    with warehouse_lock(warehouse, command="push"):
        taken.set()
        release.wait(WAIT)


def test_a_second_run_is_refused_at_once_and_told_who_holds_it(tmp_path: Path) -> None:
    warehouse = Warehouse(duckdb_path=tmp_path / "w.duckdb")
    taken, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_holder, args=(warehouse, taken, release))
    holder.start()
    try:
        assert taken.wait(WAIT)
        with (
            pytest.raises(WarehouseLockedError, match=r"another lynkist push \(pid \d+\)"),
            warehouse_lock(warehouse, command="sync"),
        ):
            pass
    finally:
        release.set()
        holder.join(WAIT)
    with warehouse_lock(warehouse, command="sync"):  # released by the holder
        assert lock_path(warehouse).read_text().endswith(" sync")


def test_wait_s_waits_for_the_holder_to_finish(tmp_path: Path) -> None:
    warehouse = Warehouse(duckdb_path=tmp_path / "w.duckdb")
    taken, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_holder, args=(warehouse, taken, release))
    holder.start()
    assert taken.wait(WAIT)
    got_it = threading.Event()

    def waiter() -> None:
        with warehouse_lock(warehouse, command="listen", wait_s=WAIT):
            got_it.set()

    second = threading.Thread(target=waiter)
    second.start()
    assert not got_it.wait(0.3), "the waiter got the lock while it was held"
    release.set()
    assert got_it.wait(WAIT), "the waiter never got the lock after its release"
    holder.join(WAIT)
    second.join(WAIT)


def test_reentrant_in_the_holding_thread(tmp_path: Path) -> None:
    """A push refreshing its mirror runs a sync under the lock it already holds."""
    warehouse = Warehouse(duckdb_path=tmp_path / "w.duckdb")
    with warehouse_lock(warehouse, command="push"), warehouse_lock(warehouse, command="sync"):
        pass
    # still held by the outer block until it ends, then free for another process
    with warehouse_lock(warehouse, command="push"):
        with warehouse_lock(warehouse, command="sync"):
            pass
        assert _other_process_can_lock(warehouse) is False
    assert _other_process_can_lock(warehouse) is True


def _other_process_can_lock(warehouse: Warehouse) -> bool:
    code = (
        "import sys\n"
        "from pipelines.warehouse import Warehouse, WarehouseLockedError, warehouse_lock\n"
        f"w = Warehouse(duckdb_path={str(warehouse.duckdb_path)!r})\n"
        "try:\n"
        "    with warehouse_lock(w):\n"
        "        sys.exit(0)\n"
        "except WarehouseLockedError:\n"
        "    sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], timeout=120, check=False)
    assert result.returncode in (0, 3), result
    return result.returncode == 0
