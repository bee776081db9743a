"""``lynkist sync``: extract contacts into the warehouse, for people and for schedulers.

Configuration, highest precedence first: flags, the environment (``LYNKIST_API_KEY``,
``LYNKIST_BASE_URL``), dlt's ``.dlt/secrets.toml`` / ``config.toml`` (``[sources.lynkist]``
``api_key`` / ``base_url``), defaults. Exit codes: 0 done (also when nothing changed), 1 the sync
failed (API unreachable after retries, destination error, another sync running), 2 bad
configuration (missing or rejected key, unwritable warehouse, missing destination credentials),
or a run refused to protect the warehouse (it mirrors another tenant; the run would mark more
than ``--max-delete-share`` of it deleted) — nothing is written then.
A contact stored with values not as the API sent them (see ``contacts_rejected``) is reported
as one ``warning:`` line on stderr and in ``--json`` (``problems``, ``warnings``); the exit code
stays 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from pipelines.cli import EXIT_OK, CommandFailed, UsageError, reraise_interruption
from pipelines.cli.connection import add_connection_arguments, resolve_credentials
from pipelines.cli.paths import add_warehouse_arguments, check_warehouse, warehouse_from_args
from pipelines.cli.safety import add_delete_share_argument
from pipelines.cli.tenants import add_tenant_arguments, run_sync_tenants, wants_tenants
from pipelines.defaults import DEFAULT_MAX_CONCURRENCY

if TYPE_CHECKING:  # rich on use: a --json or --quiet run prints no table and no progress
    from rich.console import Console
    from rich.table import Table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``lynkist sync`` and its flags."""
    parser = subparsers.add_parser(
        "sync",
        help="extract contacts into the warehouse (incremental)",
        description=(
            "Extract the tenant's contacts into the warehouse: new, changed and archived "
            "contacts since the last run (merge on id). Safe to run from cron: a second sync "
            "on the same warehouse fails at once, and an interrupted one is completed by the "
            "next run."
        ),
    )
    add_connection_arguments(parser)
    add_warehouse_arguments(parser, what="the contacts")
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="drop the contacts table and rebuild it from the API",
    )
    add_delete_share_argument(parser)
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=DEFAULT_MAX_CONCURRENCY,
        metavar="N",
        help=f"requests in flight (default {DEFAULT_MAX_CONCURRENCY}: each page read is heavy for "
        "the server; fewer automatically when the API throttles)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="print nothing unless it fails")
    output.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON object (with --all/--tenant: one line per tenant)",
    )
    add_tenant_arguments(parser, many=True)
    parser.set_defaults(func=run)


