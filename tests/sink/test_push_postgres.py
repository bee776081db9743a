"""``lynkist push`` and ``lynkist report`` on PostgreSQL: the same flags as ``lynkist sync``."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.warehouse import Warehouse
from tests.plugins.postgres import postgres_dsn  # noqa: F401


@pytest.mark.postgres
def test_push_and_report_on_postgres(
    sb: SandboxServer,
    tmp_path: Path,
    postgres_dsn: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_dsn)
    monkeypatch.delenv("LYNKIST_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # the postgres pipelines' working dir: ./.lynkist/pipelines
    sb.admin.seed("acme", 40, seed=52)
    stored = next(c for c in sb.admin.contacts("acme") if c["email"])
    dataset = f"push_{uuid.uuid4().hex[:8]}"
    where = ["--destination", "postgres", "--dataset", dataset]
    key = ["--base-url", sb.base_url, "--api-key", sb.keys["acme"]["rw"]]
    export = tmp_path / "export.csv"
    with export.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_name", "email", "company"])
        writer.writerow([stored["first_name"], stored["email"], "Changed Co"])
        writer.writerow(["Newbie", "newbie@pg.test", ""])

    assert main(["push", str(export), "--mapping", "lynkist", *key, *where, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["created"], summary["updated"]) == (1, 1), summary
    assert not (tmp_path / "lynkist_warehouse.duckdb").exists(), "pushed into DuckDB instead"

    warehouse = Warehouse(destination="postgres", dataset=dataset)
    dataset_view = warehouse.pipeline().dataset()
    contacts = dataset_view.contacts.df()
    # the push's refresh synced the 40 here; the push merged what it wrote (PATCH answer,
    # the created contact looked up) into the same table
    assert contacts is not None and len(contacts) == 41
    by_email = {row.email: row for row in contacts.itertuples()}
    assert by_email[stored["email"]].company == "Changed Co"
    created = next(c for c in sb.admin.contacts("acme") if c["email"] == "newbie@pg.test")
    assert by_email["newbie@pg.test"].id == created["id"]
    # push_results is the push pipeline's table (same destination and dataset)
    results = warehouse.pipeline(warehouse.push_pipeline_name).dataset().push_results.df()
    assert results is not None
    assert sorted(results["outcome"]) == ["created", "updated"]
    assert results["contact_id"].notna().all()

    out = tmp_path / "report"
    assert main(["report", *where, "--out", str(out)]) == 0
    assert "push runs" in (out / "report.html").read_text("utf-8")
    assert main(["report", "--destination", "postgres", "--dataset", "nope_" + dataset]) == 2
    assert "holds no `nope_" in capsys.readouterr().err
