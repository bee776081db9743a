"""``lynkist push FILE``: clean a CRM export and upsert it into Lynkist, one outcome per row."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines.cli import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    CommandFailed,
    UsageError,
)
from pipelines.cli.connection import add_connection_arguments, resolve_credentials
from pipelines.cli.paths import add_warehouse_arguments, check_output_file, check_warehouse
from pipelines.cli.safety import add_delete_share_argument
from pipelines.defaults import DEFAULT_PUSH_CONCURRENCY

PRESET_NAMES = ("auto", "hubspot", "salesforce", "pipedrive", "lynkist")
_SAMPLE = 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``lynkist push`` and its flags."""
    parser = subparsers.add_parser(
        "push",
        help="clean a CRM export and upsert it through the API (reverse ETL)",
        description="Map and clean a CRM export (HubSpot, Salesforce, any CSV), diff it against "
        "the warehouse mirror (refreshed first), then create new contacts in bulk and PATCH "
        "changed ones. Every input row gets one recorded outcome (warehouse table "
        "push_results, optional CSV). Exit 3 when any row was rejected or failed.",
    )
    parser.add_argument("file", metavar="FILE", help="the export (CSV)")
    parser.add_argument(
        "--mapping",
        default="auto",
        metavar="auto|hubspot|salesforce|pipedrive|lynkist|PATH",
        help="column mapping: a preset, or a mapping file (JSON/TOML/CSV column -> field) that "
        "overrides the detected preset (default: auto)",
    )
    parser.add_argument(
        "--match-on",
        default="email",
        metavar="KEY",
        help="match rows to contacts on email (default), phone, id or custom_fields.<key>",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    parser.add_argument(
        "--no-refresh",
        dest="refresh",
        action="store_false",
        help="plan against the warehouse as it is (no sync before and after the push)",
    )
    add_delete_share_argument(parser)
    parser.add_argument(
        "--clear-empty", action="store_true", help="let empty cells clear stored values"
    )
    parser.add_argument(
        "--tags",
        choices=("union", "replace"),
        default="union",
        help="add the row's tags to the stored ones (union, default) or replace them",
    )
    parser.add_argument(
        "--default-region",
        default="US",
        metavar="R",
        help="region (ISO code) of phone numbers written without a country code, in rows "
        "without a country column (default: US)",
    )
    parser.add_argument(
        "--keep-invalid-phones",
        action="store_true",
        help="keep a phone that is not a valid number of its region as written, instead of "
        "rejecting the row",
    )
    parser.add_argument(
        "--results",
        metavar="FILE",
        help="also write the outcomes as CSV (with --dry-run: the plan, one row per input row)",
    )
    add_connection_arguments(parser)
    add_warehouse_arguments(parser, what="the mirror and push_results")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=DEFAULT_PUSH_CONCURRENCY,
        metavar="N",
        help=f"most requests in flight (default {DEFAULT_PUSH_CONCURRENCY}: one small PATCH per "
        "changed contact waits mostly on the round trip; fewer after 429s)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=None,
        help="log to stderr at this level (default: warning)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log lines: -v is --log-level info, -vv debug",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(func=run)


def _mapping(value: str) -> tuple[str, dict[str, str] | None]:
    if value.strip().lower() in PRESET_NAMES:
        return value.strip().lower(), None
    path = Path(value)
    if not path.is_file():
        raise UsageError(
            f"--mapping {value!r} is neither a preset ({', '.join(PRESET_NAMES)}) nor a "
            "mapping file"
        )
    from transforms.mapping import load_mapping_file

    try:
        return "auto", load_mapping_file(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"mapping file {value}: {exc}") from None


def _read(path: str) -> Any:
    from transforms.csv_io import NotTextError, read_export

    file = Path(path)
    if file.is_dir():
        raise UsageError(f"{path} is a directory — give the path of a CSV export file")
    if not file.is_file():
        raise UsageError(f"{path}: no such file — give the path of a CSV export")
    try:
        return read_export(file)
    except NotTextError as exc:
        raise UsageError(f"{path}: {exc}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it as CSV ({exc})") from None


def run(args: argparse.Namespace) -> int:
    """Run the push and print its summary; returns the exit code."""
    from rich.console import Console

    from pipelines.client import (
        AuthenticationError,
        LynkistConfigError,
        LynkistError,
        PermissionDeniedError,
    )
    from pipelines.sink import PushSettings, PushUsageError, run_push
    from pipelines.warehouse import WarehouseConfigError, WarehouseError

    _configure_logging(args)
    console = Console(stderr=False, quiet=args.quiet)
    # soft_wrap: an error stays one line (for schedulers' logs), however narrow the terminal
    errors = Console(stderr=True, soft_wrap=True)
    base_url, api_key = resolve_credentials(args)
    mapping, overrides = _mapping(args.mapping)
    df = _read(args.file)
    settings = PushSettings(
        base_url=base_url,
        api_key=api_key,
        mapping=mapping,
        mapping_overrides=overrides,
        match_on=args.match_on,
        dry_run=args.dry_run,
        refresh=args.refresh,
        clear_empty=args.clear_empty,
        tags=args.tags,
        default_region=args.default_region or None,
        keep_invalid_phones=args.keep_invalid_phones,
        duckdb_path=args.duckdb,
        destination=args.destination,
        dataset=args.dataset,
        results_path=args.results,
        max_concurrency=max(1, args.max_concurrency),
        max_delete_share=args.max_delete_share,
        timeout=args.timeout,
        source=Path(args.file).name,
    )
    check_warehouse(args)
    if args.results:
        check_output_file(args.results, flag="--results")
    try:
        with _progress(console, quiet=args.quiet or args.json) as progress:
            report = run_push(df, settings, progress=progress)
    except (PushUsageError, WarehouseConfigError) as exc:
        raise UsageError(str(exc)) from None
    except (AuthenticationError, PermissionDeniedError, LynkistConfigError) as exc:
        raise UsageError(str(exc)) from None
    except (WarehouseError, LynkistError) as exc:
        raise CommandFailed(str(exc)) from None
    except Exception as exc:  # one line for the scheduler's log, never a traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CommandFailed(f"{type(exc).__name__}: {first}") from None

    code, error = _outcome(report)
    if args.json:  # one object per run, also when it failed: a log of JSON lines stays parseable
        summary = {"ok": code == EXIT_OK, "exit_code": code, "error": error}
        print(json.dumps({**summary, **_json_summary(report)}, default=str))
    elif not args.quiet:
        render_report(console, report)
    for warning in report.warnings:
        errors.print(f"lynkist push: warning: {warning}", markup=False, highlight=False)
    if code in (EXIT_USAGE, EXIT_FAILURE):
        errors.print(f"lynkist push: error: {error}", markup=False, highlight=False)
    return code


def _outcome(report: Any) -> tuple[int, str | None]:
    """The exit code of a finished push and, unless it is 0, why."""
    if report.fatal:
        return EXIT_USAGE, str(report.fatal)
    if report.unavailable:
        return EXIT_FAILURE, f"stopped writing: {report.unavailable}"
    if report.ok:
        return EXIT_OK, None
    summary = report.summary
    return (
        EXIT_ROWS_FAILED,
        f"rows not written: {summary.get('rejected', 0)} rejected, {summary.get('failed', 0)} "
        "failed",
    )


def _configure_logging(args: argparse.Namespace) -> None:
    """Log lines to stderr: ``--log-level`` wins, else ``-v`` (info) / ``-vv`` (debug)."""
    import logging

    level = args.log_level or {0: "warning", 1: "info"}.get(args.verbose, "debug")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Our modules only: dlt and httpx at debug would bury the push's own lines.
    for name in ("pipelines", "transforms"):
        logging.getLogger(name).setLevel(level.upper())


class _progress:
    """A rich progress bar fed by the push's ``progress(stage, done, total)`` callback."""

    def __init__(self, console: Any, *, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if self.quiet:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("preparing", total=None)
        return self.update

    def update(self, stage: str, done: int, total: int) -> None:
        label = {"refresh": "syncing the mirror", "push": "pushing rows"}.get(stage, stage)
        self._bar.update(self._task, description=label, completed=done, total=total or None)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _json_summary(report: Any) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "dry_run": report.dry_run,
        "fatal": report.fatal,
        "results_path": str(report.results_path) if report.results_path else None,
        **report.summary,
    }


def render_report(console: Any, report: Any) -> None:
    """Print a push's summary, plan sample and problems (``lynkist push``, ``lynkist demo``)."""
    from rich.table import Table

    summary = report.summary
    planned = summary["planned"]
    _render_columns(console, summary.get("columns"))
    if report.dry_run:
        table = Table(
            title=f"Push plan (dry run, {summary['total']} rows): nothing written", min_width=60
        )
        table.add_column("action")
        table.add_column("rows", justify="right")
        for action in ("create", "update", "unchanged", "reject"):
            table.add_row(action, str(planned[action]))
        console.print(table)
        updates = [row for row in report.plan.rows if row.action == "update"][:_SAMPLE]
        if updates:
            diff = Table(title=f"Field changes (first {len(updates)} updates)")
            for column in ("row", "match key", "field", "stored", "new"):
                diff.add_column(column, overflow="fold")
            for row in updates:
                for name, old, new in _field_changes(row.changes):
                    diff.add_row(
                        str(row.row_number), *_plain(row.match_key, name, _show(old), _show(new))
                    )
            console.print(diff)
        _render_problems(console, report.results, "reason")
        if report.results_path:
            console.print(f"plan: {report.results_path}", highlight=False)
        return
    table = Table(title=f"Push {report.run_id}: {summary['total']} rows", min_width=60)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for outcome in ("created", "updated", "unchanged", "rejected", "failed"):
        table.add_row(outcome, str(summary[outcome]))
    console.print(table)
    console.print(
        f"write calls: {summary['write_calls']} ({summary['bulk_calls']} bulk, "
        f"{summary['patch_calls']} PATCH) · requests: {summary['requests']} · retries: "
        f"{summary['retries']} · lost bulk answers reconciled: {summary['unknown_batches']} · "
        f"{summary['duration_s']:.1f}s",
        highlight=False,
    )
    _render_problems(console, report.results, "error")
    if report.results_path:
        console.print(f"results: {report.results_path}", highlight=False)


def _render_columns(console: Any, columns: dict[str, dict[str, str]] | None) -> None:
    """Which input column feeds which field, and which are ignored (and why)."""
    from rich.table import Table

    if not columns:
        return
    table = Table(title="Columns", min_width=60)
    table.add_column("input column", overflow="fold")
    table.add_column("goes to", overflow="fold")
    for column, target in columns["mapped"].items():
        table.add_row(*_plain(column, target))
    for column, why in columns["ignored"].items():
        table.add_row(*_plain(column, f"ignored — {why}"), style="yellow")
    console.print(table)


def _field_changes(changes: dict[str, tuple[Any, Any]]) -> list[tuple[str, Any, Any]]:
    """(field, stored, new) per change; ``custom_fields`` one line per key that changes."""
    from pipelines.sink.plan import as_dict, changed_custom_keys

    lines: list[tuple[str, Any, Any]] = []
    for name, (old, new) in changes.items():
        if name != "custom_fields":
            lines.append((name, old, new))
            continue
        before, after = as_dict(old), as_dict(new)
        for key in changed_custom_keys(before, after):
            lines.append((f"custom_fields.{key}", before.get(key), after.get(key)))
    return lines


def _render_problems(console: Any, frame: Any, column: str) -> None:
    from rich.table import Table

    if column == "error":
        bad = frame[frame["outcome"].isin(["rejected", "failed"])]
    else:
        bad = frame[frame["action"] == "reject"]
    if bad.empty:
        return
    table = Table(title=f"Rows not written (first {min(len(bad), _SAMPLE)} of {len(bad)})")
    table.add_column("row", justify="right")
    table.add_column("why", overflow="fold")
    for record in bad.head(_SAMPLE).itertuples(index=False):
        table.add_row(str(record.row_number), *_plain(str(getattr(record, column))))
    console.print(table)


def _plain(*cells: str | None) -> list[Any]:
    """Cells from the user's file or the server, shown as written: a reason ending in
    ``[column "Phone"]`` or a header like ``[Tags]`` would otherwise be read as rich markup
    and vanish."""
    from rich.text import Text

    return [Text(cell or "") for cell in cells]


def _show(value: Any) -> str:
    if value is None:
        return "∅"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:59] + "…"
