"""``lynkist report``: charts (PNG) and one self-contained HTML page from the warehouse."""

from __future__ import annotations

import argparse

from pipelines.cli import EXIT_OK, UsageError
from pipelines.cli.paths import add_warehouse_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``lynkist report`` and its flags."""
    parser = subparsers.add_parser(
        "report",
        help="render charts and an HTML report from the warehouse",
        description="Render the analysis charts as PNG files plus a self-contained report.html "
        "(images embedded, opens without network) from a warehouse written by `lynkist sync` "
        "(DuckDB, opened read-only, or any dlt destination).",
    )
    add_warehouse_arguments(parser, what="the synced contacts")
    parser.add_argument(
        "--out", default="report", metavar="DIR", help="output directory (default: report)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the report and print where it is."""
    # imported here so `lynkist --help` stays fast (matplotlib is slow to import)
    from pipelines.report import WarehouseError, build_report

    try:
        result = build_report(
            args.duckdb, args.out, dataset=args.dataset, destination=args.destination
        )
    except WarehouseError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write the report into {args.out}: {exc.strerror}") from None
    from rich.console import Console

    console = Console()
    console.print(f"[bold]Report:[/bold] {result.html_path}")
    for path in result.png_paths:
        console.print(f"  chart: {path}")
    return EXIT_OK
