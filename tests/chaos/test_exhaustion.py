"""The retry budget runs out: exit 1, one clear line, and nothing the next run cannot finish."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.client import LynkistClient, LynkistError, RetryPolicy
from pipelines.source.runner import run_sync
from tests.chaos.figures import fault_counts, report
from tests.sink.conftest import live_contacts, write_calls
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings, warehouse_frame
from tests.sync.test_process import Driver, _clean_env

#: 429 answers ask for 1 s: the default policy's 8 attempts run out in ~8 s. 5xx and dropped
#: connections back off exponentially (0.5 s doubling, capped at 20 s): ~40 s, make chaos only.
FAULT_PARAMS = [
    pytest.param("error_429", id="429"),
    pytest.param("error_5xx", id="5xx", marks=pytest.mark.chaos),
    pytest.param("drop", id="drop", marks=pytest.mark.chaos),
]


def _one_clean_line(err: str, command: str, key: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"lynkist {command}: error: "), err
    assert "gave up after" in lines[0] and "/api/v1/public/contacts" in lines[0], err
    assert "Traceback" not in err and key not in err
    return lines[0]


def _cli(sb: SandboxServer, tmp_path: Path, args: list[str], tenant: str = "acme") -> Driver:
    env = {**_clean_env(), "LYNKIST_API_KEY": sb.keys[tenant]["rw"]}
    return Driver([*args, "--base-url", sb.base_url], cwd=tmp_path, env=env)


@pytest.mark.parametrize("fault", FAULT_PARAMS)
def test_sync_and_push_exhausted_exit_1_and_the_next_runs_finish(
    sb: SandboxServer, tmp_path: Path, fault: str
) -> None:
    """``lynkist sync`` (tenant acme, pending changes) and ``lynkist push`` (tenant globex) run
    side by side while every request fails: each exits 1 with one clean line, the warehouse and
    the server are untouched, and the same commands finish once the API is back."""
    sb.admin.seed("acme", 250, seed=5)
    db = tmp_path / "w.duckdb"
    run_sync(sync_settings(sb, db))
    before = warehouse_frame(db)
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        live = live_contacts(sb)
        for contact in live[:10]:
            client.update_contact(contact["id"], {"company": "Exhausted"})
        client.delete_contact(live[10]["id"])
        client.create_contact({"first_name": "Late"})
    rows = [{"first_name": f"P{i}", "email": f"p{i}@exhaust.test"} for i in range(150)]
    export = tmp_path / "export.csv"
    pd.DataFrame(rows).to_csv(export, index=False)
    push_db = tmp_path / "push.duckdb"
    sync_args = ["sync", "--quiet", "--duckdb", str(db)]
    push_args = ["push", str(export), "--quiet", "--mapping", "lynkist", "--duckdb", str(push_db)]
    syncer = _cli(sb, tmp_path, sync_args)
    pusher = _cli(sb, tmp_path, push_args, tenant="globex")
    sb.admin.clear_requests()
    sb.admin.set_faults(**{fault: 1.0})

    syncer.go()
    pusher.go()
    sync_code, sync_out, sync_err = syncer.finish()
    push_code, push_out, push_err = pusher.finish()

    faults = fault_counts(sb)
    sb.admin.set_faults()
    assert (sync_code, sync_out) == (1, "")
    assert (push_code, push_out) == (1, "")
    sync_line = _one_clean_line(sync_err, "sync", sb.keys["acme"]["rw"])
    push_line = _one_clean_line(push_err, "push", sb.keys["globex"]["rw"])
    assert warehouse_frame(db).equals(before), "a failed sync changed the warehouse"
    assert write_calls(sb) == [] and live_contacts(sb, "globex") == []

    acme, globex = sb.keys["acme"]["rw"], sb.keys["globex"]["rw"]
    assert main([*sync_args, "--base-url", sb.base_url, "--api-key", acme]) == 0
    assert_warehouse_matches_server(db, sb)
    assert main([*push_args, "--base-url", sb.base_url, "--api-key", globex]) == 0
    emails = Counter(c["email"] for c in live_contacts(sb, "globex"))
    assert emails == Counter(r["email"] for r in rows)
    report("exhaust-cli", seed=None, faults=faults, exit_codes_1=2, error_lines=2)
    print(f"  sync: {sync_line}\n  push: {push_line}")


def _update_every_20th(sb: SandboxServer, company: str) -> None:
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for contact in live_contacts(sb)[::20]:
            client.update_contact(contact["id"], {"company": company})


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed{s}") for s in (1, 2)])
def test_sync_exhausted_mid_scan_leaves_nothing_half_written(
    sb: SandboxServer, tmp_path: Path, seed: int
) -> None:
    """Half the requests fail and each gets two attempts: the run gives up mid-scan."""
    sb.admin.seed("acme", 400, seed=seed)
    db = tmp_path / "w.duckdb"
    calm = sync_settings(sb, db, page_limit=20)
    run_sync(calm)
    _update_every_20th(sb, "Mid-scan")
    before = warehouse_frame(db)
    fragile = sync_settings(
        sb, db, page_limit=20, retry=RetryPolicy(max_attempts=2, initial_backoff=0.01)
    )
    served = 0
    faults: Counter[str] = Counter()
    for attempt in range(10):  # fault seeds until one fails after reading some pages
        sb.admin.clear_requests()
        sb.admin.set_faults(error_5xx=0.5, seed=seed * 100 + attempt)
        try:
            run_sync(fragile)
        except LynkistError as exc:
            assert "gave up after 2 attempts" in str(exc)
            faults = fault_counts(sb)
            served = sum(1 for r in sb.admin.requests() if r["status"] == 200)
            if served:
                break
        else:  # every request got through after all (rare): change the server and try again
            sb.admin.set_faults()
            _update_every_20th(sb, f"Mid-scan {attempt}")
            before = warehouse_frame(db)
    sb.admin.set_faults()
    assert served >= 1, "no run failed after reading some pages"
    assert warehouse_frame(db).equals(before), "the failed sync half-wrote the warehouse"

    summary = run_sync(calm)
    assert (summary.new, summary.updated) == (0, 20)
    assert_warehouse_matches_server(db, sb)
    report("exhaust-mid-scan", seed=seed, faults=faults, pages_served_before_failure=served)


def test_push_exhausted_while_writing_stops_and_the_next_push_sends_the_rest(
    sb: SandboxServer, tmp_path: Path
) -> None:
    """Every write answered 429 until the budget runs out: the push stops at once instead of
    retrying each remaining row for rounds (it used to take 10 x 8 x 5 s for 10 PATCHes),
    records every row as failed with its reason, exits 1 with one line; nothing duplicated, and
    the next push of the same file sends exactly those rows."""
    stored: list[Mapping[str, Any]] = [
        {"first_name": f"S{i}", "email": f"s{i}@exhaust.test"} for i in range(10)
    ]
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        assert client.bulk_create(stored).created == 10
    rows = [{**c, "company": "Changed"} for c in stored]
    rows += [{"first_name": f"N{i}", "email": f"n{i}@exhaust.test"} for i in range(60)]
    export = tmp_path / "export.csv"
    pd.DataFrame(rows).fillna("").to_csv(export, index=False)
    db = tmp_path / "wh.duckdb"
    key = sb.keys["acme"]["rw"]
    run_sync(sync_settings(sb, db))  # the mirror, so that --no-refresh plans against it
    results = tmp_path / "results.csv"
    args = [
        "push",
        str(export),
        "--quiet",
        "--no-refresh",
        "--mapping",
        "lynkist",
        "--duckdb",
        str(db),
        "--results",
        str(results),
    ]
    victim = _cli(sb, tmp_path, args)
    sb.admin.clear_requests()
    # the writes are throttled; reads (the --no-refresh tenant check) are served
    sb.admin.set_faults(error_429=1.0, writes_only=True)

    victim.go()
    started = time.monotonic()
    code, out, err = victim.finish(timeout=90)
    elapsed = time.monotonic() - started

    faults = fault_counts(sb)
    sb.admin.set_faults()
    assert (code, out) == (1, ""), err
    line = err.strip()
    assert line.startswith("lynkist push: error: ") and "\n" not in line, err
    assert "429" in line and "Traceback" not in err and key not in err
    # one retry budget (8 attempts, 1 s apart), not one per row and round
    assert elapsed < 40, f"the push kept retrying for {elapsed:.0f}s"
    outcomes = pd.read_csv(results)
    assert list(outcomes["row_number"]) == list(range(1, len(rows) + 1))
    assert set(outcomes["outcome"]) == {"failed"}
    assert outcomes["error"].str.contains("429").all()
    assert {c["email"] for c in live_contacts(sb)} == {c["email"] for c in stored}

    sb.admin.clear_requests()
    assert main([*args, "--base-url", sb.base_url, "--api-key", key]) == 0
    outcomes = pd.read_csv(results)
    assert Counter(outcomes["outcome"]) == {"created": 60, "updated": 10}
    contacts = live_contacts(sb)
    assert Counter(c["email"] for c in contacts) == Counter(r["email"] for r in rows)
    assert {c["company"] for c in contacts if c["email"].startswith("s")} == {"Changed"}
    report(
        "exhaust-push-writes",
        seed=None,
        faults=faults,
        exit_code=code,
        failed_rows=len(rows),
        seconds=round(elapsed),
    )
    print(f"  message: {line}")
