"""The API key never leaks: not in logs at any level, errors, results, the warehouse, dlt's files
or the command's output.

``tests/sync/test_runner.py`` greps a sync's files and logs; this covers the rest: the push (its
results CSV, ``push_results``, retries and reconciliation logged under faults), every logger at
DEBUG (dlt's own, which does not propagate, httpx, httpcore), the text of 401/403/422/5xx
errors with their whole cause chain, every table and column of every DuckDB file dumped as text
(including dlt's compressed state), every file dlt wrote (trace pickles searched as bytes), and
stdout/stderr of the real ``lynkist sync`` / ``lynkist push`` at ``RUNTIME__LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from dlt.common.runtime.run_context import active as active_run_context
from dlt.common.versioned_state import decompress_state

from lynkist_sandbox import SandboxConfig, SandboxServer
from pipelines.client import (
    LynkistClient,
    LynkistError,
    PermissionDeniedError,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from pipelines.sink import PushSettings, run_push
from pipelines.source.runner import SyncSettings, run_sync
from tests.cli.warm import run_commands

KEYS = {
    "acme": {
        "rw": "lk_sandbox_SECRETrw4f1c9e7a2b8d",
        "ro": "lk_sandbox_SECRETro0e5b7c3f9a1d",
        "wo": "lk_sandbox_SECRETwo8a2d6e4c0b7f",
    }
}
INVALID_KEY = "lk_sandbox_SECRETbad3c7f1a9e5d2"
SECRETS = (*KEYS["acme"].values(), INVALID_KEY)
RW = KEYS["acme"]["rw"]
FAST = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.05)
LOGGERS = ("", "dlt", "httpx", "httpcore", "pipelines", "uvicorn", "urllib3")


class _Capture(logging.Handler):
    """Every record, formatted with its arguments and exception text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.names: set[str] = set()
        self._format = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.names.add(record.name)
        self.lines.append(self._format.format(record))


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    """A sandbox whose keys are recognisable anywhere they might turn up."""
    with SandboxServer(SandboxConfig(api_keys=KEYS)) as sandbox:
        yield sandbox


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Capture]:
    """All loggers at DEBUG into one capture (dlt's logger does not propagate to the root)."""
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "DEBUG")
    capture = _Capture()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
    yield capture
    for logger, level in saved:
        logger.removeHandler(capture)
        logger.setLevel(level)


def _error_text(exc: BaseException) -> str:
    """What a user or a log could see of an error: message, repr, attributes, the whole chain."""
    parts = ["".join(traceback.format_exception(exc)), repr(exc)]
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):  # chains can loop
        chain.append(current)
        current = current.__cause__ or current.__context__
    for seen in chain:
        parts += [str(seen), repr(seen), repr(seen.args)]
        if isinstance(seen, LynkistError):  # status, method, endpoint, detail, field errors
            parts.append(repr(vars(seen)))
    return "\n".join(parts)


def _dump_duckdb(path: Path) -> str:
    """Every value of every table of a DuckDB file as text, dlt's compressed state decoded."""
    lines = []
    with duckdb.connect(str(path), read_only=True) as con:
        catalog = con.execute("SELECT current_database()").fetchall()[0][0]
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = ? ORDER BY ALL",
            [catalog],
        ).fetchall()
        for schema, table, column in columns:
            values = con.execute(
                f'SELECT CAST("{column}" AS VARCHAR) FROM "{schema}"."{table}"'
            ).fetchall()
            lines += [f"{schema}.{table}.{column}={value}" for (value,) in values]
            if table == "_dlt_pipeline_state" and column == "state":
                lines += [repr(decompress_state(value)) for (value,) in values if value]
    return "\n".join(lines)


