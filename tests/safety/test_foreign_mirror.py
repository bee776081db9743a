"""Issue 10 §3: a warehouse never takes another tenant's deletes.

Before: with tenant globex's key on acme's warehouse, every acme contact "confirmed" archived
(404 is what another tenant's key gets) and was marked ``is_deleted``; exit 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.client import LynkistClient
from pipelines.source.runner import SyncRefusedError, run_sync
from tests.sync.helpers import sync_settings, warehouse_frame

WRITES = ("POST", "PATCH", "DELETE")


def _frame(db: Path) -> pd.DataFrame:
    return warehouse_frame(db).sort_values("id").reset_index(drop=True)


def _writes(sb: SandboxServer) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"])
        for r in sb.admin.requests()
        if r["method"] in WRITES and not r["path"].endswith("/search")
    ]


@pytest.fixture
def acme_warehouse(sb: SandboxServer, tmp_path: Path) -> Path:
    sb.admin.seed("acme", 60, seed=31)
    sb.admin.seed("globex", 25, seed=32)
    db = tmp_path / "acme.duckdb"
    assert run_sync(sync_settings(sb, db)).new == 60
    return db


def test_sync_and_push_with_another_tenants_key_stop_with_exit_2(
    sb: SandboxServer,
    acme_warehouse: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _frame(acme_warehouse)
    monkeypatch.setenv("LYNKIST_BASE_URL", sb.base_url)
    monkeypatch.setenv("LYNKIST_API_KEY", sb.keys["globex"]["rw"])
    sb.admin.clear_requests()

    assert main(["sync", "--duckdb", str(acme_warehouse)]) == 2
    err = capsys.readouterr().err
    [line] = err.strip().splitlines()
    assert "mirrors another tenant" in line and "--full-refresh" in line
    assert sb.keys["globex"]["rw"] not in err
    # refused on page 1 (no id the mirror knows), after a few GETs of the mirror's ids
    listings = [r for r in sb.admin.requests() if r["path"].endswith("/contacts")]
    assert len(listings) == 1 and len(sb.admin.requests()) == 11

    export = tmp_path / "export.csv"
    export.write_text("first_name,email\nNew,new@globex.test\n", encoding="utf-8")
    assert main(["push", str(export), "--mapping", "lynkist", "--duckdb", str(acme_warehouse)]) == 2
    assert "mirrors another tenant" in capsys.readouterr().err
    no_refresh = ["push", str(export), "--mapping", "lynkist", "--no-refresh"]
    assert main([*no_refresh, "--duckdb", str(acme_warehouse)]) == 2
    assert "mirrors another tenant" in capsys.readouterr().err
    assert _writes(sb) == []  # no write call

    after = _frame(acme_warehouse)
    pd.testing.assert_frame_equal(before, after)  # acme's rows untouched
    assert not after["is_deleted"].any()

    # the user's ways out: another file, or --full-refresh to replace the mirror
    other = str(tmp_path / "globex.duckdb")
    assert main(["sync", "--duckdb", other, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 25
    assert main(["sync", "--duckdb", str(acme_warehouse), "--full-refresh", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 25
    assert len(_frame(acme_warehouse)) == 25


def test_the_right_tenant_is_recognised_after_archives(
    sb: SandboxServer, acme_warehouse: Path
) -> None:
    """Most of the sampled contacts archived: one visible contact is enough to recognise it."""
    live = [c["id"] for c in sb.admin.contacts("acme")]
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for contact_id in live[:25]:
            client.delete_contact(contact_id)
    summary = run_sync(sync_settings(sb, acme_warehouse))
    assert summary.deleted == 25


def test_a_run_deleting_most_of_the_mirror_is_refused_until_the_user_raises_the_share(
    sb: SandboxServer,
    acme_warehouse: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _frame(acme_warehouse)
    live = [c["id"] for c in sb.admin.contacts("acme")]
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for contact_id in live[:40]:  # 40 of 60: 67 %
            client.delete_contact(contact_id)
        client.create_contact({"first_name": "Brand new"})

    with pytest.raises(SyncRefusedError, match=r"mark 40 of 60 live contacts deleted \(67%\)"):
        run_sync(sync_settings(sb, acme_warehouse))
    # nothing changed: not the deletions, not the new contact the scan had already seen
    pd.testing.assert_frame_equal(before, _frame(acme_warehouse))

    monkeypatch.setenv("LYNKIST_BASE_URL", sb.base_url)
    monkeypatch.setenv("LYNKIST_API_KEY", sb.keys["acme"]["rw"])
    assert main(["sync", "--duckdb", str(acme_warehouse)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "--max-delete-share 50%" in line
    pd.testing.assert_frame_equal(before, _frame(acme_warehouse))

    assert main(["sync", "--duckdb", str(acme_warehouse), "--max-delete-share", "70%"]) == 0
    after = _frame(acme_warehouse)
    assert int(after["is_deleted"].sum()) == 40 and len(after) == 61


@pytest.mark.parametrize("value", ["150%", "-0.1", "half"])
def test_a_bad_share_is_a_one_line_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--max-delete-share", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-delete-share" in err[0], err
