"""What ``lynkist push`` reads and where it writes: a file or a warehouse model; a tenant.

``push FILE`` reads a CSV export; ``push --query SQL`` / ``push --table schema.name`` read the
rows from the warehouse instead (any dlt destination). ``--tenant NAME [--config FILE]`` takes
the API, key, warehouse and dataset from the tenants file.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.cli import UsageError
from pipelines.cli.connection import resolve_credentials
from pipelines.cli.tenants import add_tenant_arguments, push_connection, wants_tenants


@dataclass(frozen=True)
class PushTarget:
    """The tenant and warehouse of a push."""

    base_url: str
    api_key: str = field(repr=False)
    duckdb: str
    destination: str = "duckdb"
    dataset: str = "lynkist"


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``--query``, ``--table`` and the tenant flags (``FILE`` is optional then)."""
    model = parser.add_argument_group(
        "push from a warehouse model",
        "read the rows from the warehouse instead of a file; columns named like the contact "
        "fields (first_name, email, tags, custom_fields.<key>, ...) or mapped with --mapping",
    )
    model.add_argument("--query", metavar="SQL", help='rows to push, e.g. "select ... from ..."')
    model.add_argument("--table", metavar="SCHEMA.NAME", help="push every row of this table")
    add_tenant_arguments(parser, many=False)


def push_target(args: argparse.Namespace) -> PushTarget:
    """From the tenants file with ``--tenant``, else from the flags and environment."""
    if wants_tenants(args):
        return PushTarget(**push_connection(args))
    base_url, api_key = resolve_credentials(args)
    return PushTarget(
        base_url=base_url,
        api_key=api_key,
        duckdb=args.duckdb,
        destination=args.destination,
        dataset=args.dataset,
    )


def _warehouse(target: PushTarget) -> Any:
    from pipelines.warehouse import Warehouse

    return Warehouse(
        destination=target.destination, duckdb_path=target.duckdb, dataset=target.dataset
    )


def check_target(target: PushTarget) -> None:
    """Fail with a usage error, before any API call, when the warehouse cannot be written."""
    from pipelines.warehouse import WarehouseConfigError

    try:
        _warehouse(target).check_writable()
    except WarehouseConfigError as exc:
        raise UsageError(str(exc)) from None


def read_input(args: argparse.Namespace, target: PushTarget, read_file: Any) -> tuple[Any, str]:
    """The rows to push and what the run history records as their source.

    Args:
        args: The parsed flags.
        target: Where the push goes (the warehouse the model is read from).
        read_file: Reads a CSV export given its path (the file path of ``push``).
    """
    given = [name for name in ("file", "query", "table") if getattr(args, name)]
    if len(given) != 1:
        raise UsageError(
            "give the rows to push: a FILE, --query SQL or --table SCHEMA.NAME (exactly one)"
        )
    if args.file:
        return read_file(args.file), Path(args.file).name
    from pipelines.sink.model import ModelInput, ModelReadError, read_model
    from pipelines.warehouse import WarehouseConfigError

    if target.destination == "duckdb" and not Path(target.duckdb).is_file():
        raise UsageError(f"no warehouse at {target.duckdb} to read the model from")
    try:
        model = ModelInput(query=args.query, table=args.table)
        return read_model(_warehouse(target).pipeline(), model), model.source
    except (ModelReadError, WarehouseConfigError) as exc:
        raise UsageError(str(exc)) from None
