"""A sync with few changes written by SQL (pipelines.source.direct): dlt's outcome, or dlt.

Which path wrote a run is told by dlt itself: each dlt load leaves a completed load package in
the pipeline's working directory, a write by SQL leaves none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import duckdb
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.source import direct
from pipelines.source.runner import SyncSettings, SyncSummary, make_pipeline, run_sync
from pipelines.warehouse import Warehouse
from tests.sync.helpers import (
    JSON_FIELDS,
    TEXT_FIELDS,
    assert_warehouse_matches_server,
    sync_settings,
)
from tests.sync.test_quick import _counts, _rows, _sync_in_a_fresh_process


def _dlt_loads(db: Path) -> int:
    """Load packages dlt has completed for this warehouse."""
    return len(make_pipeline(SyncSettings(duckdb_path=db)).list_completed_load_packages())


def _system_tables(db: Path) -> dict[str, Any]:
    """What dlt keeps beside the data: schema versions, pipeline state, loads."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            "versions": con.execute(
                "SELECT version, version_hash FROM lynkist._dlt_version ORDER BY version"
            ).fetchall(),
            "state": con.execute(
                "SELECT version, version_hash FROM lynkist._dlt_pipeline_state ORDER BY version"
            ).fetchall(),
            "loads": con.execute(
                "SELECT load_id, schema_name, status, schema_version_hash FROM lynkist._dlt_loads "
                "ORDER BY load_id"
            ).fetchall(),
        }


def _pair(sb: SandboxServer, tmp_path: Path, contacts: int = 150) -> tuple[SyncSettings, ...]:
    """Two warehouses of one tenant, both synced once: one may write by SQL, one never does."""
    sb.admin.seed("acme", contacts, seed=41)
    quick = sync_settings(sb, tmp_path / "quick" / "w.duckdb", create_views=True)
    slow = sync_settings(sb, tmp_path / "slow" / "w.duckdb", create_views=True, quick_start=False)
    for settings in (quick, slow):
        Path(settings.duckdb_path).parent.mkdir()
        assert run_sync(settings).new == contacts
    return quick, slow


def _update(sb: SandboxServer, n: int, **fields: Any) -> list[str]:
    live = [c for c in sb.admin.contacts("acme") if c["archived_at"] is None]
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for contact in live[:n]:
            client.update_contact(contact["id"], fields or {"job_title": "Moved", "tags": ["x"]})
    return [c["id"] for c in live[:n]]


def _plant(sb: SandboxServer, **fields: Any) -> None:
    """A contact as the API would send it (every documented field), plus ``fields``."""
    model = sb.admin.contacts("acme")[0]
    writable = {k: model[k] for k in (*TEXT_FIELDS, *JSON_FIELDS)}
    sb.admin.plant([{**writable, "updated_at": None, **fields}])


def _both(quick: SyncSettings, slow: SyncSettings) -> tuple[SyncSummary, SyncSummary]:
    by_quick, by_slow = run_sync(quick), run_sync(slow)
    assert _counts(by_quick) == _counts(by_slow)
    assert by_quick.views == by_slow.views
    assert _rows(Path(quick.duckdb_path)) == _rows(Path(slow.duckdb_path))
    return by_quick, by_slow


def test_few_changes_are_written_by_sql_with_dlts_rows_schema_state_and_load(
    sb: SandboxServer, tmp_path: Path
) -> None:
    quick, slow = _pair(sb, tmp_path)
    db = Path(quick.duckdb_path)
    loads_before, system_before = _dlt_loads(db), _system_tables(db)
    changed = _update(sb, 4)
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        client.create_contact({"first_name": "Brand new", "custom_fields": {"n": 1}})

    by_quick, _ = _both(quick, slow)

    assert (by_quick.updated, by_quick.new, by_quick.rows_written) == (4, 1, 5)
    assert _dlt_loads(db) == loads_before, "the changes went through dlt"
    system = _system_tables(db)
    # the schema and the pipeline state are untouched; one more completed load, on the
    # schema version dlt stored last, whose id the written rows carry
    assert (system["versions"], system["state"]) == (
        system_before["versions"],
        system_before["state"],
    )
    [load] = [row for row in system["loads"] if row not in system_before["loads"]]
    assert load[1:] == ("lynkist", 0, system_before["versions"][-1][1])
    with duckdb.connect(str(db), read_only=True) as con:
        written = dict(con.execute("SELECT id, _dlt_load_id FROM lynkist.contacts").fetchall())
    assert {i for i, load_id in written.items() if load_id == load[0]} >= set(changed)
    assert sum(load_id == load[0] for load_id in written.values()) == 5
    # dlt's own tools read the result, and dlt's next load on top of it is right
    attached = dlt.attach(
        Warehouse(duckdb_path=db).pipeline_name_resolved,
        pipelines_dir=str(Warehouse(duckdb_path=db).working_dir),
    )
    frame = attached.dataset().contacts.df()
    assert frame is not None and len(frame) == 151
    assert sorted(frame["id"]) == sorted(c["id"] for c in sb.admin.contacts("acme"))
    _update(sb, 2, company="Archived next")
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        client.delete_contact(changed[0])  # marking it deleted reads its row back: dlt's path
    _both(quick, slow)
    assert _dlt_loads(db) == loads_before + 1
    assert_warehouse_matches_server(db, sb)


def test_a_sync_with_a_few_changes_never_imports_dlt(sb: SandboxServer, tmp_path: Path) -> None:
    sb.admin.seed("acme", 120, seed=43)
    db = tmp_path / "w.duckdb"
    assert _sync_in_a_fresh_process(sb, db)["new"] == 120
    _update(sb, 3)
    changed = _sync_in_a_fresh_process(sb, db)
    assert (changed["updated"], changed["rows_written"], changed["imported"]) == (3, 3, [])
    assert changed["views"]
    assert_warehouse_matches_server(db, sb)


@pytest.mark.parametrize(
    "case",
    ["new field", "repaired value", "archived", "too many rows", "too many bytes"],
)
def test_whatever_is_unusual_goes_through_dlt(
    sb: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Each case is written by dlt (one more load package) and ends as dlt's path ends."""
    quick, slow = _pair(sb, tmp_path)
    db = Path(quick.duckdb_path)
    loads_before = _dlt_loads(db)
    _update(sb, 3)
    if case == "new field":  # a column the table lacks: dlt adds it
        _plant(sb, **{"Lead Score": "42"})
    elif case == "repaired value":  # stored as null and reported in contacts_rejected by dlt
        _plant(sb, updated_at="yesterday")
    elif case == "archived":
        live = [c for c in sb.admin.contacts("acme") if c["archived_at"] is None]
        with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
            client.delete_contact(live[-1]["id"])
    elif case == "too many rows":
        monkeypatch.setattr(direct, "MAX_ROWS", 2)
    else:
        monkeypatch.setattr(direct, "MAX_BYTES", 100)

    by_quick, _ = _both(quick, slow)

    assert by_quick.rows_written == (3 if case.startswith("too many") else 4)
    assert _dlt_loads(db) == loads_before + 1, "written by SQL"
    if case != "repaired value":  # (stored as null, as the slow path stores it: see _both)
        assert_warehouse_matches_server(db, sb)
