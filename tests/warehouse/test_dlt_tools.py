"""dlt's own tools read a ``lynkist sync`` warehouse: the real file, no private catalog."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dlt
import duckdb
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.warehouse import DEFAULT_DUCKDB_FILE, Warehouse


def test_dlt_attach_duckdb_and_dlt_cli_read_the_synced_rows(
    sb: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb.admin.seed("acme", 12, seed=31)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LYNKIST_API_KEY", raising=False)
    key = sb.keys["acme"]["rw"]
    assert main(["sync", "--base-url", sb.base_url, "--api-key", key, "--quiet"]) == 0

    db = tmp_path / DEFAULT_DUCKDB_FILE
    warehouse = Warehouse(duckdb_path=db)
    # a plain DuckDB connection: `lynkist.contacts` is not ambiguous
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql("select count(*) from lynkist.contacts").fetchall()
        assert rows == [(12,)]
        assert con.sql("select count(*) from lynkist.contacts_current").fetchall() == [(12,)]
    # dlt's public API, from the pipeline's name and working directory alone
    attached = dlt.attach(
        warehouse.pipeline_name_resolved, pipelines_dir=str(warehouse.working_dir)
    )
    frame = attached.dataset().contacts.df()
    assert frame is not None
    assert sorted(frame["id"]) == sorted(c["id"] for c in sb.admin.contacts("acme"))
    # dlt's command line points at the real file
    info = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlt",
            "pipeline",
            "--pipelines-dir",
            str(warehouse.working_dir),
            warehouse.pipeline_name_resolved,
            "info",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert info.returncode == 0, info.stderr
    assert str(db) in info.stdout, info.stdout
    # nothing but the warehouse (and its WAL, while open) beside it
    strays = [p.name for p in tmp_path.rglob("*.duckdb") if p != db]
    assert strays == []
