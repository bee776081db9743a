"""A throwaway PostgreSQL server for the destination tests.

``postgres_dsn`` (session scope) yields a DSN. It uses ``LYNKIST_TEST_PG_DSN`` when set;
otherwise it starts a private server from the Debian binaries in
``/usr/lib/postgresql/*/bin`` (``initdb`` + ``pg_ctl``) on a free loopback port, with its data
directory in a temporary directory, and stops it at the end of the session. PostgreSQL refuses to
run as root, so as root the binaries run as the ``postgres`` user through ``runuser``.

Import it explicitly in the test modules that need it::

    from tests.plugins.postgres import postgres_dsn  # noqa: F401
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DSN_ENV = "LYNKIST_TEST_PG_DSN"
_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def _find_bindir() -> Path | None:
    """Newest PostgreSQL server bin directory holding ``initdb`` and ``pg_ctl``, if any."""
    candidates = []
    for bindir in glob.glob(_BIN_GLOB):
        path = Path(bindir)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            try:
                major = int(path.parent.name)
            except ValueError:
                major = 0
            candidates.append((major, path))
    return max(candidates)[1] if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    """Prefix ``cmd`` so it runs as ``postgres`` when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", "postgres", "--", *cmd]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"postgres fixture: {what} failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-2000:]}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of a PostgreSQL server for the session (``LYNKIST_TEST_PG_DSN`` or a private one)."""
    if dsn := os.environ.get(DSN_ENV):
        yield dsn
        return
    bindir = _find_bindir()
    if bindir is None:
        pytest.fail(
            f"PostgreSQL server binaries not found in {_BIN_GLOB}: install them "
            "(`apt-get install postgresql`, as .ci/run does) or set "
            f"{DSN_ENV}=postgresql://user:password@host:port/db to use an existing server",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="lynkist-pg-"))
    datadir, logfile = root / "data", root / "server.log"
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(
                "running as root, but there is no `postgres` user to run the server as: "
                f"create one or set {DSN_ENV}",
                pytrace=False,
            )
        os.chown(root, server_user.pw_uid, server_user.pw_gid)
    port = _free_port()
    _run(
        _as_server_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        ),
        "initdb",
    )
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    _run(
        _as_server_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                options,
                "-l",
                str(logfile),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        "pg_ctl start",
    )
    try:
        # trust auth ignores the password; dlt's credentials want one to be present
        yield f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user(
                [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"]
            ),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
