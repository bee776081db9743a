"""run_sync: faults, exhausted retries, locking, secrets, full refresh, views, warehouses apart."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import AuthenticationError, LynkistClient, RetryPolicy, ServerError
from pipelines.source.runner import (
    SyncConfigError,
    SyncSettings,
    make_pipeline,
    run_sync,
    warehouse_of,
)
from pipelines.warehouse import WarehouseConfigError, WarehouseLockedError, warehouse_lock
from tests.sync.helpers import assert_warehouse_matches_server, sync_settings, warehouse_frame


def _change_things(sb: SandboxServer, *, updates: int, archives: int, creates: int) -> None:
    live = [c for c in sb.admin.contacts("acme") if c["archived_at"] is None]
    with LynkistClient(sb.base_url, sb.keys["acme"]["rw"]) as client:
        for i, contact in enumerate(live[:updates]):
            client.update_contact(contact["id"], {"status": f"changed-{i}", "tags": ["x"]})
        for contact in live[updates : updates + archives]:
            client.delete_contact(contact["id"])
        for i in range(creates):
            client.create_contact({"first_name": f"New {i}", "custom_fields": {"n": i}})


@pytest.mark.parametrize(("fault_seed", "retry_after"), [(7, "mixed"), (21, "none")])
def test_warehouse_equals_server_under_faults(
    sb: SandboxServer, tmp_path: Path, fault_seed: int, retry_after: str
) -> None:
    """5xx, 429 and dropped connections on the API: the warehouse still ends up exact."""
    sb.admin.seed("acme", 300, seed=fault_seed)
    sb.admin.set_settings(retry_after=retry_after)
    faults = {"error_5xx": 0.1, "error_429": 0.1, "drop": 0.03, "seed": fault_seed}
    sb.admin.set_faults(**faults)
    settings = sync_settings(sb, tmp_path / "w.duckdb")

    first = run_sync(settings)
    assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    sb.admin.set_faults()
    _change_things(sb, updates=12, archives=6, creates=4)
    sb.admin.set_faults(**{**faults, "seed": fault_seed + 1})

    second = run_sync(settings)
    assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
    assert (second.new, second.updated, second.deleted) == (4, 12, 6)
    injected = {r["fault"] for r in sb.admin.requests() if r["fault"]}
    assert {"5xx", "429", "drop"} <= injected
    assert first.retries + second.retries > 0


def test_exhausted_retries_fail_cleanly_and_the_next_run_finishes(
    sb: SandboxServer, tmp_path: Path
) -> None:
    """The API keeps failing: a clear error, the warehouse untouched, the next run completes."""
    sb.admin.seed("acme", 150, seed=13)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    before = warehouse_frame(tmp_path / "w.duckdb")
    _change_things(sb, updates=5, archives=2, creates=1)

    sb.admin.set_faults(error_5xx=1.0)
    failing = sync_settings(
        sb, tmp_path / "w.duckdb", retry=RetryPolicy(max_attempts=3, initial_backoff=0.01)
    )
    with pytest.raises(ServerError) as excinfo:
        run_sync(failing)
    assert "GET" in str(excinfo.value) and sb.keys["acme"]["rw"] not in str(excinfo.value)
    assert warehouse_frame(tmp_path / "w.duckdb").equals(before)

    sb.admin.set_faults()
    summary = run_sync(settings)
    assert (summary.new, summary.updated, summary.deleted) == (1, 5, 2)
    assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)


def test_second_sync_on_the_same_warehouse_fails_at_once(sb: SandboxServer, tmp_path: Path) -> None:
    """While one sync holds the lock, another fails immediately and touches nothing."""
    sb.admin.seed("acme", 20, seed=14)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    taken, release = threading.Event(), threading.Event()

    def other_sync() -> None:  # another thread: the lock is reentrant only in its holder's
        with warehouse_lock(warehouse_of(settings), command="sync"):
            taken.set()
            release.wait(60)

    holder = threading.Thread(target=other_sync)
    holder.start()
    try:
        assert taken.wait(60)
        started = time.monotonic()
        with pytest.raises(
            WarehouseLockedError, match=r"another lynkist sync \(pid \d+\) is running"
        ):
            run_sync(settings)
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join(60)
    assert not (tmp_path / "w.duckdb").exists()
    assert sb.admin.requests() == []
    # once released, syncing works
    assert run_sync(settings).new == 20


def test_api_key_never_reaches_disk_or_logs(
    sb: SandboxServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Grep dlt's working dir (state, trace, schemas), the warehouse and all logs for the key."""
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)
    sb.admin.seed("acme", 120, seed=15)
    key = sb.keys["acme"]["rw"]
    settings = sync_settings(sb, tmp_path / "w.duckdb", create_views=True)
    summary = run_sync(settings)
    _change_things(sb, updates=2, archives=1, creates=1)
    run_sync(settings)
    bad = sync_settings(sb, tmp_path / "w.duckdb")
    bad.api_key = "lk_sandbox_" + "S3cr3tWr0ngKey" * 2
    with pytest.raises(AuthenticationError) as excinfo:
        run_sync(bad)

    out, err = capfd.readouterr()
    texts = {
        "logs": caplog.text,
        "stdout": out,
        "stderr": err,
        "summary": repr(summary) + str(summary.to_dict()),
        "settings": repr(settings),
        "error": str(excinfo.value) + repr(excinfo.value),
    }
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    pipelines_dir = warehouse_of(settings).working_dir
    assert any(p.name.startswith("trace") for p in pipelines_dir.rglob("*")), "no trace to grep"
    assert len(files) > 10
    for secret in (key, bad.api_key):
        for name, text in texts.items():
            assert secret not in text, f"key found in {name}"
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"key found in {path}"


