"""``lynkist sandbox``: serve a Lynkist-compatible API on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.cli import EXIT_OK, UsageError
from pipelines.contact import API_BASE_PATH

if TYPE_CHECKING:  # rich on use: every other command builds this parser too
    from rich.console import Console

DEFAULT_PORT = 8765
RETRY_AFTER_CHOICES = ("seconds", "http-date", "mixed", "none")


def require_sandbox_extra() -> None:
    """Fail with one line when the optional sandbox extra (FastAPI, uvicorn, Faker) is missing.

    Raises:
        UsageError: naming the extra to install.
    """
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "faker") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"the sandbox is an optional extra ({', '.join(missing)} not installed): "
            "pip install 'lynkist-etl[sandbox]'"
        )


def tcp_port(value: str) -> int:
    """argparse type of ``--port``: an integer 0-65535 (a bigger one overflows in ``bind``)."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0-65535; 0 = any free)")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the sandbox flags (shared with ``python -m lynkist_sandbox``)."""
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=tcp_port,
        default=DEFAULT_PORT,
        help=f"TCP port, 0 = any free (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--db", metavar="FILE", help="SQLite file to keep data in (default: memory)"
    )
    parser.add_argument(
        "--seed-contacts", type=int, default=0, metavar="N", help="demo contacts for tenant acme"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the demo data")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, metavar="X", help="delay added to every request"
    )
    parser.add_argument(
        "--rate-limit", type=float, metavar="R", help="requests/s per API key (default: off)"
    )
    parser.add_argument("--burst", type=int, metavar="B", help="token bucket size (default: R)")
    parser.add_argument(
        "--retry-after",
        choices=RETRY_AFTER_CHOICES,
        default="seconds",
        help="Retry-After style on 429 (default: seconds)",
    )
    parser.add_argument(
        "--faults",
        metavar="SPEC",
        help="fault injection, e.g. "
        '"5xx=0.1,429=0.1,drop=0.02,after_commit=0.05,slow=0.05:4000,seed=7"; '
        "commit_delay_ms=MS commits every write only after MS, even if the client went",
    )
    parser.add_argument(
        "--idempotent-bulk",
        action="store_true",
        help="honour Idempotency-Key on POST /contacts/bulk too",
    )
    parser.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="webhook receiver (repeatable)",
    )
    parser.add_argument(
        "--webhook-secret", default=None, metavar="SECRET", help="webhook HMAC secret"
    )
    parser.add_argument(
        "--info-file", metavar="F", help="write base URL, keys and admin token here as JSON"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    parser.add_argument("--config-file", help=argparse.SUPPRESS)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sandbox`` sub-command."""
    parser = subparsers.add_parser(
        "sandbox",
        help="serve a Lynkist-compatible API locally",
        description="Serve a Lynkist-compatible Contacts API on 127.0.0.1 (SQLite storage), "
        "with demo tenants and keys, until Ctrl-C.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """Build a ``SandboxConfig`` from parsed flags.

    Raises:
        UsageError: On invalid values.
    """
    from lynkist_sandbox.config import SandboxConfig
    from lynkist_sandbox.faults import FaultSpec
    from lynkist_sandbox.server import config_from_json

    if args.config_file:
        try:
            return config_from_json(Path(args.config_file).read_text())
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"cannot read --config-file {args.config_file}: {exc}") from None
    if args.seed_contacts < 0:
        raise UsageError(f"--seed-contacts must be ≥ 0, got {args.seed_contacts}")
    if args.latency_ms < 0:
        raise UsageError(f"--latency-ms must be ≥ 0, got {args.latency_ms}")
    if args.rate_limit is not None and args.rate_limit <= 0:
        raise UsageError(f"--rate-limit must be > 0 requests/s, got {args.rate_limit}")
    if args.burst is not None and args.burst < 1:
        raise UsageError(f"--burst must be ≥ 1, got {args.burst}")
    try:
        faults = FaultSpec.parse(args.faults) if args.faults else FaultSpec()
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}") from None
    config = SandboxConfig(
        db_path=args.db,
        seed_contacts=args.seed_contacts,
        seed=args.seed,
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        burst=args.burst,
        retry_after=args.retry_after,
        faults=faults,
        idempotent_bulk=args.idempotent_bulk,
        webhook_urls=list(args.webhook),
    )
    if args.webhook_secret:
        config.webhook_secret = args.webhook_secret
    return config


def print_banner(info: dict[str, Any], console: Console) -> None:
    """Print how to reach the sandbox: base URL, keys, admin token, a ready curl line."""
    base = info["base_url"]
    console.print(f"[bold green]Lynkist sandbox[/] listening on [bold]{base}[/]")
    # One key per line, never truncated: a key cut to the terminal's width is no key at all.
    from rich.table import Table

    table = Table("tenant", "scope", "API key", title="API keys")
    table.columns[2].no_wrap = True
    scopes = {"rw": "read+write", "ro": "read", "wo": "write"}
    for tenant, keys in info["keys"].items():
        for kind, label in scopes.items():
            if kind in keys:
                table.add_row(tenant, label, keys[kind])
    console.print(table, soft_wrap=True)
    console.print(f"admin token (header X-Sandbox-Admin): {info['admin_token']}")
    key = info["keys"]["acme"]["rw"]
    url = shlex.quote(f"{base}{API_BASE_PATH}?page=1&limit=5")
    console.print("Try:", style="bold")
    console.print(f'curl {url} -H "Authorization: Bearer {key}"', soft_wrap=True, highlight=False)
    console.print(f"OpenAPI: {base}/openapi.json · docs: {base}/docs · Ctrl-C to stop")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    require_sandbox_extra()
    from lynkist_sandbox.server import serve

    config = config_from_args(args)
    from rich.console import Console

    console = Console()

    def on_ready(info: dict[str, Any]) -> None:
        if not args.quiet:
            print_banner(info, console)

    try:
        serve(config, host=args.host, port=args.port, info_file=args.info_file, on_ready=on_ready)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {args.port} is already in use; pick another with --port (0 = any free)"
            ) from None
        # no permission for a low port, an address that is not this machine's, a bad name
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}) — check --host "
            "and --port"
        ) from None
    except KeyboardInterrupt:
        pass
    if not args.quiet:
        console.print("sandbox stopped")
    return EXIT_OK
