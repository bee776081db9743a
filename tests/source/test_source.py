"""The dlt source on its own (no runner): column types, dlt config, fields the API adds later."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dlt
import httpx
import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.source import lynkist_source


def _pipeline(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name="source_test",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
        dataset_name="crm",
    )


def _frame(pipeline: dlt.Pipeline) -> pd.DataFrame:
    frame = pipeline.dataset()["contacts"].df()
    assert frame is not None
    return frame


def _column_types(pipeline: dlt.Pipeline) -> dict[str, str]:
    with pipeline.sql_client() as client:
        rows = client.execute_sql(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'contacts'",
            pipeline.dataset_name,
        )
    return {name: dtype for name, dtype in rows or []}


def test_source_in_a_plain_pipeline_with_dlt_config(
    sb: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """base_url / api_key come from dlt config; types are declared, tags a JSON list."""
    sb.admin.seed("acme", 120, seed=11)
    monkeypatch.setenv("SOURCES__LYNKIST__BASE_URL", sb.base_url)
    monkeypatch.setenv("SOURCES__LYNKIST__API_KEY", sb.keys["acme"]["ro"])
    pipeline = _pipeline(tmp_path)

    pipeline.run(lynkist_source())
    types = _column_types(pipeline)
    assert types["tags"] == types["custom_fields"] == "JSON"
    assert types["created_at"] == types["updated_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["deleted_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["is_deleted"] == "BOOLEAN"
    frame = _frame(pipeline)
    assert len(frame) == 120
    truth = {c["id"]: c for c in sb.admin.contacts("acme")}
    for row in frame.to_dict("records"):
        assert json.loads(row["tags"]) == truth[row["id"]]["tags"]

    # run again: nothing changed, nothing extracted
    pipeline.run(lynkist_source())
    info = pipeline.last_trace.last_normalize_info if pipeline.last_trace else None
    assert info is not None and info.row_counts.get("contacts", 0) == 0


class _AddsFields(BaseHTTPRequestHandler):
    """Forwards GETs to the sandbox and adds fields the API might introduce one day."""

    upstream = ""

    def do_GET(self) -> None:
        response = httpx.get(
            self.upstream + self.path,
            headers={"Authorization": self.headers.get("Authorization", "")},
        )
        body = response.content
        if response.status_code == 200 and "application/json" in response.headers.get(
            "content-type", ""
        ):
            payload = response.json()
            contacts = payload.get("data", [payload])
            for i, contact in enumerate(contacts):
                contact["loyalty_tier"] = "gold" if i % 2 else None
                contact["scores"] = {"nps": i}
            body = json.dumps(payload).encode()
        self.send_response(response.status_code)
        self.send_header("Content-Type", response.headers.get("content-type", "text/plain"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def evolving_api(sb: SandboxServer) -> Iterator[str]:
    """Base URL of a real HTTP proxy in front of the sandbox that adds two new fields."""
    handler = type("Handler", (_AddsFields,), {"upstream": sb.base_url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fields_the_api_adds_later_are_loaded(
    sb: SandboxServer, tmp_path: Path, evolving_api: str
) -> None:
    """New fields become columns (text; JSON text for objects) on an existing table."""
    sb.admin.seed("acme", 30, seed=12)
    key = sb.keys["acme"]["rw"]
    pipeline = _pipeline(tmp_path)
    pipeline.run(lynkist_source(sb.base_url, key))  # today's API
    assert "loyalty_tier" not in _column_types(pipeline)

    # the API starts sending new fields: fingerprints are unchanged, so update one contact
    victim = sb.admin.contacts("acme")[0]["id"]
    with httpx.Client() as http:
        http.patch(
            f"{sb.base_url}/api/v1/public/contacts/{victim}",
            headers={"Authorization": f"Bearer {key}"},
            json={"status": "customer"},
        ).raise_for_status()
    pipeline.run(lynkist_source(evolving_api, key))

    types = _column_types(pipeline)
    assert types["loyalty_tier"] == "VARCHAR" and types["scores"] == "VARCHAR"
    frame = _frame(pipeline)
    row = frame[frame["id"] == victim].iloc[0]
    assert row["status"] == "customer"
    assert json.loads(row["scores"]) == {"nps": 0}
    assert frame["id"].is_unique and len(frame) == 30
