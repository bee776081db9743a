"""``lynkist sync`` as real processes: a concurrent second sync, and ``kill -9`` mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.source.runner import SyncSettings, run_sync, warehouse_of
from pipelines.warehouse import DEFAULT_DUCKDB_FILE, lock_path
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
# Imports first (seconds on a busy machine), then waits for "go" on stdin, then runs the CLI:
# the moment the sync starts is then under the test's control.
DRIVER = (
    "import sys\n"
    "from pipelines.cli import main\n"
    "import pipelines.source.runner, pipelines.source, transforms.views\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "sys.stdin.readline()\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


class Driver:
    """A ``lynkist`` process that imports at once and starts its command on :meth:`go`."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, *args],
            cwd=cwd,
            env={**env, "PYTHONPATH": str(REPO)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def go(self) -> None:
        """Wait until the imports are done, then start the command."""
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LYNKIST_", "SOURCES__", "DESTINATION__", "RUNTIME__"))
    }


def test_concurrent_sync_fails_fast_and_corrupts_nothing(sb: SandboxServer, tmp_path: Path) -> None:
    """Config from .dlt/ files in the working directory; the second sync exits 1 at once."""
    sb.admin.seed("acme", 4000, seed=31)
    sb.admin.set_settings(
        latency_ms=1500
    )  # 40 pages, 8 in flight: the first sync holds the lock for seconds, also with its listing
    # started before the lock (the pages arrive while it already holds it)
    dlt_dir = tmp_path / ".dlt"
    dlt_dir.mkdir()
    (dlt_dir / "secrets.toml").write_text(
        f'[sources.lynkist]\napi_key = "{sb.keys["acme"]["ro"]}"\n'
    )
    (dlt_dir / "config.toml").write_text(f'[sources.lynkist]\nbase_url = "{sb.base_url}"\n')
    first = Driver(["sync", "--quiet"], cwd=tmp_path, env=_clean_env())
    second = Driver(["sync"], cwd=tmp_path, env=_clean_env())
    lock = lock_path(warehouse_of(SyncSettings(duckdb_path=tmp_path / DEFAULT_DUCKDB_FILE)))

    first.go()
    wait_until(lambda: lock.exists() and lock.read_text() == f"{first.proc.pid} sync", "first lock")
    second.go()
    code, _, err = second.finish()
    assert first.proc.poll() is None, "the second sync should fail while the first runs"
    assert code == 1
    assert f"another lynkist sync (pid {first.proc.pid}) is running" in err
    assert str(tmp_path / DEFAULT_DUCKDB_FILE) in err

    code, out, err = first.finish()
    assert (code, out) == (0, ""), err
    sb.admin.set_settings(latency_ms=0)
    assert_warehouse_matches_server(tmp_path / DEFAULT_DUCKDB_FILE, sb)


def _pipeline_dir(settings: SyncSettings) -> Path:
    warehouse = warehouse_of(settings)
    return warehouse.working_dir / warehouse.pipeline_name_resolved


def _normalized_package(settings: SyncSettings) -> bool:
    folder = _pipeline_dir(settings) / "load" / "normalized"
    return folder.is_dir() and any(folder.iterdir())


def _make_changes(sb: SandboxServer, round_no: int) -> None:
    live = [c for c in sb.admin.contacts("acme") if c["archived_at"] is None]
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for contact in live[round_no * 20 : round_no * 20 + 10]:
            client.update_contact(contact["id"], {"job_title": f"round {round_no}"})
        for contact in live[-(round_no + 1) * 3 : -round_no * 3 or None]:
            client.delete_contact(contact["id"])
        for i in range(5):
            client.create_contact({"first_name": f"R{round_no}-{i}"})


@pytest.mark.parametrize("kill_at", ["scan", "load"])
def test_kill_9_then_the_next_run_completes(
    sb: SandboxServer, tmp_path: Path, kill_at: str
) -> None:
    """kill -9 while scanning / while loading: the next run finishes, nothing lost or doubled."""
    sb.admin.seed("acme", 600, seed=32)
    db = tmp_path / "w.duckdb"
    settings = sync_settings(sb, db)
    run_sync(settings)  # a warehouse to work on incrementally
    _make_changes(sb, 1)
    sb.admin.set_settings(latency_ms=300 if kill_at == "scan" else 0)
    env = {**_clean_env(), "LYNKIST_API_KEY": sb.keys["acme"]["rw"]}
    victim = Driver(
        ["sync", "--quiet", "--duckdb", str(db), "--base-url", sb.base_url],
        cwd=tmp_path,
        env=env,
    )
    lock = lock_path(warehouse_of(settings))
    victim.go()
    if kill_at == "scan":
        wait_until(lambda: lock.read_text() == f"{victim.proc.pid} sync", "the victim's lock")
        time.sleep(0.3)
    else:
        wait_until(
            lambda: _normalized_package(settings) or victim.proc.poll() is not None,
            "a normalized package",
        )
    victim.proc.send_signal(signal.SIGKILL)
    code, _, _ = victim.finish()
    assert code == -signal.SIGKILL, "the sync ended before it could be killed"

    sb.admin.set_settings(latency_ms=0)
    summary = run_sync(settings)
    if kill_at == "load":
        assert summary.resumed_packages == 1
    assert_warehouse_matches_server(db, sb)
    # and the run after that has nothing left to do
    _make_changes(sb, 2)
    assert run_sync(settings).rows_written == 10 + 3 + 5
    assert_warehouse_matches_server(db, sb)