def summary_table(summary: Any) -> Table:
    """The sync summary as a table (``lynkist sync``, ``lynkist demo``)."""
    from rich.table import Table

    table = Table(title="lynkist sync", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, value in (
        ("new", summary.new),
        ("updated", summary.updated),
        ("deleted", summary.deleted),
        ("unchanged", summary.unchanged),
        ("rows written", summary.rows_written),
        ("requests", summary.requests),
        ("retries", summary.retries),
        ("duration", f"{summary.duration_s:.1f} s"),
    ):
        table.add_row(label, f"{value:,}" if isinstance(value, int) else value)
    return table


class _ProgressView:
    """Pages fetched / total and rows emitted, on stderr, while the sync runs."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("pages  {task.fields[rows]:,} rows to load"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("reading warehouse", total=None, rows=0)

    def __call__(self, stats: Any) -> None:
        labels = {
            "mirror": "reading warehouse",
            "scan": f"scanning (pass {stats.scan_passes})" if stats.scan_passes > 1 else "scanning",
            "confirm": f"checking {stats.delete_candidates:,} missing",
            "done": "loading",
        }
        self.progress.update(
            self.task,
            description=labels.get(stats.phase, stats.phase),
            completed=stats.pages,
            # pages count over every pass; a re-scan adds another listing's worth
            total=stats.pages_total * max(stats.scan_passes, 1) if stats.pages_total else None,
            rows=stats.rows_emitted,
        )


def _start_listing(base_url: str, api_key: str, max_concurrency: int, timeout: float) -> Any:
    """A client already listing the contacts, or None when the settings cannot make one.

    Started before dlt and the source are imported (about a second of start-up), so the
    network works meanwhile; run_sync continues this listing. Bad settings are left for
    run_sync to report, with its own messages.
    """
    # light imports only (httpx): pipelines.source would import dlt
    from pipelines.client import LynkistClient, LynkistConfigError
    from transforms.contact import PAGE_LIMIT_MAX

    if not api_key:
        return None
    try:
        client = LynkistClient(base_url, api_key, max_concurrency=max_concurrency, timeout=timeout)
    except LynkistConfigError:
        return None
    client.prefetch_contact_pages(limit=PAGE_LIMIT_MAX)  # the sync's page size
    return client


def run(args: argparse.Namespace) -> int:
    """Run the sync; print progress and the summary as asked."""
    if wants_tenants(args):
        return run_sync_tenants(args)
    base_url, api_key = resolve_credentials(args)
    if args.max_concurrency < 1:
        raise UsageError("--max-concurrency must be at least 1")
    check_warehouse(args)  # before any API call
    # The lock before the first page: a listing read before it could be loaded over a newer
    # state that `lynkist listen` flushed meanwhile. run_sync re-enters it (same thread).
    from pipelines.warehouse.errors import WarehouseLockedError
    from pipelines.warehouse.lock import warehouse_lock

    try:
        with warehouse_lock(warehouse_from_args(args), command="sync"):
            client = _start_listing(base_url, api_key, args.max_concurrency, args.timeout)
            try:
                return _run(args, base_url, api_key, client)
            finally:
                if client is not None:
                    client.close()
    except WarehouseLockedError as exc:
        raise CommandFailed(str(exc)) from None


def _run(args: argparse.Namespace, base_url: str, api_key: str, client: Any) -> int:
    from pipelines.client import (
        AuthenticationError,
        LynkistConfigError,
        LynkistError,
        PermissionDeniedError,
    )
    from pipelines.source.runner import SyncSettings, run_sync
    from pipelines.warehouse import WarehouseConfigError, WarehouseError

    settings = SyncSettings(
        base_url=base_url,
        api_key=api_key,
        duckdb_path=args.duckdb,
        destination=args.destination,
        dataset=args.dataset,
        full_refresh=args.full_refresh,
        max_concurrency=args.max_concurrency,
        max_delete_share=args.max_delete_share,
        timeout=args.timeout,
    )
    view = None
    if not (args.quiet or args.json):
        from rich.console import Console

        err = Console(stderr=True)
        view = _ProgressView(err) if err.is_terminal else None
    try:
        if view is not None:
            with view.progress:
                summary = run_sync(settings, progress=view, client=client)
        else:
            summary = run_sync(settings, client=client)
    except (
        AuthenticationError,
        PermissionDeniedError,
        LynkistConfigError,
        WarehouseConfigError,
    ) as exc:
        raise UsageError(str(exc)) from None
    except (LynkistError, WarehouseError) as exc:
        reraise_interruption(exc)
        raise CommandFailed(str(exc)) from None
    except Exception as exc:  # one line for the scheduler's log, never a traceback
        reraise_interruption(exc)
        raise CommandFailed(f"{type(exc).__name__}: {_first_line(exc)}") from None
    for warning in summary.warnings:  # also with --quiet: a scheduler's log should show it
        print(f"lynkist sync: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps({"ok": True, "exit_code": EXIT_OK, **summary.to_dict()}))
    elif not args.quiet:
        from rich.console import Console

        out = Console()
        out.print(summary_table(summary))
        if summary.rows_written == 0:
            out.print("No changes since the last sync: 0 rows written.")
        else:
            out.print(
                f"Loaded {summary.rows_written:,} rows into {summary.warehouse}.", highlight=False
            )
    return EXIT_OK


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
