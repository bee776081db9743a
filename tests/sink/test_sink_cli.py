"""``lynkist push`` from the command line: exit codes, results CSV, resume after kill -9."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.client import LynkistClient
from pipelines.sink import PushSettings, run_push
from tests.sink.conftest import assert_no_duplicates, create_contacts, live_contacts, write_calls

REPO = Path(__file__).resolve().parents[2]


def _hubspot_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).fillna("").to_csv(path, index=False)
    return path


def _args(sb: SandboxServer, key: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--base-url",
        sb.base_url,
        "--api-key",
        key,
        "--duckdb",
        str(tmp_path / "wh.duckdb"),
        *extra,
    ]


def test_cli_outcomes_exit_codes_and_results_csv(
    sb: SandboxServer, api_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = _hubspot_csv(
        tmp_path / "hubspot.csv",
        [
            {"Record ID": "=1+1", "First Name": "Eve", "Email": "eve@acme.test"},
            {"Record ID": "77", "First Name": "Bob", "Email": "bob@acme.test"},
            {"Record ID": "78", "First Name": "", "Email": "nofirst@acme.test"},
        ],
    )
    results = tmp_path / "out" / "results.csv"
    argv = ["push", str(export), "--match-on", "custom_fields.hubspot_record_id"]
    code = main([*argv, *_args(sb, api_key, tmp_path, "--results", str(results))])
    assert code == 3  # one row rejected
    out = capsys.readouterr().out
    assert "created" in out and "rejected" in out
    with results.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["outcome"] for r in rows] == ["created", "created", "rejected"]
    assert rows[0]["match_key"] == "'=1+1"  # a formula would run when opened in a spreadsheet
    assert "first_name" in rows[2]["error"]
    assert api_key not in results.read_text()
    assert {c["first_name"] for c in live_contacts(sb)} == {"Eve", "Bob"}

    # fixed file: every row lands, exit 0, and unchanged rows cost nothing
    export.write_text(export.read_text().replace(",,nofirst", ",Nora,nofirst"))
    sb.admin.clear_requests()
    assert main([*argv, *_args(sb, api_key, tmp_path, "--quiet")]) == 0
    assert [w["method"] for w in write_calls(sb)] == ["POST"]
    assert len(live_contacts(sb)) == 3


def test_cli_user_mistakes_exit_2(
    sb: SandboxServer, api_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = _hubspot_csv(tmp_path / "e.csv", [{"First Name": "A", "Email": "a@acme.test"}])
    cases = [
        (["push", str(tmp_path / "missing.csv")], "no such file"),
        (["push", str(export), "--match-on", "name"], "--match-on"),
        (["push", str(export), "--mapping", "nope"], "--mapping"),
        (["push", str(export), "--match-on", "phone"], "no column mapped to phone"),
    ]
    for argv, message in cases:
        assert main([*argv, *_args(sb, api_key, tmp_path)]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1

    read_only = sb.keys["acme"]["ro"]
    assert main(["push", str(export), *_args(sb, read_only, tmp_path, "--quiet")]) == 2
    err = capsys.readouterr().err
    assert "contacts:write" in err and read_only not in err
    assert live_contacts(sb) == []


def test_killed_push_resumes_without_duplicates(
    sb: SandboxServer, api_key: str, tmp_path: Path
) -> None:
    with LynkistClient(sb.base_url, api_key) as client:
        create_contacts(
            client,
            [{"first_name": f"Old{i}", "email": f"old{i}@acme.test"} for i in range(60)],
        )
    rows = [{"first_name": f"New{i}", "email": f"new{i}@acme.test"} for i in range(900)]
    rows += [
        {"first_name": f"Old{i}", "email": f"old{i}@acme.test", "company": "Changed"}
        for i in range(60)
    ]
    frame = pd.DataFrame(rows).fillna("")
    export = tmp_path / "export.csv"
    frame.to_csv(export, index=False)
    warehouse = tmp_path / "wh.duckdb"
    sb.admin.set_settings(latency_ms=120)
    sb.admin.clear_requests()

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pipelines.cli", "push", str(export), "--quiet"]
    process = subprocess.Popen(
        [*command, "--mapping", "lynkist", "--max-concurrency", "2", *_args(sb, api_key, tmp_path)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            writes = write_calls(sb)
            bulks = [w for w in writes if w["path"].endswith("/bulk")]
            if len(bulks) >= 2:
                break
            assert process.poll() is None, "the push finished before it could be killed"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    first_run = live_contacts(sb)
    assert_no_duplicates(first_run)
    assert 260 <= len(first_run) < 960  # killed midway: some batches in, not all

    sb.admin.set_settings(latency_ms=0)
    report = run_push(
        frame,
        PushSettings(
            base_url=sb.base_url,
            api_key=api_key,
            mapping="lynkist",
            duckdb_path=warehouse,
            inflight_grace_s=0.5,  # the killed run's calls take 120 ms at most
        ),
    )

    contacts = live_contacts(sb)
    assert_no_duplicates(contacts)
    assert len(contacts) == 960
    assert {c["company"] for c in contacts if c["email"].startswith("old")} == {"Changed"}
    assert report.ok
    outcomes = report.results["outcome"].value_counts().to_dict()
    assert sum(outcomes.values()) == 960
    assert set(outcomes) <= {"created", "updated", "unchanged"}
    # rows the killed run wrote are not written again
    assert outcomes.get("unchanged", 0) >= len(first_run) - 60


def test_cli_json_is_one_object_with_ok_and_exit_code(
    sb: SandboxServer, api_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = _hubspot_csv(
        tmp_path / "hubspot.csv",
        [
            {"First Name": "Eve", "Email": "eve@acme.test"},
            {"First Name": "", "Email": "nofirst@acme.test"},
        ],
    )
    assert main(["push", str(export), *_args(sb, api_key, tmp_path, "--json")]) == 3
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert answer["ok"] is False and answer["exit_code"] == 3
    assert answer["error"] == "rows not written: 1 rejected, 0 failed"
    assert (answer["created"], answer["rejected"]) == (1, 1)

    export.write_text(export.read_text().replace(",nofirst", "Nora,nofirst"))
    assert main(["push", str(export), *_args(sb, api_key, tmp_path, "--json")]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["ok"], answer["exit_code"], answer["error"]) == (True, 0, None)
    assert answer["created"] == 1 and answer["unchanged"] == 1


def test_dry_run_shows_columns_first_and_the_custom_keys_that_change(
    sb: SandboxServer,
    api_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with LynkistClient(sb.base_url, api_key) as client:
        create_contacts(
            client,
            [{"first_name": "Ana", "email": "ana@acme.test", "custom_fields": {"plan": "starter"}}],
        )
    export = _hubspot_csv(
        tmp_path / "hubspot.csv",
        [
            {
                "First Name": "Ana",
                "Email": "ana@acme.test",
                "Contact owner": "Sam Ortiz",
                "Shoe Size": "38",
                "[legacy]": "x",
                "Create Date": "2026-01-01",
                "custom_fields.plan": "",
            }
        ],
    )
    overrides = tmp_path / "map.csv"
    overrides.write_text("column,field\ncustom_fields.plan,custom_fields.plan\n")
    plan_csv = tmp_path / "plan.csv"
    argv = ["push", str(export), "--dry-run", "--clear-empty", "-v", "--mapping", str(overrides)]
    with caplog.at_level("INFO", logger="pipelines"):
        code = main([*argv, "--results", str(plan_csv), *_args(sb, api_key, tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    # the mapping comes first, every column in it
    assert out.index("Columns") < out.index("Push plan")
    for line in ("custom_fields.owner", "Shoe Size", "ignored — not in the mapping", "Create Date"):
        assert line in out
    # the custom_fields diff names each key instead of cutting both objects to "…"
    assert "custom_fields.plan" in out and "starter" in out
    assert "custom_fields.owner" in out.split("Field changes")[1]
    # user text is never read as rich markup (a "[column …]" hint or a "[x]" header vanished)
    assert "[legacy]" in out
    assert f"plan: {plan_csv}" in out.replace("\n", "")
    with plan_csv.open(newline="", encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["action"] == "update"
    assert row["changed_fields"] == "custom_fields.owner,custom_fields.plan"
    assert any("Shoe Size" in r.getMessage() for r in caplog.records)


def test_rejection_reasons_are_printed_whole(
    sb: SandboxServer, api_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = _hubspot_csv(
        tmp_path / "e.csv",
        [{"First Name": "Camille", "Email": "c@alpes.test", "Phone Number": "04 50 11 22 33"}],
    )
    code = main(["push", str(export), "--dry-run", *_args(sb, api_key, tmp_path)])
    assert code == 3
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert 'phone: "04 50 11 22 33" is not a valid phone number in US' in out
    assert "--default-region FR" in out
    assert '[column "Phone Number"]' in out
