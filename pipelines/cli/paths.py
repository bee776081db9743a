"""Up-front checks that a command can write its files, before it makes any API call.

``os.access`` is not enough: it says yes to root everywhere, also on a read-only mount or a
pseudo file system such as ``/proc``, and the command would then fail half-way (after a push's
writes, say) with a traceback. So a directory counts as writable only once a file was actually
created in it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipelines.cli import UsageError


def cannot_create_in(directory: Path) -> str | None:
    """Why no file can be created in ``directory``, or ``None`` when one can.

    Args:
        directory: An existing directory.

    Returns:
        The operating system's reason (e.g. "Permission denied"), or ``None``.
    """
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".lynkist-probe-"):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def check_warehouse_directory(path: str | Path, *, flag: str = "--duckdb") -> None:
    """Fail with a usage error when no file can be created beside the DuckDB warehouse.

    A missing directory or a directory given as the file are left to the sync's own checks,
    which name them.

    Raises:
        UsageError: The warehouse's directory exists but refuses new files.
    """
    db = Path(path).expanduser().resolve()
    if db.is_dir() or not db.parent.is_dir():
        return
    check_duckdb_file(db, shown=path, flag=flag)
    reason = cannot_create_in(db.parent)
    if reason:
        raise UsageError(
            f"{flag} {path}: cannot create files in {db.parent} ({reason}) — choose a "
            "warehouse file in a directory you can write"
        )


#: Bytes 8-11 of every DuckDB database file (its header's magic).
DUCKDB_MAGIC = b"DUCK"


def check_duckdb_file(db: Path, *, shown: str | Path, flag: str = "--duckdb") -> None:
    """Fail with a usage error when ``db`` exists but is not a DuckDB database.

    Otherwise DuckDB's refusal surfaces deep inside dlt, as a cascade of tracebacks.

    Raises:
        UsageError: ``db`` is a file without DuckDB's header (a CSV export, say).
    """
    if not db.is_file():
        return
    try:
        with db.open("rb") as file:
            head = file.read(12)
    except OSError as exc:
        raise UsageError(f"{flag} {shown}: cannot read it ({exc.strerror})") from None
    if head[8:12] != DUCKDB_MAGIC:
        raise UsageError(
            f"{flag} {shown} exists and is not a DuckDB database — give the path of a DuckDB "
            "warehouse, or a new file name to create one"
        )


def check_output_file(path: str | Path, *, flag: str) -> None:
    """Fail with a usage error when the output file ``path`` could not be written.

    Missing parent directories are fine (they are created), as long as the nearest existing
    one accepts new entries.

    Raises:
        UsageError: ``path`` is a directory, lies under a regular file, or its directory
            refuses new files.
    """
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        raise UsageError(
            f"{flag} {path} is a directory; give a file path such as {target / 'results.csv'}"
        )
    existing = target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {path}: {existing} is a file, not a directory")
    reason = cannot_create_in(existing)
    if reason:
        raise UsageError(
            f"{flag} {path}: cannot create files in {existing} ({reason}) — choose a "
            "path you can write"
        )