def test_full_refresh_rebuilds_from_the_api(sb: SandboxServer, tmp_path: Path) -> None:
    """--full-refresh drops the table: live contacts only, local damage repaired."""
    sb.admin.seed("acme", 130, seed=16)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    run_sync(settings)
    _change_things(sb, updates=0, archives=4, creates=0)
    run_sync(settings)
    pipeline = make_pipeline(settings)
    with pipeline.sql_client() as client:
        client.execute_sql(
            f"UPDATE {client.make_qualified_table_name('contacts')} SET first_name = 'damaged'"
        )

    settings.full_refresh = True
    summary = run_sync(settings)
    frame = assert_warehouse_matches_server(pipeline, sb)
    assert summary.new == summary.rows_written == 126
    assert len(frame) == 126 and not frame["is_deleted"].any()
    assert "damaged" not in set(frame["first_name"])


def test_views_are_refreshed_after_the_load(sb: SandboxServer, tmp_path: Path) -> None:
    sb.admin.seed("acme", 40, seed=17)
    settings = sync_settings(sb, tmp_path / "w.duckdb", create_views=True)
    run_sync(settings)
    _change_things(sb, updates=0, archives=3, creates=0)
    summary = run_sync(settings)
    assert "contacts_current" in summary.views
    current = make_pipeline(settings).dataset()("SELECT count(*) AS n FROM contacts_current").df()
    assert current is not None and int(current["n"].iloc[0]) == 37


def test_two_warehouses_never_share_state(sb: SandboxServer, tmp_path: Path) -> None:
    """Two DuckDB files side by side: separate dlt working dirs, separate mirrors."""
    sb.admin.seed("acme", 50, seed=18)
    sb.admin.seed("globex", 30, seed=19)
    acme = sync_settings(sb, tmp_path / "acme.duckdb")
    globex = sync_settings(sb, tmp_path / "globex.duckdb", tenant="globex")
    assert warehouse_of(acme).pipeline_name_resolved != warehouse_of(globex).pipeline_name_resolved

    assert run_sync(acme).new == 50
    assert run_sync(globex).new == 30
    assert run_sync(acme).rows_written == 0
    assert_warehouse_matches_server(tmp_path / "acme.duckdb", sb, "acme")
    assert_warehouse_matches_server(tmp_path / "globex.duckdb", sb, "globex")


def test_unwritable_warehouse_and_missing_key_are_config_errors(
    sb: SandboxServer, tmp_path: Path
) -> None:
    settings = sync_settings(sb, tmp_path / "missing-dir" / "w.duckdb")
    with pytest.raises(WarehouseConfigError, match="does not exist"):
        run_sync(settings)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    settings.api_key = ""
    with pytest.raises(SyncConfigError, match="LYNKIST_API_KEY"):
        run_sync(settings)


def _steps(settings: SyncSettings) -> list[str]:
    """The steps of the pipeline's last recorded run (dlt keeps its trace on disk)."""
    trace = make_pipeline(settings).last_trace
    assert trace is not None
    return [step.step for step in trace.steps]


def test_a_sync_with_no_change_runs_no_load(sb: SandboxServer, tmp_path: Path) -> None:
    """Nothing changed: the listing is read, but dlt neither normalizes nor loads anything."""
    sb.admin.seed("acme", 30, seed=23)
    settings = sync_settings(sb, tmp_path / "w.duckdb")
    assert run_sync(settings).new == 30
    first_trace = make_pipeline(settings).last_trace
    assert first_trace is not None

    summary = run_sync(settings)  # the quick start: dlt is not run at all
    assert (summary.unchanged, summary.rows_written) == (30, 0)
    last_trace = make_pipeline(settings).last_trace
    assert last_trace is not None and last_trace.started_at == first_trace.started_at

    settings.quick_start = False  # inside dlt's extract from the start: extracted, not loaded
    summary = run_sync(settings)
    assert (summary.unchanged, summary.rows_written) == (30, 0)
    assert "extract" in _steps(settings)
    assert "load" not in _steps(settings)
    assert "normalize" not in _steps(settings)
    pipeline = make_pipeline(settings)
    assert not pipeline.list_extracted_load_packages()
    assert not pipeline.list_normalized_load_packages()

    _change_things(sb, updates=1, archives=0, creates=0)
    settings.quick_start = True
    assert run_sync(settings).rows_written == 1  # written by SQL (test_direct.py): dlt not run
    assert _steps(settings) == ["extract"]  # still the trace of the run before
    _change_things(sb, updates=0, archives=1, creates=0)  # marking deleted: through dlt
    assert run_sync(settings).rows_written == 1
    assert "load" in _steps(settings)
    assert_warehouse_matches_server(tmp_path / "w.duckdb", sb)
