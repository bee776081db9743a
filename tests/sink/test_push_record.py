"""A push's record written by SQL (pipelines.sink.record): dlt's outcome, or dlt itself.

Which path recorded a push is told by dlt: each dlt load leaves a completed load package in the
push pipeline's working directory, a record written by SQL leaves none.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pandas as pd
import pyarrow as pa

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.client import LynkistClient
from pipelines.sink import record
from pipelines.sink.execute import RowResult
from pipelines.sink.learned import contacts_table
from pipelines.sink.results import results_frame, results_table
from pipelines.source.runner import run_sync
from pipelines.warehouse import Warehouse
from tests.fresh_process import run_cli
from tests.sink.conftest import create_contacts, live_contacts
from tests.sync.helpers import sync_settings

STORED = [{"first_name": f"S{i}", "email": f"s{i}@acme.test", "tags": ["a"]} for i in range(6)]


def _export(tmp_path: Path, name: str, new: list[str], changed: int = 2) -> Path:
    """The stored contacts (the first ``changed`` with a new job title) plus new emails."""
    rows = [
        {"first_name": c["first_name"], "email": c["email"], "job_title": "Moved" * (i < changed)}
        for i, c in enumerate(STORED)
    ]
    rows += [{"first_name": "New", "email": email} for email in new]
    path = tmp_path / f"{name}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _args(sb: SandboxServer, export: Path, db: Path) -> list[str]:
    return [
        "push",
        str(export),
        "--no-refresh",
        "--mapping",
        "lynkist",
        "--duckdb",
        str(db),
        "--base-url",
        sb.base_url,
        "--json",
    ]


def _push_in_a_fresh_process(sb: SandboxServer, export: Path, db: Path) -> dict[str, Any]:
    """``lynkist push --no-refresh --json`` in its own interpreter; also whether dlt was
    imported by the end of it."""
    summary = run_cli(_args(sb, export, db), api_key=sb.keys["acme"]["rw"])
    summary["dlt_imported"] = "dlt" in summary["imported"]
    return summary


def _synced(sb: SandboxServer, tmp_path: Path) -> Warehouse:
    """A warehouse synced once, never pushed to."""
    with_key = sync_settings(sb, tmp_path / "wh" / "lynkist_warehouse.duckdb")
    Path(with_key.duckdb_path).parent.mkdir()
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        create_contacts(client, STORED)
    run_sync(with_key)
    return Warehouse(duckdb_path=with_key.duckdb_path)


def _set_up(sb: SandboxServer, tmp_path: Path) -> Warehouse:
    """A synced warehouse whose first push (through dlt: it creates push_results) is done."""
    warehouse = _synced(sb, tmp_path)
    export = _export(tmp_path, "first", ["first@acme.test"])
    key = ["--api-key", sb.keys["acme"]["rw"]]
    assert main([*_args(sb, export, warehouse.duckdb_file), *key]) == 0
    assert _dlt_loads(warehouse) == 1  # the first push goes through dlt
    return warehouse


def _dlt_loads(warehouse: Warehouse) -> int:
    """Load packages dlt has completed for the push pipeline."""
    pipeline = warehouse.pipeline(warehouse.push_pipeline_name)
    return len(pipeline.list_completed_load_packages())


def _query(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse.duckdb_file), read_only=True) as con:
        return con.execute(sql).fetchall()


def _table(warehouse: Warehouse, name: str, order: str) -> tuple[list[Any], list[Any]]:
    """Column names and types, and the rows without their load id."""
    with duckdb.connect(str(warehouse.duckdb_file), read_only=True) as con:
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'lynkist' AND table_name = ? ORDER BY ordinal_position",
            [name],
        ).fetchall()
        rows = con.execute(
            f"SELECT * EXCLUDE (_dlt_load_id) FROM lynkist.{name} ORDER BY {order}"
        ).fetchall()
    return columns, rows


def test_a_push_on_a_set_up_warehouse_records_by_sql_without_importing_dlt(
    sb: SandboxServer, tmp_path: Path
) -> None:
    warehouse = _set_up(sb, tmp_path)
    loads_before = _query(warehouse, "SELECT load_id FROM lynkist._dlt_loads")

    export = _export(tmp_path, "second", ["second@acme.test", "third@acme.test"], changed=3)
    summary = _push_in_a_fresh_process(sb, export, warehouse.duckdb_file)

    assert summary["exit"] == 0
    assert summary["dlt_imported"] is False
    # s0 and s1 were moved by the first push, which merged the PATCH answers into the mirror
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (2, 1, 5)
    assert summary["mirror_merged"] == 3
    assert _dlt_loads(warehouse) == 1  # no dlt load for this push
    # one new load, recorded as the push pipeline's (the mirror's age is unchanged by it)
    new_loads = _query(
        warehouse,
        "SELECT load_id, schema_name, status FROM lynkist._dlt_loads WHERE load_id NOT IN "
        f"({', '.join(repr(load_id) for (load_id,) in loads_before)})",
    )
    assert [(s, st) for _, s, st in new_loads] == [(warehouse.push_pipeline_name, 0)]
    load_id = new_loads[0][0]
    results = _query(
        warehouse,
        "SELECT match_key, outcome, contact_id FROM lynkist.push_results "
        f"WHERE _dlt_load_id = '{load_id}' ORDER BY row_number",
    )
    assert len(results) == len(STORED) + 2
    by_email = {c["email"]: c for c in live_contacts(sb)}
    assert all(contact_id == by_email[key]["id"] for key, _, contact_id in results)
    # the learned contacts are in the mirror, as the API has them
    mirrored = dict(
        _query(
            warehouse,
            "SELECT email, job_title FROM lynkist.contacts WHERE _dlt_load_id = "
            f"'{load_id}' ORDER BY email",
        )
    )
    assert mirrored == {
        email: by_email[email]["job_title"]
        for email in ("s2@acme.test", "second@acme.test", "third@acme.test")
    }
    # dlt's own read API sees the rows written by SQL
    attached = dlt.attach(
        warehouse.push_pipeline_name, pipelines_dir=str(warehouse.working_dir)
    ).dataset()
    frame = attached["push_results"].df()
    assert set(frame.loc[frame["_dlt_load_id"] == load_id, "outcome"]) == {
        "created",
        "updated",
        "unchanged",
    }


def test_the_first_push_records_through_dlt_imported_during_its_writes(
    sb: SandboxServer, tmp_path: Path
) -> None:
    """dlt creates push_results; its import runs on a thread while the writes wait."""
    warehouse = _synced(sb, tmp_path)
    export = _export(tmp_path, "first", ["first@acme.test"])

    summary = _push_in_a_fresh_process(sb, export, warehouse.duckdb_file)

    assert (summary["exit"], summary["dlt_imported"]) == (0, True)
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (1, 2, 4)
    assert _dlt_loads(warehouse) == 1
    rows = _query(
        warehouse,
        f"SELECT count(*) FROM lynkist.push_results WHERE run_id = '{summary['run_id']}'",
    )
    assert rows == [(len(STORED) + 1,)]
    assert _query(
        warehouse, "SELECT count(*) FROM lynkist.contacts WHERE email = 'first@acme.test'"
    ) == [(1,)]


def _learned(sb: SandboxServer) -> list[dict[str, Any]]:
    """Contacts as the API returns them, one with tags and custom fields changed."""
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        contacts = [client.get_contact(c["id"]) for c in live_contacts(sb)[:3]]
    contacts[0] = {**contacts[0], "tags": ["x", "y"], "custom_fields": {"plan": "pro", "n": 3}}
    contacts[1] = {**contacts[1], "job_title": None, "phone": "+14155550100"}
    return contacts


def _results() -> pd.DataFrame:
    rows = [
        RowResult(1, "s0@acme.test", "update", "updated", 200, None, "c1"),
        RowResult(2, None, "reject", "rejected", None, "no email", None),
        RowResult(3, "n@acme.test", "create", "failed", 503, "unavailable", None),
    ]
    return results_frame("push-test", rows, source="export.csv")


def test_sql_and_dlt_record_the_same_rows(sb: SandboxServer, tmp_path: Path) -> None:
    by_sql = _set_up(sb, tmp_path)
    shutil.copytree(by_sql.duckdb_file.parent, tmp_path / "copy")
    by_dlt = Warehouse(duckdb_path=tmp_path / "copy" / by_sql.duckdb_file.name)
    learned = _learned(sb)
    mirror = contacts_table(learned)
    results = results_table(_results(), {"mapping": "lynkist", "match_on": "email"})

    assert record.write(by_sql, mirror, results) is True
    record.load(by_dlt, mirror, results)

    assert _dlt_loads(by_sql) == 1
    assert _dlt_loads(by_dlt) == 2
    for name, order in (("contacts", "id"), ("push_results", "run_id, row_number")):
        assert _table(by_sql, name, order) == _table(by_dlt, name, order), name
    loads = "SELECT schema_name, status FROM lynkist._dlt_loads ORDER BY load_id"
    assert _query(by_sql, loads) == _query(by_dlt, loads)
    changed = f"SELECT tags, phone FROM lynkist.contacts WHERE id = '{learned[0]['id']}'"
    assert json.loads(_query(by_sql, changed)[0][0]) == ["x", "y"]  # the merge took effect
    assert _query(by_sql, "SELECT count(*) FROM lynkist.push_results WHERE run_id = 'push-test'")[
        0
    ] == (3,)


def test_a_column_dlt_has_not_created_goes_through_dlt(sb: SandboxServer, tmp_path: Path) -> None:
    """A new API field in a learned contact: nothing written by SQL; dlt adds the column."""
    warehouse = _set_up(sb, tmp_path)
    contact = {**_learned(sb)[0], "favorite_color": "teal"}
    mirror = contacts_table([contact])
    results = results_table(_results())
    before = [_table(warehouse, n, o) for n, o in (("contacts", "id"), ("push_results", "run_id"))]
    loads = _query(warehouse, "SELECT count(*) FROM lynkist._dlt_loads")

    assert record.write(warehouse, mirror, results) is False

    after = [_table(warehouse, n, o) for n, o in (("contacts", "id"), ("push_results", "run_id"))]
    assert after == before  # the transaction was rolled back: push_results has no new row
    assert _query(warehouse, "SELECT count(*) FROM lynkist._dlt_loads") == loads
    record.load(warehouse, mirror, results)
    assert _query(
        warehouse, f"SELECT favorite_color FROM lynkist.contacts WHERE id = '{contact['id']}'"
    ) == [("teal",)]


def test_write_without_rows_writes_nothing(sb: SandboxServer, tmp_path: Path) -> None:
    warehouse = _set_up(sb, tmp_path)
    loads = _query(warehouse, "SELECT count(*) FROM lynkist._dlt_loads")
    empty = pa.table({"id": pa.array([], pa.string())})
    assert record.write(warehouse, empty, None) is True
    assert _query(warehouse, "SELECT count(*) FROM lynkist._dlt_loads") == loads
