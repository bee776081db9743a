"""Ctrl-C / SIGTERM during a push, then a rerun at once: no row created twice.

The sandbox's ``commit_delay_ms`` fault commits every write only seconds after it was sent,
even when the client has gone — as a real API does with a request it already queued. A push is
interrupted while its bulk calls wait on the server; the rerun must find those rows once they
land instead of creating them again. Every run is a real ``lynkist push`` process.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.sink import PushSettings
from pipelines.sink.push import inflight_journal_path
from tests.sink.conftest import assert_no_duplicates, live_contacts
from tests.sync.test_process import Driver, _clean_env
from tests.waiting import wait_until

#: How long the sandbox holds each write before committing it.
COMMIT_DELAY_MS = 12000
NEW_ROWS = 150


def _export(path: Path, tag: str, n: int = NEW_ROWS) -> Path:
    rows = [
        {"first_name": f"N{i}", "last_name": tag, "email": f"{tag}.{i}@int.test", "company": "Co"}
        for i in range(n)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _push_args(sb: SandboxServer, export: Path, db: Path, *extra: str) -> list[str]:
    return [
        "push",
        str(export),
        "--mapping",
        "lynkist",
        "--max-concurrency",
        "2",
        "--duckdb",
        str(db),
        "--base-url",
        sb.base_url,
        *extra,
    ]


def bulk_answered(sb: SandboxServer) -> int:
    """Bulk calls the sandbox finished (it logs a request once it has been handled)."""
    return sum(1 for r in sb.admin.requests() if r["path"].endswith("/bulk"))


def interrupt(victim: Driver, how: str) -> None:
    """Send the signals of one interruption style, ~0.2 s apart."""
    first = signal.SIGTERM if how == "term" else signal.SIGINT
    victim.proc.send_signal(first)
    if how in ("int-int", "int-kill"):
        time.sleep(0.2)
        if victim.proc.poll() is None:
            victim.proc.send_signal(signal.SIGINT if how == "int-int" else signal.SIGKILL)


#: Exit codes per style: after SIGINT a push with calls in flight exits at once (130), so the
#: SIGKILL that follows may find it gone already.
EXPECTED_CODES = {"int-int": {130}, "int-kill": {130, -signal.SIGKILL}, "term": {143}}


@pytest.mark.parametrize("how", ["int-int", "int-kill", "term"])
def test_interrupted_push_then_rerun_creates_each_row_once(
    sb: SandboxServer, tmp_path: Path, how: str
) -> None:
    export = _export(tmp_path / "export.csv", how)
    db = tmp_path / "wh.duckdb"
    env = {**_clean_env(), "LYNKIST_API_KEY": sb.keys["acme"]["rw"]}
    journal = inflight_journal_path(
        PushSettings(sb.base_url, sb.keys["acme"]["rw"], duckdb_path=db)
    )
    sb.admin.set_faults(commit_delay_ms=COMMIT_DELAY_MS)
    victim = Driver(_push_args(sb, export, db, "--quiet"), cwd=tmp_path, env=env)
    rerun = Driver(_push_args(sb, export, db, "--json"), cwd=tmp_path, env=env)
    try:
        _interrupt_then_rerun(sb, victim, rerun, journal, how)
    finally:
        for driver in (victim, rerun):
            if driver.proc.poll() is None:  # never let a spare process push on its own
                driver.proc.kill()
                driver.finish()


def _interrupt_then_rerun(
    sb: SandboxServer, victim: Driver, rerun: Driver, journal: Path, how: str
) -> None:
    victim.go()
    # the journal appears just before the first bulk call is sent; then ~1 s into the calls
    wait_until(lambda: journal.exists() or victim.proc.poll() is not None, "the first bulk call")
    time.sleep(1.0)
    assert victim.proc.poll() is None, victim.finish()
    interrupt(victim, how)
    code, out, err = victim.finish()
    assert code in EXPECTED_CODES[how], err
    if code != -signal.SIGKILL:
        lines = [line for line in err.splitlines() if line.strip()]
        word = "terminated" if how == "term" else "interrupted"
        assert len(lines) == 1 and f"lynkist push: {word}" in lines[0], err
        assert "the next `lynkist push` checks" in lines[0]
        assert "Traceback" not in err
    assert bulk_answered(sb) == 0, "the delayed commits should still be pending"
    # the calls cut short stay recorded for the next run, however the process ended
    assert journal.exists(), "the in-flight journal was cleared while calls were in flight"

    sb.admin.set_faults()  # the rerun's own writes are answered at once
    rerun.go()
    code, out, err = rerun.finish()
    assert code == 0, err
    summary = json.loads(out)
    # every bulk call, the victim's two delayed ones included, has been handled by now
    wait_until(
        lambda: bulk_answered(sb) >= 2 + summary["bulk_calls"],
        "the interrupted run's delayed commits",
        timeout=COMMIT_DELAY_MS / 1000 + 30,
    )
    live = live_contacts(sb)
    assert_no_duplicates(live)
    assert len(live) == NEW_ROWS
    assert summary["created"] + summary["unchanged"] == NEW_ROWS
    assert summary["bulk_calls"] == 0  # the victim's calls did commit: nothing to resend


#: A tenant large enough that 20 new rows go as single creates (20 requests < 1 bulk call and
#: 20 searches; a scan would be 21 pages).
SINGLES_TENANT, SINGLE_ROWS = 2_000, 20
#: Long enough that the rerun's resends arrive while the victim's creates are still held.
SINGLES_COMMIT_DELAY_MS = 10_000


def creates_answered(sb: SandboxServer) -> list[dict]:
    """``POST /contacts`` requests the sandbox finished (409s included)."""
    return [
        r for r in sb.admin.requests() if r["method"] == "POST" and r["path"].endswith("/contacts")
    ]


def test_push_interrupted_during_single_creates_then_rerun_creates_each_row_once(
    sb: SandboxServer, tmp_path: Path
) -> None:
    """Interrupted with 2 keyed creates held on the server and 18 never sent: the rerun resends
    all 20 with their keys before planning — the held ones get 409 until they commit, then
    replay; the others are created once — and plans every row as unchanged."""
    sb.admin.seed("acme", SINGLES_TENANT, seed=17)
    export = _export(tmp_path / "export.csv", "single", n=SINGLE_ROWS)
    db = tmp_path / "wh.duckdb"
    env = {**_clean_env(), "LYNKIST_API_KEY": sb.keys["acme"]["rw"]}
    journal = inflight_journal_path(
        PushSettings(sb.base_url, sb.keys["acme"]["rw"], duckdb_path=db)
    )
    victim = Driver(_push_args(sb, export, db, "--quiet"), cwd=tmp_path, env=env)
    rerun = Driver(_push_args(sb, export, db, "--json"), cwd=tmp_path, env=env)
    try:
        sb.admin.set_faults(commit_delay_ms=SINGLES_COMMIT_DELAY_MS)
        victim.go()
        wait_until(
            lambda: journal.exists() or victim.proc.poll() is not None,
            "the first single create",
            timeout=60,
        )
        time.sleep(1.0)
        assert victim.proc.poll() is None, victim.finish()
        interrupt(victim, "int-kill")
        code, _, err = victim.finish()
        assert code in EXPECTED_CODES["int-kill"], err
        assert creates_answered(sb) == [], "the delayed commits should still be pending"
        assert journal.exists(), "the single creates in flight were not kept in the journal"
        (call,) = [json.loads(line) for line in journal.read_text().splitlines()]
        assert len(call["rows"]) == SINGLE_ROWS
        assert all(row["idempotency_key"] for row in call["rows"])

        sb.admin.set_faults()  # the rerun's own writes are answered at once
        rerun.go()
        code, out, err = rerun.finish()
    finally:
        for driver in (victim, rerun):
            if driver.proc.poll() is None:  # never let a spare process push on its own
                driver.proc.kill()
                driver.finish()
    assert code == 0, err
    summary = json.loads(out)
    live = [c for c in live_contacts(sb) if c["last_name"] == "single"]
    assert_no_duplicates(live)
    assert len(live) == SINGLE_ROWS
    assert summary["inflight_settled_rows"] == SINGLE_ROWS
    assert summary["inflight_found"] == SINGLE_ROWS
    assert summary["unchanged"] == SINGLE_ROWS and summary["created"] == 0
    assert summary["single_calls"] == 0 and summary["bulk_calls"] == 0
    assert not journal.exists()
    # the held creates were still in progress when the rerun resent them: told so, not rerun
    assert any(r["status"] == 409 for r in creates_answered(sb))