def _assert_clean(texts: dict[str, str], root: Path) -> None:
    for name, text in texts.items():
        for secret in SECRETS:
            assert secret not in text, f"an API key in {name}"
    for path in (p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, f"an API key in {path}"


def test_push_and_sync_keep_the_key_out_of_logs_errors_results_and_warehouse(
    server: SandboxServer,
    logs: _Capture,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server.admin.reset()
    server.admin.seed("acme", 30, seed=5)
    stored = [c for c in server.admin.contacts("acme") if c["email"]]
    db = tmp_path / "warehouse" / "w.duckdb"
    db.parent.mkdir()
    started = time.time()
    sync = SyncSettings(base_url=server.base_url, api_key=RW, duckdb_path=str(db), retry=FAST)
    run_sync(sync)

    export = pd.DataFrame(
        {
            "First Name": ["Ada", "Bob", "", "Changed", "=cmd|' /C calc'!A0"],
            "Email": ["ada@acme.test", "bob@acme.test", "x@acme.test", stored[0]["email"], ""],
            "Company Name": ["A", "B", "C", "Updated Inc", "D"],
        }
    )
    results_csv = tmp_path / "out" / "results.csv"
    # faults: retries, lost bulk answers and their reconciliation all get logged
    server.admin.set_faults(error_5xx=0.3, drop_after_commit=0.5, seed=11)
    report = run_push(
        export,
        PushSettings(
            base_url=server.base_url, api_key=RW, duckdb_path=db, results_path=results_csv
        ),
    )
    server.admin.set_faults()
    assert report.summary["created"] == 2 and report.summary["updated"] == 1
    assert report.summary["rejected"] == 2 and results_csv.is_file()
    faults = {r["fault"] for r in server.admin.requests() if r["fault"]}
    assert faults, "no fault injected: the retry/reconcile logging was not exercised"

    errors: dict[str, BaseException] = {}
    bad = PushSettings(base_url=server.base_url, api_key=INVALID_KEY, duckdb_path=db)
    with pytest.raises(LynkistError) as rejected:
        run_push(export, bad)
    errors["401 push"] = rejected.value
    write_only = SyncSettings(
        base_url=server.base_url, api_key=KEYS["acme"]["wo"], duckdb_path=str(db), retry=FAST
    )
    with pytest.raises(PermissionDeniedError) as denied:
        run_sync(write_only)
    errors["403 sync"] = denied.value
    new_row = pd.DataFrame({"First Name": ["Ro"], "Email": ["ro@acme.test"]})
    read_only = run_push(
        new_row, PushSettings(base_url=server.base_url, api_key=KEYS["acme"]["ro"], duckdb_path=db)
    )
    assert read_only.fatal and "contacts:write" in read_only.fatal
    with LynkistClient(server.base_url, RW, retry=FAST) as client:
        with pytest.raises(ValidationError) as invalid:
            client.create_contact({"first_name": "X", "favourite_colour": "red"})
        errors["422 create"] = invalid.value
        server.admin.set_faults(error_5xx=1.0)
        try:
            with pytest.raises(ServerError) as exhausted:
                client.update_contact(stored[1]["id"], {"company": "Nope"})
            errors["5xx patch"] = exhausted.value
            with pytest.raises(ServerError) as exhausted_sync:
                run_sync(sync)
            errors["5xx sync"] = exhausted_sync.value
        finally:
            server.admin.set_faults()

    out, err = capfd.readouterr()
    dlt_files = [
        p
        for p in Path(active_run_context().data_dir).rglob("*")
        if p.is_file() and p.stat().st_mtime >= started
    ]
    texts = {
        "logs": "\n".join(logs.lines),
        "stdout": out,
        "stderr": err,
        "push report": repr(report.summary)
        + repr(report.warnings)
        + report.results.to_csv()
        + repr(read_only.fatal)
        + read_only.results.to_csv(),
        **{f"{name} error": _error_text(exc) for name, exc in errors.items()},
        **{f"warehouse {p.name}": _dump_duckdb(p) for p in tmp_path.rglob("*.duckdb")},
        **{f"dlt data dir {p}": p.read_bytes().decode("latin-1") for p in dlt_files},
    }
    # the checks could fail: the places searched hold what a leak would put there
    assert {"dlt", "httpx"} <= {name.split(".")[0] for name in logs.names}
    assert any(line.startswith("httpcore") and " DEBUG " in line for line in logs.lines)
    assert any(line.startswith("dlt") and " DEBUG " in line for line in logs.lines)
    assert "ada@acme.test" in texts["warehouse w.duckdb"]
    assert "_dlt_pipeline_state" in texts["warehouse w.duckdb"]
    files = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert {"results.csv", "state.json"} <= files and any(n.startswith("trace") for n in files)
    assert sum(1 for text in texts.values() if "/api/v1/public/contacts" in text) >= 5
    _assert_clean(texts, tmp_path)


def _cli_request(name: str, argv: list[str], root: Path, env: dict[str, str]) -> dict[str, Any]:
    cwd = root / name
    cwd.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LYNKIST_", "SOURCES__"))}
    return {
        "id": name,
        "argv": argv,
        "env": {**base, "RUNTIME__LOG_LEVEL": "DEBUG", **env},
        "cwd": str(cwd),
        "stdout": str(cwd / "stdout"),
        "stderr": str(cwd / "stderr"),
    }


def test_cli_output_and_files_never_show_the_key(server: SandboxServer, tmp_path: Path) -> None:
    """``lynkist sync`` / ``push`` with dlt logging at DEBUG, keys by flag and by environment."""
    server.admin.reset()
    server.admin.seed("acme", 25, seed=6)
    exports = {}
    for name in ("push-flag", "push-invalid", "push-read-only"):
        exports[name] = tmp_path / f"{name}.csv"
        exports[name].write_text(
            f"First Name,Email\nAda,ada@{name}.test\n,nofirst@{name}.test\n"
            f"=1+1,formula@{name}.test\n",
            encoding="utf-8",
        )
    url = ["--base-url", server.base_url]
    db = ["--duckdb", "w.duckdb"]
    env_key = {"LYNKIST_API_KEY": RW}
    requests = [
        _cli_request("sync-env", ["sync", *url, *db, "--json"], tmp_path, env_key),
        _cli_request(
            "push-flag",
            ["push", str(exports["push-flag"]), *url, *db, "--api-key", RW, "--results", "r.csv"],
            tmp_path,
            {},
        ),
        _cli_request(
            "sync-dlt-config",  # the key resolved by dlt, which traces resolved config values
            ["sync", *url, *db, "--json"],
            tmp_path,
            {"SOURCES__LYNKIST__API_KEY": RW},
        ),
        _cli_request("sync-invalid", ["sync", *url, *db, "--api-key", INVALID_KEY], tmp_path, {}),
        _cli_request(
            "push-invalid",
            ["push", str(exports["push-invalid"]), *url, *db],
            tmp_path,
            {"LYNKIST_API_KEY": INVALID_KEY},
        ),
        _cli_request(
            "push-read-only",
            ["push", str(exports["push-read-only"]), *url, *db, "--json"],
            tmp_path,
            {"LYNKIST_API_KEY": KEYS["acme"]["ro"]},
        ),
    ]
    codes = run_commands(requests)

    assert codes == {
        "sync-env": 0,
        "sync-dlt-config": 0,
        "push-flag": 3,  # one row without a first name
        "sync-invalid": 2,
        "push-invalid": 2,
        "push-read-only": 2,
    }
    outputs = {
        f"{r['id']} {stream}": Path(r[stream]).read_text(encoding="utf-8")
        for r in requests
        for stream in ("stdout", "stderr")
    }
    # dlt really logged at DEBUG to stderr, and the outputs name what they are about
    assert "DEBUG" in outputs["sync-env stderr"]
    for name in ("sync-env", "sync-dlt-config"):  # the pushes run alongside: maybe more
        assert json.loads(outputs[f"{name} stdout"])["new"] >= 25
    assert "rejected" in outputs["push-flag stdout"]
    assert "the API key was rejected" in outputs["push-invalid stderr"]
    assert "contacts:write" in outputs["push-read-only stderr"]
    results = (tmp_path / "push-flag" / "r.csv").read_text(encoding="utf-8-sig")
    assert "first_name: missing" in results and "formula@push-flag.test,create" in results
    _assert_clean(outputs, tmp_path)
