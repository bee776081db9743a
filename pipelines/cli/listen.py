"""``lynkist listen``: receive Lynkist webhooks and land every contact event in the warehouse.

Configuration, highest precedence first: flags, the environment (``LYNKIST_WEBHOOK_SECRET``,
``LYNKIST_API_KEY``, ``LYNKIST_BASE_URL``), dlt's ``.dlt/secrets.toml`` / ``config.toml``
(``webhook_secret``, ``api_key``, ``base_url`` under ``[sources.lynkist]``). Exit codes: 0 stopped
by SIGINT/SIGTERM after the final flush, 2 bad configuration (no secret, no key, port in use,
unwritable warehouse, missing ``[listen]`` extra).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from typing import Any

from pipelines.cli import EXIT_OK, UsageError
from pipelines.cli.connection import (
    add_connection_arguments,
    first_setting,
    resolve_credentials,
)
from pipelines.cli.paths import add_warehouse_arguments, check_warehouse

SECRET_ENV = "LYNKIST_WEBHOOK_SECRET"
DEFAULT_PORT = 8787


def require_listen_extra() -> None:
    """Fail with one line when the optional ``[listen]`` extra (Starlette, uvicorn) is missing.

    Raises:
        UsageError: naming the extra to install.
    """
    import importlib.util

    missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"the webhook listener is an optional extra ({', '.join(missing)} not installed): "
            "pip install 'lynkist-etl[listen]'"
        )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``lynkist listen`` and its flags."""
    parser = subparsers.add_parser(
        "listen",
        help="receive webhooks and apply contact events to the warehouse within seconds",
        description=(
            "Receive Lynkist webhooks on POST /webhooks/lynkist, keep each event in a durable "
            "spool beside the warehouse, and apply them in micro-batches: contact_events gets "
            "every event once, contacts gets the current state of each touched contact. Runs "
            "until SIGINT/SIGTERM, then flushes and exits 0."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"TCP port, 0 = any free (default {DEFAULT_PORT})",
    )
    add_connection_arguments(parser)
    add_warehouse_arguments(parser, what="the contacts and contact_events")
    parser.add_argument(
        "--webhook-secret",
        metavar="S",
        help=f"HMAC secret of the deliveries (env {SECRET_ENV} — preferred: flags show in `ps`)",
    )
    parser.add_argument(
        "--flush-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="apply spooled events this often (default 1)",
    )
    parser.add_argument(
        "--batch-events",
        type=int,
        default=1000,
        metavar="N",
        help="apply sooner once N events wait; also the most per flush (default 1000)",
    )
    parser.add_argument(
        "--trust-payload",
        action="store_true",
        help="apply the events' payloads (newest wins) instead of fetching each contact: no "
        "API calls, but a thin or wrong payload lands as sent",
    )
    parser.add_argument(
        "--signature-header",
        default="Lynkist-Signature",
        metavar="NAME",
        help="header with t=<unix>,<scheme>=<hex> (default Lynkist-Signature)",
    )
    parser.add_argument(
        "--signature-scheme", default="v1", metavar="KEY", help="signature key (default v1)"
    )
    parser.add_argument(
        "--signature-tolerance",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="reject deliveries signed longer ago than this (default 300)",
    )
    parser.add_argument(
        "--max-body",
        type=int,
        default=1024 * 1024,
        metavar="BYTES",
        help="answer 413 to larger bodies (default 1 MiB)",
    )
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long a flush waits while a sync holds the warehouse (default 600)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="print nothing unless it fails")
    output.add_argument(
        "--json", action="store_true", help="print JSON lines (start, flushes, exit)"
    )
    parser.set_defaults(func=run)


def resolve_secret(args: argparse.Namespace) -> str:
    """The webhook secret: flag > environment > dlt secrets.

    Raises:
        UsageError: None anywhere.
    """
    secret = first_setting(
        args.webhook_secret, SECRET_ENV, "sources.lynkist.webhook_secret", secret=True
    )
    if not secret:
        raise UsageError(
            f"no webhook secret: set {SECRET_ENV}, pass --webhook-secret, or add webhook_secret "
            "under [sources.lynkist] in .dlt/secrets.toml"
        )
    return secret


def _check_numbers(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    if args.flush_interval <= 0:
        raise UsageError(f"--flush-interval must be > 0 seconds, got {args.flush_interval:g}")
    if args.batch_events < 1:
        raise UsageError(f"--batch-events must be at least 1, got {args.batch_events}")
    if args.signature_tolerance <= 0:
        raise UsageError("--signature-tolerance must be > 0 seconds")
    if args.max_body < 1024:
        raise UsageError(f"--max-body must be at least 1024 bytes, got {args.max_body}")
    if args.lock_wait < 0:
        raise UsageError("--lock-wait must be ≥ 0 seconds")


def _emit(args: argparse.Namespace, event: str, data: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps({"event": event, **data}), flush=True)
    elif not args.quiet:
        print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    """Listen until SIGINT/SIGTERM."""
    require_listen_extra()
    from pipelines.listen.applier import ApplierSettings, FlushResult
    from pipelines.listen.receiver import VerifySettings
    from pipelines.listen.server import HEALTH_PATH, ListenSettings, run_listener
    from pipelines.listen.spool import SpoolError
    from pipelines.source.runner import SyncSettings

    _check_numbers(args)
    secret = resolve_secret(args)
    base_url, api_key = resolve_credentials(args)
    check_warehouse(args)  # before binding the port or touching the API
    warehouse = SyncSettings(
        base_url=base_url,
        api_key=api_key,
        duckdb_path=args.duckdb,
        destination=args.destination,
        dataset=args.dataset,
    )
    settings = ListenSettings(
        applier=ApplierSettings(
            warehouse=warehouse,
            flush_interval=args.flush_interval,
            batch_events=args.batch_events,
            trust_payload=args.trust_payload,
            lock_wait_s=args.lock_wait,
        ),
        verify=VerifySettings(
            secret=secret,
            header=args.signature_header,
            scheme=args.signature_scheme,
            tolerance_s=args.signature_tolerance,
        ),
        host=args.host,
        port=args.port,
        max_body=args.max_body,
    )

    def on_ready(url: str) -> None:
        health = url.split("/webhooks/", 1)[0] + HEALTH_PATH
        _emit(
            args,
            "listening",
            {"url": url, "health": health},
            f"lynkist listen: receiving on {url} (health: {health}); Ctrl-C to stop",
        )

    def on_flush(result: FlushResult) -> None:
        _emit(
            args,
            "flush",
            result.to_dict(),
            f"applied {result.events} event(s): {result.contacts} contact(s), "
            f"{result.written} row(s) written, {result.requests} request(s) "
            f"in {result.duration_s:.2f} s",
        )

    try:
        summary = run_listener(settings, on_ready=on_ready, on_flush=on_flush)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {args.port} is already in use; pick another with --port (0 = any free)"
            ) from None
        if isinstance(exc, SpoolError):
            raise UsageError(str(exc)) from None
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    except SpoolError as exc:
        raise UsageError(str(exc)) from None
    data = summary.to_dict()
    _emit(
        args,
        "stopped",
        data,
        f"lynkist listen: stopped — {data['stored']} stored, {data['duplicates']} duplicate(s), "
        f"{data['rejected']} rejected, {data['applied_events']} applied",
    )
    if summary.totals.failures and summary.totals.last_error and not args.json:
        print(f"lynkist listen: last flush error: {summary.totals.last_error}", file=sys.stderr)
    return EXIT_OK
