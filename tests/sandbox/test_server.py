"""SandboxServer (thread and process modes), SQLite files, and the ``lynkist sandbox`` CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lynkist_sandbox import SandboxConfig, SandboxServer
from lynkist_sandbox.faults import FaultSpec
from lynkist_sandbox.server import config_from_json, config_to_json
from pipelines.cli import main as cli_main
from pipelines.contact import API_BASE_PATH
from tests.sandbox.conftest import api_client, create


def test_process_mode_serves_and_stops() -> None:
    config = SandboxConfig(latency_ms=1, idempotent_bulk=True)
    server = SandboxServer(config, mode="process").start()
    try:
        assert server.pid is not None and server.pid != os.getpid()
        assert server.state is None
        with api_client(server) as http:
            made = create(http)
            body = http.get("", params={"limit": 100}).json()
        assert body["data"] == [made]
        assert server.admin.settings()["idempotent_bulk"] is True
        assert server.admin.settings()["latency_ms"] == 1
        assert set(server.keys) == {"acme", "globex"}
        pid = server.pid
    finally:
        server.stop()
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.base_url + "/openapi.json", timeout=2)


def test_thread_mode_stop_releases_the_port() -> None:
    with SandboxServer() as server:
        port = server.port
        assert httpx.get(server.base_url + "/openapi.json").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)


def test_fixed_keys_and_admin_token() -> None:
    keys = {"acme": {"rw": "lk_sandbox_fixed_rw"}}
    with SandboxServer(SandboxConfig(api_keys=keys, admin_token="adm")) as server:
        assert server.keys == keys and server.admin_token == "adm"
        response = httpx.get(
            server.base_url + API_BASE_PATH, headers={"Authorization": "Bearer lk_sandbox_fixed_rw"}
        )
        assert response.status_code == 200


def test_file_database_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "sandbox.sqlite")
    with (
        SandboxServer(SandboxConfig(db_path=db, seed_contacts=10)) as first,
        api_client(first) as http,
    ):
        made = create(http, first_name="Persisted")
        http.delete(f"/{http.get('', params={'limit': 1, 'page': 2}).json()['data'][0]['id']}")
        http.post("", json={"first_name": "K"}, headers={"Idempotency-Key": "kept"})
    with (
        SandboxServer(SandboxConfig(db_path=db, seed_contacts=10)) as second,
        api_client(second) as http,
    ):
        body = http.get("", params={"limit": 100}).json()
        assert body["pagination"]["total_items"] == 11  # 10 seeded once (same seed) + 2 − 1
        assert http.get(f"/{made['id']}").json() == made
        replay = http.post("", json={"first_name": "K"}, headers={"Idempotency-Key": "kept"})
        assert replay.headers["idempotent-replayed"] == "true"
    assert first.keys != second.keys  # random keys per start unless configured


def test_config_round_trips_through_json() -> None:
    config = SandboxConfig(
        db_path="x.db",
        rate_limit=5,
        burst=7,
        faults=FaultSpec(error_5xx=0.1, slow=0.2, slow_ms=5, seed=3),
        webhook_urls=["http://127.0.0.1:1/h"],
        api_keys={"acme": {"ro": "k"}},
    )
    assert config_from_json(config_to_json(config)) == config


def test_cli_prints_how_to_connect_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    info_file = tmp_path / "info.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "sandbox",
            "--port",
            "0",
            "--info-file",
            str(info_file),
            "--faults",
            "5xx=0,seed=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        for _ in range(300):
            if info_file.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        info = json.loads(info_file.read_text())
        assert oct(info_file.stat().st_mode & 0o777) == "0o600"
        key = info["keys"]["acme"]["rw"]
        response = httpx.get(
            info["base_url"] + API_BASE_PATH, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.json()["pagination"]["total_items"] == 0
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    text = out.decode()
    assert proc.returncode == 0, err.decode()
    assert info["base_url"] in text
    assert info["admin_token"] in text
    assert all(k in text for kinds in info["keys"].values() for k in kinds.values())
    assert f"curl {info['base_url']}{API_BASE_PATH}" in text.replace("'", "")
    assert "sandbox stopped" in text


def test_cli_flags_map_onto_the_config() -> None:
    from pipelines.cli import build_parser
    from pipelines.cli.sandbox import config_from_args

    args = build_parser().parse_args(
        [
            "sandbox",
            "--db",
            "f.db",
            "--seed-contacts",
            "9",
            "--seed",
            "4",
            "--latency-ms",
            "2.5",
            "--rate-limit",
            "3",
            "--burst",
            "6",
            "--retry-after",
            "mixed",
            "--faults",
            "5xx=0.1,slow=0.2:30,seed=5",
            "--idempotent-bulk",
            "--webhook",
            "http://127.0.0.1:9/a",
            "--webhook",
            "http://127.0.0.1:9/b",
            "--webhook-secret",
            "s3",
        ]
    )
    assert config_from_args(args) == SandboxConfig(
        db_path="f.db",
        seed_contacts=9,
        seed=4,
        latency_ms=2.5,
        rate_limit=3,
        burst=6,
        retry_after="mixed",
        faults=FaultSpec(error_5xx=0.1, slow=0.2, slow_ms=30, seed=5),
        idempotent_bulk=True,
        webhook_urls=["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"],
        webhook_secret="s3",
    )
    assert args.port == 8765 and args.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--faults", "5xx=lots"], "--faults"),
        (["--rate-limit", "0"], "--rate-limit"),
        (["--burst", "0"], "--burst"),
        (["--latency-ms", "-5"], "--latency-ms"),
        (["--seed-contacts", "-1"], "--seed-contacts"),
    ],
)
def test_cli_rejects_bad_flags_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["sandbox", "--port", "0", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_port_in_use_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli_main(["sandbox", "--port", str(port), "--quiet"]) == 2
    assert "already in use" in capsys.readouterr().err


def test_banner_shows_every_key_whole_on_a_narrow_terminal() -> None:
    import io

    from rich.console import Console

    from pipelines.cli.sandbox import print_banner

    keys = {
        t: {k: f"lk_sandbox_{t}_{k}_" + "x" * 32 for k in ("rw", "ro", "wo")} for t in ("a", "b")
    }
    out = io.StringIO()
    info = {
        "base_url": "http://127.0.0.1:1",
        "keys": {"acme": keys["a"], "globex": keys["b"]},
        "admin_token": "sbadm_t",
    }
    print_banner(info, Console(file=out, width=60))
    printed = out.getvalue()
    for tenant_keys in keys.values():
        for key in tenant_keys.values():
            assert key in printed
