"""The Dagster definitions materialized in process against the sandbox: two tenants, DuckDB and
PostgreSQL; the asset checks pass on a true warehouse and fail on a wrong one; the schedule asks
for every tenant; the push job pushes a warehouse query.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import DagsterInstance, Definitions, build_schedule_context

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.orchestration.assets import build_defs
from pipelines.source.runner import SyncSettings, make_pipeline
from tests.plugins.postgres import postgres_dsn  # noqa: F401
from tests.sync.helpers import assert_warehouse_matches_server

TENANTS = {"acme": 140, "globex": 60}


def _defs(
    sb: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, defaults: str
) -> tuple[Definitions, dict[str, str]]:
    datasets = {name: f"{name}_{uuid.uuid4().hex[:6]}" for name in TENANTS}
    entries = "\n".join(
        f'[[tenants]]\nname = "{name}"\napi_key_env = "{name.upper()}_KEY"\ndataset = "{ds}"\n'
        for name, ds in datasets.items()
    )
    config = tmp_path / "lynkist.toml"
    config.write_text(f'[defaults]\nbase_url = "{sb.base_url}"\n{defaults}\n\n{entries}')
    for name, n in TENANTS.items():
        monkeypatch.setenv(f"{name.upper()}_KEY", sb.keys[name]["rw"])
        sb.admin.seed(name, n, seed=len(name))
    return build_defs(config), datasets


def _sync(defs: Definitions, tenant: str, instance: DagsterInstance) -> dict[str, bool]:
    """Materialize one tenant's partition (its checks run too); check name -> passed."""
    result = defs.resolve_job_def("lynkist_sync").execute_in_process(
        partition_key=tenant, instance=instance
    )
    assert result.success
    materialized = result.asset_materializations_for_node("lynkist_contacts")
    assert len(materialized) == 1
    assert materialized[0].partition == tenant
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _checks(defs: Definitions, tenant: str, instance: DagsterInstance) -> dict[str, bool]:
    job = defs.resolve_implicit_global_asset_job_def()
    checks = [k for k in job.asset_layer.asset_graph.asset_check_keys]
    result = job.get_subset(
        asset_check_selection=set(checks), asset_selection=set()
    ).execute_in_process(partition_key=tenant, instance=instance, raise_on_error=False)
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _pipeline(tmp_path: Path, destination: str, dataset: str) -> Any:
    return make_pipeline(
        SyncSettings(
            duckdb_path=tmp_path / "warehouse.duckdb", destination=destination, dataset=dataset
        )
    )


@pytest.mark.parametrize(
    "destination", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_dagster_assets_checks_schedule_and_push(
    sb: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    destination: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if destination == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", dsn)
        defaults = 'destination = "postgres"'
    else:
        defaults = 'duckdb = "warehouse.duckdb"'
    defs, datasets = _defs(sb, tmp_path, monkeypatch, defaults)
    instance = DagsterInstance.ephemeral()

    # the schedule asks for one run per tenant
    schedule = defs.resolve_schedule_def("lynkist_sync_schedule")
    requests = schedule.evaluate_tick(
        build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime.now(UTC),
            repository_def=defs.get_repository_def(),
        )
    ).run_requests
    assert sorted(r.partition_key for r in requests or []) == sorted(TENANTS)

    for tenant in TENANTS:
        checks = _sync(defs, tenant, instance)
        assert checks == {"contacts_match_api_total": True, "no_live_contact_marked_deleted": True}
        pipeline = _pipeline(tmp_path, destination, datasets[tenant])
        assert_warehouse_matches_server(pipeline, sb, tenant)

    # a contact archived on the server and not synced yet: the count check fails
    live = [c for c in sb.admin.contacts("acme") if not c["archived_at"]]
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        client.delete_contact(live[0]["id"])
    assert _checks(defs, "acme", instance)["contacts_match_api_total"] is False
    assert _checks(defs, "globex", instance)["contacts_match_api_total"] is True
    # the next materialization brings the warehouse back in line
    assert all(_sync(defs, "acme", instance).values())

    if destination == "duckdb":
        # a live contact marked deleted in the warehouse is caught
        with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
            con.execute(
                f"UPDATE {datasets['globex']}.contacts SET is_deleted = TRUE WHERE id = ?",
                [next(c["id"] for c in sb.admin.contacts("globex") if not c["archived_at"])],
            )
            con.execute(
                f"CREATE TABLE {datasets['acme']}.segment AS SELECT 'dagster.new@example.com' "
                "AS email, 'Dag' AS first_name, 'Ster' AS last_name"
            )
        assert _checks(defs, "globex", instance)["no_live_contact_marked_deleted"] is False
        segment = f"{datasets['acme']}.segment"
    else:
        import psycopg2

        with psycopg2.connect(dsn) as con, con.cursor() as cur:
            cur.execute(
                f"CREATE TABLE {datasets['acme']}.segment AS SELECT 'dagster.new@example.com' "
                "AS email, 'Dag' AS first_name, 'Ster' AS last_name"
            )
        segment = f"{datasets['acme']}.segment"

    # the push job: a warehouse query into tenant acme
    result = defs.resolve_job_def("push_from_model").execute_in_process(
        run_config={
            "ops": {
                "push_model": {"config": {"tenant": "acme", "query": f"select * from {segment}"}}
            }
        },
        instance=instance,
    )
    assert result.success
    summary = result.output_for_node("push_model")
    assert (summary["created"], summary["rejected"]) == (1, 0)
    created = [c for c in sb.admin.contacts("acme") if c["email"] == "dagster.new@example.com"]
    assert [(c["first_name"], c["last_name"]) for c in created] == [("Dag", "Ster")]
