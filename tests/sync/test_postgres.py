"""``--destination postgres``: the same rows and the same deletes as DuckDB, on a real server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.client import LynkistClient
from pipelines.source.runner import SyncSettings, make_pipeline, run_sync
from tests.plugins.postgres import postgres_dsn  # noqa: F401
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings, warehouse_frame
from transforms.contact import CONTACT_FIELDS

COMPARED = (*CONTACT_FIELDS, "is_deleted")


def _canonical(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows as comparable tuples: JSON parsed, timestamps as UTC ISO strings, NaN -> None."""

    def cell(name: str, value: Any) -> Any:
        if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
            return None
        if name in ("tags", "custom_fields"):
            parsed = json.loads(value) if isinstance(value, str) else value
            return json.dumps(parsed, sort_keys=True)
        if name in ("created_at", "updated_at"):
            return pd.Timestamp(value).tz_convert("UTC").isoformat()
        return bool(value) if name == "is_deleted" else value

    records = frame[list(COMPARED)].to_dict("records")
    return sorted(tuple(cell(n, r[n]) for n in COMPARED) for r in records)


def _change(sb: SandboxServer) -> None:
    live = [c for c in sb.admin.contacts("acme") if c["archived_at"] is None]
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for contact in live[:8]:
            client.update_contact(contact["id"], {"custom_fields": {"tier": "gold"}, "phone": None})
        for contact in live[8:12]:
            client.delete_contact(contact["id"])
        client.create_contact({"first_name": "Zoë", "tags": ["ünïcode", "new"]})


@pytest.mark.postgres
def test_postgres_matches_the_server_and_duckdb(
    sb: SandboxServer,
    tmp_path: Path,
    postgres_dsn: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_dsn)
    monkeypatch.chdir(tmp_path)  # the postgres pipeline's working dir: ./.lynkist/pipelines
    sb.admin.seed("acme", 260, seed=41)
    dataset = f"lynkist_{uuid.uuid4().hex[:8]}"
    pg: SyncSettings = sync_settings(sb, tmp_path / "unused.duckdb")
    pg.destination, pg.dataset = "postgres", dataset
    duck = sync_settings(sb, tmp_path / "w.duckdb")

    assert run_sync(pg).new == run_sync(duck).new == 260
    _change(sb)
    pg_summary, duck_summary = run_sync(pg), run_sync(duck)
    assert (pg_summary.new, pg_summary.updated, pg_summary.deleted) == (1, 8, 4)
    assert (duck_summary.new, duck_summary.updated, duck_summary.deleted) == (1, 8, 4)

    pg_frame = assert_warehouse_matches_server(make_pipeline(pg), sb)
    duck_frame = assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert _canonical(pg_frame) == _canonical(duck_frame)
    assert set(pg_frame.loc[pg_frame["is_deleted"], "id"]) == set(
        duck_frame.loc[duck_frame["is_deleted"], "id"]
    )
    assert pg_frame["deleted_at"].notna().sum() == 4

    # the command line, same warehouse: nothing left to do
    code = main(
        ["sync", "--base-url", sb.base_url, "--api-key", sb.keys["acme"]["ro"],
         "--destination", "postgres", "--dataset", dataset, "--json"]
    )  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["rows_written"] == 0
    assert len(warehouse_frame(make_pipeline(pg))) == 261
