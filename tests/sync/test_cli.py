"""``lynkist sync`` in-process: output modes, configuration precedence, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from tests.sync.helpers import assert_warehouse_matches_server


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("LYNKIST_API_KEY", "LYNKIST_BASE_URL", "SOURCES__LYNKIST__API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_json_then_no_changes_then_quiet(
    sb: SandboxServer,
    tmp_path: Path,
    no_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sb.admin.seed("acme", 90, seed=21)
    no_env.setenv("LYNKIST_API_KEY", sb.keys["acme"]["rw"])
    no_env.setenv("LYNKIST_BASE_URL", sb.base_url)
    db = str(tmp_path / "w.duckdb")

    assert main(["sync", "--duckdb", db, "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    summary = json.loads(out[0])
    assert summary["ok"] is True and summary["exit_code"] == 0
    assert summary["new"] == 90 and summary["rows_written"] == 90 and summary["requests"] == 1
    assert {"updated", "deleted", "unchanged", "retries", "duration_s"} <= set(summary)
    assert_warehouse_matches_server(db, sb)

    assert main(["sync", "--duckdb", db]) == 0
    table = capsys.readouterr().out
    assert "unchanged" in table and "90" in table
    assert "No changes since the last sync: 0 rows written." in table

    assert main(["sync", "--duckdb", db, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_flags_beat_environment_beats_dlt_config(
    sb: SandboxServer,
    tmp_path: Path,
    no_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sb.admin.seed("acme", 10, seed=22)
    sb.admin.seed("globex", 7, seed=23)
    no_env.setenv("LYNKIST_BASE_URL", sb.base_url)
    # dlt config only (what .dlt/secrets.toml provides): globex
    no_env.setenv("SOURCES__LYNKIST__API_KEY", sb.keys["globex"]["ro"])
    assert main(["sync", "--duckdb", str(tmp_path / "a.duckdb"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 7
    # the environment wins over dlt config: acme
    no_env.setenv("LYNKIST_API_KEY", sb.keys["acme"]["ro"])
    assert main(["sync", "--duckdb", str(tmp_path / "b.duckdb"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 10
    # a flag wins over both: a bad key fails
    code = main(["sync", "--duckdb", str(tmp_path / "c.duckdb"), "--api-key", "lk_sandbox_nope"])
    assert code == 2
    assert "the API key was rejected" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-key"], "no API key: set LYNKIST_API_KEY"),
        (["--api-key", "lk_sandbox_wrong"], "the API key was rejected"),
        (["--base-url", "http://127.0.0.1:9"], "cannot reach the Lynkist API"),
        (["--destination", "nosuchdb"], "unknown destination 'nosuchdb'"),
        (["--destination", "postgres"], "DESTINATION__POSTGRES__CREDENTIALS"),
        (["--duckdb", "/nonexistent-dir/w.duckdb"], "does not exist"),
    ],
)
def test_configuration_mistakes_exit_2_with_one_line(
    sb: SandboxServer,
    tmp_path: Path,
    no_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    no_env.chdir(tmp_path)
    no_env.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    base = [] if "--base-url" in args else ["--base-url", sb.base_url]
    key = [] if "--api-key" in args else ["--api-key", sb.keys["acme"]["rw"]]
    if args == ["--no-key"]:
        args, key = [], []
    code = main(["sync", *base, *key, *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


#: Opens a DuckDB file read-write, says so, and keeps it open until stdin closes.
HOLD_OPEN = (
    "import duckdb, sys\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('open', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_read_only_key_is_enough_and_failures_exit_1(
    sb: SandboxServer,
    tmp_path: Path,
    no_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sb.admin.seed("acme", 5, seed=24)
    db = str(tmp_path / "w.duckdb")
    base = ["sync", "--base-url", sb.base_url, "--duckdb", db, "--quiet"]
    assert main([*base, "--api-key", sb.keys["acme"]["ro"]]) == 0
    assert main([*base, "--api-key", sb.keys["acme"]["wo"]]) == 2
    assert "contacts:read" in capsys.readouterr().err
    # the warehouse is held open by another process (a notebook, say): exit 1, one line
    held = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert held.stdout is not None and held.stdout.readline() == b"open\n"
        assert main([*base, "--api-key", sb.keys["acme"]["ro"]]) == 1
    finally:
        held.communicate(timeout=120)
    err = capsys.readouterr().err
    assert err.startswith("lynkist sync: error: cannot open the warehouse: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # and the next run works
    assert main([*base, "--api-key", sb.keys["acme"]["ro"]]) == 0
