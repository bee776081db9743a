"""``push --no-refresh`` plans against the warehouse as it is: never against no mirror at all.

Without a mirror every row would plan as a create and contacts that already exist would be
created again; a stale mirror is used, with a warning naming its age.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.client import LynkistClient
from pipelines.source.runner import run_sync
from tests.sink.conftest import assert_no_duplicates, create_contacts, live_contacts, write_calls
from tests.sync.helpers import sync_settings

STORED = [{"first_name": f"S{i}", "email": f"s{i}@acme.test"} for i in range(5)]


def _export(tmp_path: Path, new: int = 1) -> Path:
    path = tmp_path / "export.csv"
    added = [{"first_name": f"New{i}", "email": f"new{i}@acme.test"} for i in range(new)]
    pd.DataFrame([*STORED, *added]).to_csv(path, index=False)
    return path


def _push(sb: SandboxServer, api_key: str, export: Path, db: Path) -> int:
    return main(
        [
            "push",
            str(export),
            "--no-refresh",
            "--mapping",
            "lynkist",
            "--duckdb",
            str(db),
            "--base-url",
            sb.base_url,
            "--api-key",
            api_key,
        ]
    )


@pytest.mark.parametrize("warehouse", ["missing", "empty file"])
def test_no_refresh_without_a_mirror_stops_before_any_write(
    sb: SandboxServer,
    api_key: str,
    client: LynkistClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    warehouse: str,
) -> None:
    create_contacts(client, STORED)
    db = tmp_path / "never_synced.duckdb"
    if warehouse == "empty file":
        duckdb.connect(str(db)).close()
    sb.admin.clear_requests()

    assert _push(sb, api_key, _export(tmp_path), db) == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"no mirror of this tenant in {db.resolve()}" in err[0]
    assert "run `lynkist sync` first or drop --no-refresh" in err[0]
    assert write_calls(sb) == []
    assert len(live_contacts(sb)) == len(STORED)


def test_no_refresh_on_a_stale_mirror_warns_with_its_age(
    sb: SandboxServer,
    api_key: str,
    client: LynkistClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_contacts(client, STORED)
    db = tmp_path / "w.duckdb"
    run_sync(sync_settings(sb, db))
    export = _export(tmp_path)

    assert _push(sb, api_key, export, db) == 0  # fresh: no warning
    assert "warning" not in capsys.readouterr().err

    with duckdb.connect(str(db)) as con:  # the last sync ran three days ago
        con.execute("UPDATE lynkist._dlt_loads SET inserted_at = inserted_at - INTERVAL 3 DAY")
    # (the stored rows only: a row created by an unrefreshed push is not in the mirror yet)
    stored_only = tmp_path / "stored.csv"
    pd.DataFrame(STORED).to_csv(stored_only, index=False)
    assert _push(sb, api_key, stored_only, db) == 0
    err = capsys.readouterr().err
    assert "warning: the mirror was last synced 3 days ago" in err
    assert len(live_contacts(sb)) == len(STORED) + 1


def test_two_no_refresh_pushes_do_not_create_the_new_rows_twice(
    sb: SandboxServer, api_key: str, client: LynkistClient, tmp_path: Path
) -> None:
    """The contacts a push learned (created ids, PATCH answers) reach the mirror, so a second
    unrefreshed push of the same rows plans them as unchanged."""
    create_contacts(client, STORED[:3])
    db = tmp_path / "w.duckdb"
    run_sync(sync_settings(sb, db))
    path = tmp_path / "export.csv"
    rows = [
        {"first_name": "S0", "email": "s0@acme.test", "company": "Changed"},  # an update
        *STORED[1:3],  # unchanged
        *STORED[3:],  # new
        {"first_name": "New", "email": "new@acme.test"},  # new
    ]
    pd.DataFrame(rows).to_csv(path, index=False)

    assert _push(sb, api_key, path, db) == 0
    assert len(live_contacts(sb)) == len(STORED) + 1
    sb.admin.clear_requests()

    assert _push(sb, api_key, path, db) == 0

    assert write_calls(sb) == [], "the second push wrote again"
    contacts = live_contacts(sb)
    assert len(contacts) == len(STORED) + 1
    assert_no_duplicates(contacts)


def test_the_contacts_a_push_merges_do_not_make_a_stale_mirror_look_synced(
    sb: SandboxServer,
    api_key: str,
    client: LynkistClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_contacts(client, STORED)
    db = tmp_path / "w.duckdb"
    run_sync(sync_settings(sb, db))
    with duckdb.connect(str(db)) as con:  # the last sync ran three days ago
        con.execute("UPDATE lynkist._dlt_loads SET inserted_at = inserted_at - INTERVAL 3 DAY")
    export = _export(tmp_path)

    assert _push(sb, api_key, export, db) == 0  # creates "new" and merges it into the mirror
    assert "warning: the mirror was last synced 3 days ago" in capsys.readouterr().err
    assert _push(sb, api_key, export, db) == 0

    assert "warning: the mirror was last synced 3 days ago" in capsys.readouterr().err
    assert len(live_contacts(sb)) == len(STORED) + 1


def test_rows_of_a_lost_bulk_answer_reach_the_mirror_too(
    sb: SandboxServer, api_key: str, client: LynkistClient, tmp_path: Path
) -> None:
    """A created row learned by reconciling a lost bulk answer is merged like any other."""
    create_contacts(client, STORED)
    db = tmp_path / "w.duckdb"
    run_sync(sync_settings(sb, db))
    # 3 new rows into 5 contacts: 1 bulk call + a 1-page scan beat 3 single creates
    export = _export(tmp_path, new=3)
    sb.admin.set_settings(idempotent_bulk=False)
    sb.admin.set_faults(drop_after_commit=1.0)  # the bulk call commits, its answer is lost

    assert _push(sb, api_key, export, db) == 0
    sb.admin.set_faults()
    sb.admin.clear_requests()
    assert _push(sb, api_key, export, db) == 0

    assert write_calls(sb) == [], "the second push wrote again"
    contacts = live_contacts(sb)
    assert len(contacts) == len(STORED) + 3
    assert_no_duplicates(contacts)


def test_rows_of_lost_single_create_answers_reach_the_mirror_too(
    sb: SandboxServer, api_key: str, client: LynkistClient, tmp_path: Path
) -> None:
    """A single create whose answer was lost is resent with its key: one contact, in the
    mirror, so the next --no-refresh push writes nothing."""
    create_contacts(client, STORED)
    db = tmp_path / "w.duckdb"
    run_sync(sync_settings(sb, db))
    export = _export(tmp_path, new=2)  # 2 singles beat 1 bulk call + a 1-page scan
    sb.admin.set_faults(drop_after_commit=0.5, seed=3)

    assert _push(sb, api_key, export, db) == 0
    lost = [r for r in sb.admin.requests() if r["fault"] == "drop_after_commit"]
    assert lost, "no answer was lost: the test proves nothing"
    sb.admin.set_faults()
    sb.admin.clear_requests()
    assert _push(sb, api_key, export, db) == 0

    assert write_calls(sb) == [], "the second push wrote again"
    contacts = live_contacts(sb)
    assert len(contacts) == len(STORED) + 2
    assert_no_duplicates(contacts)
