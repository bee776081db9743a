"""``lynkist listen`` configuration mistakes: one line, exit 2, nothing served."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipelines.cli import main


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LYNKIST_WEBHOOK_SECRET", "LYNKIST_API_KEY", "LYNKIST_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .dlt/ here


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_without_a_secret_it_says_where_to_put_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["listen", "--api-key", "k", "--port", "0"]) == 2
    err = _error(capsys)
    assert "LYNKIST_WEBHOOK_SECRET" in err and "--webhook-secret" in err


def test_without_an_api_key_it_fails_like_sync(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LYNKIST_WEBHOOK_SECRET", "s3cret-value")
    assert main(["listen", "--port", "0"]) == 2
    err = _error(capsys)
    assert "LYNKIST_API_KEY" in err and "s3cret-value" not in err


def test_a_port_in_use_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LYNKIST_WEBHOOK_SECRET", "s3cret-value")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            ["listen", "--api-key", "k", "--port", str(port), "--duckdb", str(tmp_path / "w.db")]
        )
    assert code == 2
    assert f"port {port} is already in use" in _error(capsys)


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--flush-interval", "0"), ("--batch-events", "0"), ("--port", "70000")],
)
def test_bad_numbers_are_usage_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, flag: str, value: str
) -> None:
    monkeypatch.setenv("LYNKIST_WEBHOOK_SECRET", "s3cret-value")
    assert main(["listen", "--api-key", "k", flag, value]) == 2
    assert flag in _error(capsys)
