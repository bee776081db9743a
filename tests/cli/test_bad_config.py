"""The real ``lynkist`` command on configuration mistakes: one actionable line, exit 2, no key.

Every case runs as its own process through ``python -m pipelines.cli`` (see ``warm.py``: a
pre-imported zygote forks them, so thirty processes cost seconds, not a minute), against a
sandbox whose keys are recognisable, so that any echo of a key in the output is caught.

Exit-code decisions (the contract: 2 = bad configuration, credentials or arguments):

* missing, rejected (401) or under-scoped (403) key, a base URL that is not the API (404 on the
  contacts path, no listener, not an http(s) URL), an unwritable warehouse or results path, bad
  flags, a missing or empty export, a bad ``--faults`` spec: 2 — the user must change something;
  retrying as is cannot help. An unreachable host is 2 only at first contact (nothing answered
  at all: a wrong URL or a stopped server); an API that fails mid-run after retries is 1.
* a header-only export is not a mistake: 0 rows to push, exit 0, nothing written.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from lynkist_sandbox import SandboxConfig, SandboxServer
from pipelines.sink import PushSettings, run_push
from tests.cli.warm import run_commands

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "acme": {
        "rw": "lk_sandbox_H9cliReadWrite7f3a91c2",
        "ro": "lk_sandbox_H9cliReadOnly55d0e8b4",
        "wo": "lk_sandbox_H9cliWriteOnly9a6c1f03",
    }
}
INVALID_KEY = "lk_sandbox_H9cliInvalid0c4e2d77aa"
SECRETS = (*KEYS["acme"].values(), INVALID_KEY)
#: Not writable even by root: creating a file under /proc fails.
UNWRITABLE_DIR = "/proc"


@dataclass(frozen=True)
class Case:
    """One command line; ``{name}`` placeholders are filled in by :func:`_values`."""

    id: str
    argv: tuple[str, ...]
    code: int
    message: str
    env: dict[str, str] = field(default_factory=dict)


SYNC = ("sync", "--base-url", "{url}")
PUSH = ("push", "{csv}", "--base-url", "{url}")
CASES = [
    Case("sync-no-key", SYNC, 2, "no API key: set LYNKIST_API_KEY"),
    Case("sync-invalid-key", (*SYNC, "--api-key", "{bad}"), 2, "the API key was rejected"),
    Case("sync-invalid-key-env", SYNC, 2, "the API key was rejected", {"LYNKIST_API_KEY": "{bad}"}),
    Case(
        "sync-wrong-path",
        ("sync", "--base-url", "{url}/v2", "--api-key", "{rw}"),
        2,
        "does not serve the Lynkist Contacts API",
    ),
    Case(
        "sync-closed-port",
        ("sync", "--base-url", "{closed}", "--api-key", "{rw}"),
        2,
        "cannot reach the Lynkist API",
    ),
    Case(
        "sync-not-a-url",
        ("sync", "--base-url", "api.lynkist.io", "--api-key", "{rw}"),
        2,
        "is not an http(s) URL",
    ),
    Case("sync-write-only-key", (*SYNC, "--api-key", "{wo}"), 2, "contacts:read"),
    Case(
        "sync-warehouse-under-file",
        (*SYNC, "--api-key", "{rw}", "--duckdb", "{file}/w.duckdb"),
        2,
        "cannot create the warehouse",
    ),
    Case(
        "sync-warehouse-unwritable-dir",
        (*SYNC, "--api-key", "{rw}", "--duckdb", f"{UNWRITABLE_DIR}/w.duckdb"),
        2,
        f"cannot create files in {UNWRITABLE_DIR}",
    ),
    Case(
        "sync-warehouse-is-dir",
        (*SYNC, "--api-key", "{rw}", "--duckdb", "{dir}"),
        2,
        "is a directory",
    ),
    Case(
        "sync-concurrency-not-a-number",
        (*SYNC, "--api-key", "{rw}", "--max-concurrency", "many"),
        2,
        "argument --max-concurrency: invalid int value: 'many'",
    ),
    Case(
        "sync-concurrency-zero",
        (*SYNC, "--api-key", "{rw}", "--max-concurrency", "0"),
        2,
        "--max-concurrency must be at least 1",
    ),
    Case("push-no-key", PUSH, 2, "no API key: set LYNKIST_API_KEY"),
    Case("push-invalid-key", (*PUSH, "--api-key", "{bad}"), 2, "the API key was rejected"),
    Case(
        "push-wrong-path",
        ("push", "{csv}", "--base-url", "{url}/v2", "--api-key", "{rw}"),
        2,
        "does not serve the Lynkist Contacts API",
    ),
    Case(
        "push-closed-port",
        ("push", "{csv}", "--base-url", "{closed}", "--api-key", "{rw}"),
        2,
        "cannot reach the Lynkist API",
    ),
    Case("push-read-only-key", (*PUSH, "--api-key", "{ro}"), 2, "lacks contacts:write"),
    Case(
        "push-warehouse-under-file",
        (*PUSH, "--api-key", "{rw}", "--duckdb", "{file}/w.duckdb"),
        2,
        "--duckdb {file}/w.duckdb",
    ),
    Case(
        "push-warehouse-unwritable-dir",
        (*PUSH, "--api-key", "{rw}", "--duckdb", f"{UNWRITABLE_DIR}/w.duckdb"),
        2,
        f"cannot create files in {UNWRITABLE_DIR}",
    ),
    Case(
        "push-results-under-file",
        (*PUSH, "--api-key", "{rw}", "--results", "{file}/out/results.csv"),
        2,
        "is a file, not a directory",
    ),
    Case(
        "push-results-unwritable-dir",
        (*PUSH, "--api-key", "{rw}", "--results", f"{UNWRITABLE_DIR}/results.csv"),
        2,
        f"cannot create files in {UNWRITABLE_DIR}",
    ),
    Case(
        "push-results-is-dir",
        (*PUSH, "--api-key", "{rw}", "--results", "{dir}"),
        2,
        "is a directory",
    ),
    Case(
        "push-unknown-mapping",
        (*PUSH, "--api-key", "{rw}", "--mapping", "zoho"),
        2,
        "--mapping 'zoho' is neither a preset",
    ),
    Case(
        "push-bad-match-on",
        (*PUSH, "--api-key", "{rw}", "--match-on", "name"),
        2,
        "--match-on 'name' is not supported",
    ),
    Case(
        "push-tags-junk",
        (*PUSH, "--api-key", "{rw}", "--tags", "junk"),
        2,
        "argument --tags: invalid choice: 'junk'",
    ),
    Case(
        "push-missing-file",
        ("push", "{dir}/missing.csv", "--base-url", "{url}", "--api-key", "{rw}"),
        2,
        "missing.csv: no such file",
    ),
    Case(
        "push-empty-csv",
        ("push", "{empty}", "--base-url", "{url}", "--api-key", "{rw}"),
        2,
        "the export is empty",
    ),
    Case(
        "sync-duckdb-is-a-csv",
        (*SYNC, "--api-key", "{rw}", "--duckdb", "{csv}"),
        2,
        "--duckdb {csv} exists and is not a DuckDB database",
    ),
    Case(
        "push-duckdb-is-a-csv",
        (*PUSH, "--api-key", "{rw}", "--duckdb", "{csv}"),
        2,
        "--duckdb {csv} exists and is not a DuckDB database",
    ),
    Case(
        "push-directory",
        ("push", "{dir}", "--base-url", "{url}", "--api-key", "{rw}"),
        2,
        "{dir} is a directory — give the path of a CSV export file",
    ),
    Case(
        "push-excel-workbook",
        ("push", "{xlsx}", "--base-url", "{url}", "--api-key", "{rw}"),
        2,
        "this is an Excel workbook — save it as CSV",
    ),
    Case(
        "push-binary-file",
        ("push", "{binary}", "--base-url", "{url}", "--api-key", "{rw}"),
        2,
        "not a text file",
    ),
    Case(
        "sync-server-never-answers",
        ("sync", "--base-url", "{hung}", "--api-key", "{rw}", "--timeout", "1"),
        2,
        "{hung_host} accepted the connection but did not answer within 1 s (--timeout)",
    ),
    Case(
        "push-server-never-answers",
        ("push", "{csv}", "--base-url", "{hung}", "--api-key", "{rw}", "--timeout", "1"),
        2,
        "{hung_host} accepted the connection but did not answer within 1 s (--timeout)",
    ),
    Case(
        "sync-timeout-zero",
        (*SYNC, "--api-key", "{rw}", "--timeout", "0"),
        2,
        "argument --timeout: 0 is not a positive number of seconds",
    ),
    Case(
        "sync-postgres-credentials",
        (*SYNC, "--api-key", "{rw}", "--destination", "postgres"),
        2,
        "DESTINATION__POSTGRES__CREDENTIALS (e.g. postgresql://user:password@host:5432/",
    ),
    Case(
        "sync-bigquery-credentials",
        (*SYNC, "--api-key", "{rw}", "--destination", "bigquery"),
        2,
        "DESTINATION__BIGQUERY__CREDENTIALS (e.g. the service-account key file's JSON",
    ),
    Case(
        "sandbox-port-out-of-range",
        ("sandbox", "--port", "99999"),
        2,
        "argument --port: 99999 is not a TCP port (0-65535; 0 = any free)",
    ),
    Case(
        "sandbox-bad-fault-share",
        ("sandbox", "--port", "0", "--faults", "5xx=lots"),
        2,
        "--faults: bad number 'lots'",
    ),
    Case(
        "sandbox-unknown-fault",
        ("sandbox", "--port", "0", "--faults", "explode=0.5"),
        2,
        "--faults: ",
    ),
]
#: With ``--json`` a failed run still prints one JSON object on stdout (a log of JSON lines).
JSON_CASES = [
    Case("sync-json-invalid-key", (*SYNC, "--api-key", "{bad}", "--json"), 2, ""),
    Case("sync-json-bad-flag", (*SYNC, "--json", "--max-concurrency", "many"), 2, ""),
    Case("push-json-closed-port", (*PUSH[:2], "{closed}", "--api-key", "{rw}", "--json"), 2, ""),
    Case("push-json-not-text", ("push", "{binary}", "--api-key", "{rw}", "--json"), 2, ""),
]
HEADER_ONLY = Case(
    "push-header-only",
    ("push", "{header}", "--base-url", "{url}", "--api-key", "{rw}"),
    0,
    "0 rows",
)
#: Also run through a plain ``python -m pipelines.cli`` process: the zygote must behave the same.
GENUINE = "push-invalid-key"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@dataclass
class Batch:
    values: dict[str, str]
    runs: dict[str, Run]
    genuine: Run
    contacts: list[dict[str, object]]
    writes: list[dict[str, object]]


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def _excel_workbook(path: Path) -> None:
    """The entries every .xlsx starts with (an OOXML zip), as Excel writes them."""
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        book.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook/>')
        book.writestr("xl/worksheets/sheet1.xml", "<worksheet><c><v>Ada</v></c></worksheet>")


def _values(server: SandboxServer, root: Path, hung: socket.socket) -> dict[str, str]:
    files = root / "files"
    files.mkdir()
    _excel_workbook(files / "export.xlsx")
    (files / "photo.png").write_bytes(bytes(range(256)) * 8)
    (files / "ok.csv").write_text("First Name,Email\nAda,ada@acme.test\n", encoding="utf-8")
    (files / "empty.csv").write_bytes(b"")
    (files / "header.csv").write_text("First Name,Email\n", encoding="utf-8")
    (files / "regular").write_text("a regular file, not a directory\n")
    return {
        "url": server.base_url,
        "closed": _closed_port_url(),
        "bad": INVALID_KEY,
        **KEYS["acme"],
        "csv": str(files / "ok.csv"),
        "empty": str(files / "empty.csv"),
        "header": str(files / "header.csv"),
        "file": str(files / "regular"),
        "dir": str(files),
        "xlsx": str(files / "export.xlsx"),
        "binary": str(files / "photo.png"),
        "hung": "http://{}:{}".format(*hung.getsockname()),
        "hung_host": "{}:{}".format(*hung.getsockname()),
    }


@contextlib.contextmanager
def _never_answers() -> Iterator[socket.socket]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock


def _clean_env() -> dict[str, str]:
    prefixes = ("LYNKIST_", "SOURCES__", "DESTINATION__")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONPATH"] = str(REPO)
    return env


def _request(case: Case, values: dict[str, str], root: Path) -> dict[str, Any]:
    cwd = root / case.id
    cwd.mkdir()
    return {
        "id": case.id,
        "argv": [part.format(**values) for part in case.argv],
        "env": {**_clean_env(), **{k: v.format(**values) for k, v in case.env.items()}},
        "cwd": str(cwd),
        "stdout": str(cwd / "stdout"),
        "stderr": str(cwd / "stderr"),
    }


def _read(request: dict[str, Any], code: int) -> Run:
    out = Path(request["stdout"]).read_text(encoding="utf-8")
    err = Path(request["stderr"]).read_text(encoding="utf-8")
    return Run(code, out, err)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    """Every case's process, run once against a sandbox with recognisable keys."""
    root = tmp_path_factory.mktemp("bad-config")
    with SandboxServer(SandboxConfig(api_keys=KEYS)) as server, _never_answers() as hung:
        values = _values(server, root, hung)
        cases = [*CASES, *JSON_CASES, HEADER_ONLY]
        requests = [_request(case, values, root) for case in cases]
        genuine_request = _request(
            Case("genuine", next(c for c in CASES if c.id == GENUINE).argv, 2, ""), values, root
        )
        genuine = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *genuine_request["argv"]],
            cwd=genuine_request["cwd"],
            env=genuine_request["env"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        codes = run_commands(requests)
        out, err = genuine.communicate(timeout=120)
        contacts = server.admin.contacts("acme")
        writes = [r for r in server.admin.requests() if r["method"] in ("POST", "PATCH", "DELETE")]
    yield Batch(
        values=values,
        runs={r["id"]: _read(r, codes[r["id"]]) for r in requests},
        genuine=Run(genuine.returncode, out, err),
        contacts=contacts,
        writes=[w for w in writes if not str(w["path"]).endswith("/search")],
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_mistake_is_one_actionable_line_without_traceback_or_key(batch: Batch, case: Case) -> None:
    run = batch.runs[case.id]
    assert run.code == case.code, run.err
    assert "Traceback" not in run.err + run.out
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    command = case.argv[0]
    assert lines[0].startswith(f"lynkist {command}: error: "), lines[0]
    assert case.message.format(**batch.values) in lines[0]
    for secret in SECRETS:
        assert secret not in run.err and secret not in run.out, f"a key in the output of {case.id}"


@pytest.mark.parametrize("case", JSON_CASES, ids=lambda c: c.id)
def test_json_failure_is_one_json_object_on_stdout(batch: Batch, case: Case) -> None:
    run = batch.runs[case.id]
    assert run.code == case.code, run.err
    lines = run.out.strip().splitlines()
    assert len(lines) == 1, run.out
    answer = json.loads(lines[0])
    error = run.err.strip().split(": error: ", 1)[1]
    assert answer == {"ok": False, "error": error, "exit_code": case.code}
    assert "Traceback" not in run.err


def test_credentials_hint_fits_the_destination(batch: Batch) -> None:
    assert "postgresql://" not in batch.runs["sync-bigquery-credentials"].err


def test_header_only_export_is_zero_rows_not_an_error(batch: Batch) -> None:
    run = batch.runs[HEADER_ONLY.id]
    assert run.code == 0, run.err
    assert "0 rows" in run.out and "Traceback" not in run.err
    assert all(secret not in run.out + run.err for secret in SECRETS)


def test_warm_launcher_behaves_like_the_plain_command(batch: Batch) -> None:
    """The zygote's child and a plain ``python -m pipelines.cli`` give the same answer."""
    warm = batch.runs[GENUINE]
    assert batch.genuine.code == warm.code == 2
    assert batch.genuine.err == warm.err
    assert batch.genuine.out == warm.out


def test_no_mistake_wrote_anything(batch: Batch) -> None:
    """Usage errors are found before any write: no contact, every write call refused."""
    assert batch.contacts == []
    # the read-only key's bulk call is the only write that reached the API, and it was refused
    assert [(w["method"], w["status"]) for w in batch.writes] == [("POST", 403)]


def test_results_csv_failing_after_the_writes_is_a_warning(
    sb: SandboxServer, api_key: str, tmp_path: Path
) -> None:
    """The results file breaks once the writes are done: outcomes still land in push_results."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the results' directory should be")
    frame = pd.DataFrame({"First Name": ["Ada", "Bob"], "Email": ["ada@acme.test", "b@acme.test"]})
    report = run_push(
        frame,
        PushSettings(
            base_url=sb.base_url,
            api_key=api_key,
            duckdb_path=tmp_path / "w.duckdb",
            results_path=blocker / "results.csv",
        ),
    )
    assert report.results_path is None
    assert any("could not write the results CSV" in w for w in report.warnings), report.warnings
    assert report.summary["created"] == 2
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        outcomes = con.sql(
            "SELECT outcome FROM lynkist.push_results ORDER BY row_number"
        ).fetchall()
    assert outcomes == [("created",), ("created",)]
