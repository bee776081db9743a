"""A client nobody here wrote reads the sandbox correctly: dlt's generic ``rest_api`` source."""

from __future__ import annotations

from pathlib import Path

import dlt
import duckdb
import httpx
import pytest
from dlt.sources.rest_api import rest_api_source

from lynkist_sandbox import SandboxServer


def test_dlt_rest_api_loads_every_contact(
    sb: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: httpx.Client
) -> None:
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    sb.admin.seed("acme", 1234, seed=11)
    for contact in client.get("", params={"page": 3, "limit": 10}).json()["data"]:
        assert client.delete(f"/{contact['id']}").status_code == 200
    live = [c for c in sb.admin.contacts("acme") if c["archived_at"] is None]
    assert len(live) == 1224

    source = rest_api_source(
        {
            "client": {
                "base_url": sb.base_url + "/api/v1/public/",
                "auth": {"type": "bearer", "token": sb.keys["acme"]["ro"]},
                "paginator": {
                    "type": "page_number",
                    "base_page": 1,
                    "page_param": "page",
                    "total_path": "pagination.total_pages",
                },
            },
            "resource_defaults": {"primary_key": "id", "write_disposition": "replace"},
            "resources": [
                {
                    "name": "contacts",
                    "endpoint": {
                        "path": "contacts",
                        "params": {"limit": 100},
                        "data_selector": "data",
                    },
                }
            ],
        }
    )
    db_file = tmp_path / "rest_api.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name="sandbox_rest_api",
        destination=dlt.destinations.duckdb(str(db_file)),
        dataset_name="lynkist",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    pipeline.run(source)

    with duckdb.connect(str(db_file), read_only=True) as conn:
        rows = conn.execute("SELECT id, first_name, email, status FROM lynkist.contacts").fetchall()
        tags = conn.execute("SELECT count(*) FROM lynkist.contacts__tags").fetchone()
    assert len(rows) == len(live)
    assert {r[0] for r in rows} == {c["id"] for c in live}
    by_id = {c["id"]: c for c in live}
    assert all(
        (r[1], r[2], r[3]) == tuple(by_id[r[0]][k] for k in ("first_name", "email", "status"))
        for r in rows
    )
    assert tags is not None and tags[0] == sum(len(c["tags"]) for c in live)
    requests = [
        e for e in sb.admin.requests() if e["method"] == "GET" and "limit=100" in e["query"]
    ]
    assert len(requests) == 13  # ceil(1224 / 100) pages, no more
