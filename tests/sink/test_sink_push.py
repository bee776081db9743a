"""End-to-end pushes against the sandbox over HTTP: exact final state, one outcome per row."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.sink import push_dataframe
from pipelines.sink.results import results_resource, results_table
from pipelines.source.runner import SyncSettings, warehouse_of
from tests.sink.conftest import (
    Scenario,
    assert_server_matches,
    create_contacts,
    hubspot_scenario,
    live_contacts,
    salesforce_scenario,
    write_calls,
)

FAULTS = {"error_5xx": 0.08, "error_429": 0.05, "drop_after_commit": 0.15, "seed": 11}


def _check_results(report_results, scenario: Scenario) -> None:  # type: ignore[no-untyped-def]
    assert list(report_results["row_number"]) == list(range(1, len(scenario.rows) + 1))
    assert Counter(report_results["outcome"]) == scenario.outcomes
    created = report_results[report_results["outcome"] != "rejected"]
    # contact ids are known for every written or matched row, created ones included
    assert created["contact_id"].notna().all()


@pytest.mark.parametrize("faults", [None, FAULTS], ids=["calm", "faults"])
def test_hubspot_export_push(
    sb: SandboxServer, api_key: str, client: LynkistClient, warehouse: Path, faults: dict | None
) -> None:
    scenario = hubspot_scenario()
    create_contacts(client, scenario.stored)
    stored_ids = {c["email"]: c["id"] for c in live_contacts(sb)}
    sb.admin.clear_requests()
    if faults:
        sb.admin.set_faults(**faults)

    report = push_dataframe(
        scenario.frame(), base_url=sb.base_url, api_key=api_key, duckdb_path=warehouse
    )

    sb.admin.set_faults()
    assert_server_matches(sb, scenario)
    _check_results(report.results, scenario)
    assert not report.ok  # rejected rows
    unchanged_ids = {stored_ids[c["email"]] for c in scenario.stored[:10]}
    writes = write_calls(sb)
    assert not [w for w in writes if w["path"].rsplit("/", 1)[-1] in unchanged_ids]
    if not faults:
        # ceil(new / 100) bulk calls + one PATCH per changed row, nothing else
        assert Counter(w["method"] for w in writes) == {"POST": 1, "PATCH": 10}
    else:
        assert any(w["fault"] for w in sb.admin.requests())

    # the run is recorded in the warehouse, one row per input row
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT outcome, count(*) FROM lynkist.push_results WHERE run_id = ? GROUP BY 1",
            [report.run_id],
        ).fetchall()
        # the analysis views show the run right away, without waiting for the next sync
        history = con.execute(
            "SELECT rows FROM lynkist.push_history WHERE run_id = ?", [report.run_id]
        ).fetchall()
    assert dict(rows) == dict(scenario.outcomes)
    assert history == [(sum(scenario.outcomes.values()),)]

    # the same push again changes nothing and writes nothing
    sb.admin.clear_requests()
    again = push_dataframe(
        scenario.frame(), base_url=sb.base_url, api_key=api_key, duckdb_path=warehouse
    )
    assert write_calls(sb) == []
    assert again.summary["write_calls"] == 0
    outcomes = Counter(again.results["outcome"])
    assert outcomes == {"unchanged": 35, "rejected": 6}


@pytest.mark.parametrize("faults", [None, FAULTS], ids=["calm", "faults"])
def test_salesforce_export_push_on_crm_id(
    sb: SandboxServer, api_key: str, client: LynkistClient, warehouse: Path, faults: dict | None
) -> None:
    scenario = salesforce_scenario()
    create_contacts(client, scenario.stored)
    sb.admin.clear_requests()
    if faults:
        sb.admin.set_faults(**faults)

    report = push_dataframe(
        scenario.frame(),
        base_url=sb.base_url,
        api_key=api_key,
        duckdb_path=warehouse,
        match_on="custom_fields.salesforce_id",
        mapping="salesforce",
    )

    sb.admin.set_faults()
    assert_server_matches(sb, scenario)
    _check_results(report.results, scenario)
    reasons = report.results.set_index("row_number")["error"]
    n = len(scenario.rows)
    assert "email" in reasons[n - 3]
    assert "no custom_fields.salesforce_id" in reasons[n - 2]
    assert "2 input rows" in reasons[n - 1]
    if not faults:
        assert Counter(w["method"] for w in write_calls(sb)) == {"POST": 1, "PATCH": 8}


def test_dry_run_writes_nothing(
    sb: SandboxServer, api_key: str, client: LynkistClient, warehouse: Path
) -> None:
    scenario = hubspot_scenario(n_unchanged=3, n_changed=4, n_new=5)
    create_contacts(client, scenario.stored)
    before = sb.admin.contacts("acme")
    sb.admin.clear_requests()

    report = push_dataframe(
        scenario.frame(), base_url=sb.base_url, api_key=api_key, duckdb_path=warehouse, dry_run=True
    )

    assert write_calls(sb) == []
    assert sb.admin.contacts("acme") == before
    assert report.dry_run
    assert report.summary["planned"] == {"create": 5, "update": 4, "unchanged": 3, "reject": 6}
    update = next(r for r in report.plan.rows if r.action == "update")
    assert update.changes["company"] == ("Acme", "Initech")


def test_field_semantics_clear_empty_tags_replace_custom_merge(
    sb: SandboxServer, api_key: str, client: LynkistClient, warehouse: Path
) -> None:
    create_contacts(
        client,
        [
            {
                "first_name": "Ana",
                "email": "ana@acme.test",
                "company": "Acme",
                "job_title": "CEO",
                "tags": ["vip", "eu"],
                "custom_fields": {"plan": "pro", "seats": 5},
            }
        ],
    )
    base = {"first_name": "Ana", "email": "ana@acme.test", "company": "", "job_title": "CEO"}
    kwargs = {"base_url": sb.base_url, "api_key": api_key, "duckdb_path": warehouse}

    # defaults: empty company kept, tags united, custom_fields merged key by key
    first = push_dataframe(
        _frame({**base, "tags": "new", "custom_fields.region": "emea"}), **kwargs
    )
    assert list(first.results["outcome"]) == ["updated"]
    (ana,) = live_contacts(sb)
    assert ana["company"] == "Acme"
    assert ana["tags"] == ["vip", "eu", "new"]
    assert ana["custom_fields"] == {"plan": "pro", "seats": 5, "region": "emea"}

    # replace tags, and let the empty company cell clear the stored value
    push_dataframe(_frame({**base, "tags": "solo"}), tags="replace", clear_empty=True, **kwargs)
    (ana,) = live_contacts(sb)
    assert ana["company"] is None
    assert ana["tags"] == ["solo"]
    assert ana["custom_fields"] == {"plan": "pro", "seats": 5, "region": "emea"}


def _frame(row: dict[str, str]):  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.DataFrame([row])


def test_patch_404_is_the_rows_outcome(
    sb: SandboxServer, api_key: str, client: LynkistClient, warehouse: Path
) -> None:
    create_contacts(
        client,
        [{"first_name": f"P{i}", "email": f"p{i}@acme.test", "company": "Old"} for i in range(3)],
    )
    rows = [{"first_name": f"P{i}", "email": f"p{i}@acme.test", "company": "New"} for i in range(3)]
    kwargs = {"base_url": sb.base_url, "api_key": api_key, "duckdb_path": warehouse}
    push_dataframe(_frame(rows[0]), dry_run=True, **kwargs)  # syncs the mirror
    gone = next(c for c in live_contacts(sb) if c["email"] == "p1@acme.test")
    client.delete_contact(gone["id"])  # archived after the mirror was refreshed

    import pandas as pd

    report = push_dataframe(pd.DataFrame(rows), refresh=False, **kwargs)

    by_row = report.results.set_index("row_number")
    assert list(by_row["outcome"]) == ["updated", "failed", "updated"]
    assert by_row.loc[2, "http_status"] == 404
    assert "archived" in by_row.loc[2, "error"]
    assert {c["company"] for c in live_contacts(sb)} == {"New"}


def test_a_load_a_killed_push_left_pending_does_not_swallow_the_next_runs_results(
    sb: SandboxServer, api_key: str, client: LynkistClient, warehouse: Path
) -> None:
    scenario = hubspot_scenario()
    create_contacts(client, scenario.stored)
    first = push_dataframe(
        scenario.frame(), base_url=sb.base_url, api_key=api_key, duckdb_path=warehouse
    )
    # a push killed while loading its results leaves a normalized package behind
    wh = warehouse_of(SyncSettings(base_url=sb.base_url, api_key=api_key, duckdb_path=warehouse))
    pending = wh.pipeline(wh.push_pipeline_name)
    pending.extract(results_resource(results_table(first.results.assign(run_id="killed-run"))))
    pending.normalize()
    assert pending.list_normalized_load_packages()

    again = push_dataframe(
        scenario.frame(), base_url=sb.base_url, api_key=api_key, duckdb_path=warehouse
    )

    assert not again.warnings, again.warnings
    with duckdb.connect(str(warehouse), read_only=True) as con:
        runs = dict(
            con.execute("SELECT run_id, count(*) FROM lynkist.push_results GROUP BY 1").fetchall()
        )
    # the pending package is loaded, and this run's own rows are not dropped for it
    assert runs[again.run_id] == len(scenario.frame())
    assert runs["killed-run"] == len(scenario.frame())
