"""Ctrl-C and SIGTERM end every command with one line and exit 130 / 143, never a traceback.

Real ``lynkist sync`` processes against the sandbox, signalled in the middle of their scan
(where dlt catches the interruption and wraps it as ``PipelineStepFailed``); the next sync then
completes and the warehouse matches the server. The push counterpart, with writes in flight,
is ``tests/sink/test_push_interrupt.py``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import ON_INTERRUPT
from pipelines.source.runner import run_sync, warehouse_of
from pipelines.warehouse import lock_path
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings
from tests.sync.test_process import Driver, _clean_env
from tests.waiting import wait_until


@pytest.mark.parametrize(
    ("signum", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["sigint", "sigterm"],
)
def test_sync_signalled_mid_scan_prints_one_line_and_the_next_sync_completes(
    sb: SandboxServer, tmp_path: Path, signum: int, code: int, word: str
) -> None:
    sb.admin.seed("acme", 400, seed=41)
    db = tmp_path / "w.duckdb"
    settings = sync_settings(sb, db)
    sb.admin.set_settings(latency_ms=300)  # the scan lasts seconds
    env = {**_clean_env(), "LYNKIST_API_KEY": sb.keys["acme"]["ro"]}
    victim = Driver(["sync", "--duckdb", str(db), "--base-url", sb.base_url], cwd=tmp_path, env=env)
    lock = lock_path(warehouse_of(settings))
    victim.go()
    wait_until(lambda: lock.exists() and lock.read_text() == f"{victim.proc.pid} sync", "the lock")
    # well into the scan: page requests have been answered
    wait_until(lambda: len(sb.admin.requests()) >= 2, "the first pages")
    time.sleep(0.2)
    assert victim.proc.poll() is None
    victim.proc.send_signal(signum)
    got, out, err = victim.finish()

    assert got == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"lynkist sync: {word} — {ON_INTERRUPT['sync']}"], err
    assert out == ""
    sb.admin.set_settings(latency_ms=0)
    run_sync(settings)
    assert_warehouse_matches_server(db, sb)
