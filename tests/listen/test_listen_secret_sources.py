"""Where ``lynkist listen`` finds its webhook secret: flag > environment > ``.dlt/secrets.toml``.

The contract names all three. Each case runs the real command and signs a delivery with the
secret that should win: 200 means it was taken, 400 means another source won.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lynkist_sandbox import SandboxConfig, SandboxServer
from tests.listen.helpers import Listener, deliver, event_body, free_port

FILE_SECRET = "whsec_from_secrets_toml"
OTHER_SECRET = "whsec_someone_else"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(seed_contacts=0)) as server:
        yield server


def _with_secrets_toml(tmp_path: Path) -> Path:
    dlt_dir = tmp_path / ".dlt"
    dlt_dir.mkdir()
    (dlt_dir / "secrets.toml").write_text(
        f'[sources.lynkist]\nwebhook_secret = "{FILE_SECRET}"\n', encoding="utf-8"
    )
    return tmp_path / "w.duckdb"  # the listener runs in the database's folder


def _status(listener: Listener, secret: str) -> int:
    note = {"id": "n-1", "created_at": "2026-12-03T08:00:00Z", "body": "hi"}
    body = event_body(
        "contact.note_added", {"id": "c-1", "note": note}, occurred_at=note["created_at"]
    )
    return deliver(listener, body, secret=secret).status_code


@pytest.mark.parametrize(
    ("flag", "env", "winner"),
    [
        (None, "", FILE_SECRET),  # only the file: it is used
        (None, OTHER_SECRET, OTHER_SECRET),  # the environment beats the file
        (OTHER_SECRET, "", OTHER_SECRET),  # the flag beats the file
    ],
    ids=["file", "env-over-file", "flag-over-file"],
)
def test_secret_precedence(
    sandbox: SandboxServer, tmp_path: Path, flag: str | None, env: str, winner: str
) -> None:
    db = _with_secrets_toml(tmp_path)
    extra = () if flag is None else ("--webhook-secret", flag)
    listener = Listener(sandbox, db, free_port(), *extra, secret=env)
    try:
        loser = FILE_SECRET if winner != FILE_SECRET else OTHER_SECRET
        assert _status(listener, loser) == 400
        assert _status(listener, winner) == 200
    finally:
        assert listener.stop() == 0
