"""Issue 10 §2: a load package that keeps failing never blocks the warehouse.

Before: a package that failed to load (e.g. DuckDB out of memory on a 50 MB value) was
resumed first by every later run, so every run failed — ``--full-refresh`` and new syncs of
the tenant too — with ~21 dlt tracebacks on stderr.

The stuck package is built here with dlt's own API in the warehouse's pipeline: a contacts
row whose ``custom_fields`` is not JSON, which DuckDB refuses at every load (the source itself
can no longer produce a package that fails).
"""

from __future__ import annotations

import json
from pathlib import Path

import dlt
import pyarrow as pa
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.source.arrow import contacts_table
from pipelines.source.runner import SyncSettings, make_pipeline, run_sync
from pipelines.source.settings import COLUMN_HINTS
from pipelines.warehouse import MAX_RESUMES, PendingLoadError
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings


def _leave_a_poisoned_package(settings: SyncSettings) -> str:
    pipeline = make_pipeline(settings)
    table = contacts_table([{"id": "poison", "first_name": "P", "created_at": "2026-01-01T00:00Z"}])
    index = table.schema.get_field_index("custom_fields")
    table = table.set_column(index, "custom_fields", pa.array(["{not json"], pa.string()))
    resource = dlt.resource(
        [table],
        name="contacts",
        columns=COLUMN_HINTS,
        primary_key="id",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    )
    pipeline.extract(resource)
    pipeline.normalize()
    [load_id] = pipeline.list_normalized_load_packages()
    return str(load_id)


@pytest.fixture
def stuck(sb: SandboxServer, tmp_path: Path) -> tuple[SyncSettings, str]:
    sb.admin.seed("acme", 30, seed=41)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    sb.admin.seed("acme", 5, seed=42)  # changes the next sync must load
    return settings, _leave_a_poisoned_package(settings)


def test_a_failing_package_is_set_aside_after_bounded_resumes(
    sb: SandboxServer, stuck: tuple[SyncSettings, str]
) -> None:
    settings, load_id = stuck
    for attempt in range(1, MAX_RESUMES):
        with pytest.raises(PendingLoadError, match=rf"attempt {attempt} of {MAX_RESUMES}"):
            run_sync(settings)
    summary = run_sync(settings)  # the last allowed failure: set aside, and the run goes on
    assert summary.new == 5
    [message] = summary.set_aside_packages
    assert load_id in message and "set aside" in message
    assert any(load_id in w for w in summary.warnings)
    assert make_pipeline(settings).list_normalized_load_packages() == []
    assert_warehouse_matches_server(settings.duckdb_path, sb)
    assert run_sync(settings).set_aside_packages == []


def test_full_refresh_always_starts_clean(
    sb: SandboxServer, stuck: tuple[SyncSettings, str]
) -> None:
    settings, load_id = stuck
    settings.full_refresh = True
    summary = run_sync(settings)
    assert summary.new == 35 and load_id in summary.set_aside_packages[0]
    assert_warehouse_matches_server(settings.duckdb_path, sb)


def test_no_dlt_traceback_reaches_stderr(
    sb: SandboxServer,
    stuck: tuple[SyncSettings, str],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings, _ = stuck
    monkeypatch.setenv("LYNKIST_API_KEY", settings.api_key)
    monkeypatch.setenv("LYNKIST_BASE_URL", sb.base_url)
    argv = ["sync", "--duckdb", str(settings.duckdb_path), "--json"]
    assert main(argv) == 1
    err = capfd.readouterr().err
    assert "Traceback" not in err and "attempt 1 of" in err
    assert main(argv) == 0
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err
    assert json.loads(captured.out)["new"] == 5
    assert "lynkist sync: warning: set aside load package" in captured.err
