"""``lynkist sync --all`` / ``--tenant``: every tenant into its own dataset, one row each.

Real parts: the command line in process, the shared sandbox on loopback (tenants ``acme`` and
``globex``), one real DuckDB file for all tenants.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pytest

from lynkist_sandbox import SandboxServer
from pipelines.cli import main
from pipelines.source.runner import SyncSettings, make_pipeline
from tests.plugins.postgres import postgres_dsn  # noqa: F401
from tests.sync.helpers import assert_warehouse_matches_server

BAD_KEY = "lk_sandbox_TenantsRejected0a1b2c3d4e"


def _config(tmp_path: Path, *extra: str, defaults: str = "") -> Path:
    path = tmp_path / "lynkist.toml"
    tenants = [
        '[[tenants]]\nname = "acme"\napi_key_env = "ACME_LYNKIST_KEY"\n',
        '[[tenants]]\nname = "globex"\napi_key_env = "GLOBEX_LYNKIST_KEY"\ndataset = "gx"\n',
        *extra,
    ]
    path.write_text(f'[defaults]\nduckdb = "warehouse.duckdb"\n{defaults}\n' + "\n".join(tenants))
    return path


@pytest.fixture
def tenants_env(sb: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    monkeypatch.setenv("ACME_LYNKIST_KEY", sb.keys["acme"]["rw"])
    monkeypatch.setenv("GLOBEX_LYNKIST_KEY", sb.keys["globex"]["ro"])
    monkeypatch.setenv("BROKEN_LYNKIST_KEY", BAD_KEY)
    return sb


@pytest.fixture
def seeded(tenants_env: SandboxServer) -> SandboxServer:
    tenants_env.admin.seed("acme", 230, seed=3)
    tenants_env.admin.seed("globex", 120, seed=4)
    return tenants_env


def _pipeline(tmp_path: Path, dataset: str) -> object:
    return make_pipeline(SyncSettings(duckdb_path=tmp_path / "warehouse.duckdb", dataset=dataset))


def test_all_syncs_every_tenant_and_reports_the_failing_one(
    seeded: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sb = seeded
    config = _config(
        tmp_path,
        '[[tenants]]\nname = "broken"\napi_key_env = "BROKEN_LYNKIST_KEY"\n',
        defaults=f'base_url = "{sb.base_url}"\nmax_concurrency = 16',
    )
    monkeypatch.chdir(tmp_path)  # default --config: lynkist.toml in the working directory
    assert config.name == "lynkist.toml"

    code = main(["sync", "--all", "--json"])

    out = capsys.readouterr()
    assert code == 1
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [(r["tenant"], r["dataset"], r["status"]) for r in rows] == [
        ("acme", "acme", "ok"),
        ("globex", "gx", "ok"),
        ("broken", "broken", "failed"),
    ]
    assert (rows[0]["new"], rows[1]["new"]) == (230, 120)
    assert "rejected" in rows[2]["error"]
    assert BAD_KEY not in out.out + out.err
    assert_warehouse_matches_server(_pipeline(tmp_path, "acme"), sb, "acme")
    assert_warehouse_matches_server(_pipeline(tmp_path, "gx"), sb, "globex")
    # ... and the rows are in the warehouse file itself, read by any DuckDB client
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        counts = con.execute(
            "SELECT (SELECT count(*) FROM acme.contacts), (SELECT count(*) FROM gx.contacts)"
        ).fetchone()
    assert counts == (230, 120)

    # one tenant, from an explicit --config, the table: nothing changed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("COLUMNS", "200")
    code = main(["sync", "--tenant", "globex", "--config", str(config)])
    table = capsys.readouterr().out
    assert code == 0
    assert "globex" in table and "acme" not in table and "1 of 1 tenants synced." in table


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--tenant", "initech"], {}, "no tenant 'initech' (tenants: acme, globex)"),
        (["--all"], {"GLOBEX_LYNKIST_KEY": ""}, "tenant 'globex': environment variable"),
        (["--all", "--api-key", "x"], {}, "--api-key cannot be combined with --all/--tenant"),
        (["--all", "--tenant", "acme"], {}, "give either --all or --tenant NAME, not both"),
        (["--config", "lynkist.toml"], {}, "--config needs --all or --tenant NAME"),
    ],
)
def test_bad_config_is_exit_2_and_one_line(
    tenants_env: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    _config(tmp_path, defaults=f'base_url = "{tenants_env.base_url}"')
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    code = main(["sync", *argv])

    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1
    # nothing ran: no tenant was synced
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_key_written_in_the_file_is_exit_2_naming_the_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lynkist.toml").write_text(
        f'[[tenants]]\nname = "acme"\napi_key = "{BAD_KEY}"\napi_key_env = "A"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "--all"]) == 2
    err = capsys.readouterr().err
    assert "tenant 'acme' has 'api_key' written in the file" in err
    assert BAD_KEY not in err


@pytest.mark.postgres
def test_all_on_postgres(
    seeded: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_dsn: str,  # noqa: F811
) -> None:
    sb = seeded
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", postgres_dsn)
    monkeypatch.chdir(tmp_path)  # the postgres pipelines' working directory
    suffix = uuid.uuid4().hex[:6]
    (tmp_path / "lynkist.toml").write_text(
        f'[defaults]\nbase_url = "{sb.base_url}"\ndestination = "postgres"\n\n'
        f'[[tenants]]\nname = "acme"\napi_key_env = "ACME_LYNKIST_KEY"\ndataset = "a_{suffix}"\n'
        f'[[tenants]]\nname = "globex"\napi_key_env = "GLOBEX_LYNKIST_KEY"\n'
        f'dataset = "g_{suffix}"\n'
    )

    assert main(["sync", "--all", "--json"]) == 0

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["tenant"], r["status"], r["new"]) for r in rows] == [
        ("acme", "ok", 230),
        ("globex", "ok", 120),
    ]
    for tenant, dataset in (("acme", f"a_{suffix}"), ("globex", f"g_{suffix}")):
        pipeline = make_pipeline(SyncSettings(destination="postgres", dataset=dataset))
        assert_warehouse_matches_server(pipeline, sb, tenant)


def test_all_in_a_fresh_process_imports_once_for_every_tenant_thread(
    tenants_env: SandboxServer, tmp_path: Path
) -> None:
    """The real command, in a new interpreter: tenant threads start before dlt/pandas are loaded.

    Found by ``make bench`` (50 tenants): since a no-change sync never imports dlt or pandas,
    the tenant threads imported them at the same moment and some failed with "partially
    initialized module 'pandas'". In process (the other tests) they are already imported.
    """
    sb = tenants_env
    sb.admin.seed("acme", 150, seed=5)
    names = [f"t{i}" for i in range(8)]
    config = tmp_path / "lynkist.toml"
    config.write_text(
        f'[defaults]\nduckdb = "warehouse.duckdb"\nbase_url = "{sb.base_url}"\n'
        "max_concurrency = 16\n"
        + "".join(f'[[tenants]]\nname = "{n}"\napi_key_env = "ACME_LYNKIST_KEY"\n' for n in names)
    )
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "sync", "--all", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["tenant"], r["status"], r.get("error")) for r in rows] == [
        (n, "ok", None) for n in names
    ], done.stderr
    assert done.returncode == 0 and all(r["new"] == 150 for r in rows)
