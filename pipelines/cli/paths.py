"""The warehouse flags every warehouse command shares, and up-front checks that a command can
write its files before it makes any API call (the probe is
:func:`pipelines.warehouse.cannot_create_in`: ``os.access`` says yes to root everywhere).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.cli import UsageError
from pipelines.warehouse import (
    DEFAULT_DATASET,
    DEFAULT_DESTINATION,
    DEFAULT_DUCKDB_FILE,
    Warehouse,
    WarehouseConfigError,
    cannot_create_in,
)


def add_warehouse_arguments(parser: argparse.ArgumentParser, *, what: str) -> None:
    """Declare ``--duckdb``, ``--destination`` and ``--dataset`` (every warehouse command).

    Args:
        parser: The sub-command's parser.
        what: What the warehouse holds for this command, for the help text.
    """
    parser.add_argument(
        "--duckdb",
        metavar="FILE",
        default=DEFAULT_DUCKDB_FILE,
        help=f"DuckDB warehouse file with {what} (default: {DEFAULT_DUCKDB_FILE} in the "
        "working directory)",
    )
    parser.add_argument(
        "--destination",
        metavar="NAME",
        default=DEFAULT_DESTINATION,
        help="dlt destination, e.g. postgres (credentials from DESTINATION__<NAME>__CREDENTIALS "
        f"or .dlt/secrets.toml); default {DEFAULT_DESTINATION}",
    )
    parser.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help=f"dataset (schema); default {DEFAULT_DATASET}",
    )


def warehouse_from_args(args: argparse.Namespace) -> Warehouse:
    """The warehouse named by :func:`add_warehouse_arguments`' flags."""
    return Warehouse(destination=args.destination, duckdb_path=args.duckdb, dataset=args.dataset)


def check_warehouse(args: argparse.Namespace) -> None:
    """Fail with a usage error, before any API call, when the warehouse cannot be written.

    Raises:
        UsageError: The check's message (:meth:`Warehouse.check_writable`).
    """
    try:
        warehouse_from_args(args).check_writable()
    except WarehouseConfigError as exc:
        raise UsageError(str(exc)) from None


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
