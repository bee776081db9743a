"""``--all`` / ``--tenant`` / ``--config``: the many-tenant side of ``lynkist sync`` and ``push``.

Kept apart from the single-tenant code paths: ``sync`` and ``push`` only declare these flags
(:func:`add_tenant_arguments`) and hand over when one is used.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pipelines.cli import EXIT_FAILURE, EXIT_OK, UsageError
from pipelines.tenants import DEFAULT_CONFIG, DEFAULT_MAX_CONCURRENCY

#: Single-tenant flags whose value a tenants file provides instead.
_FROM_CONFIG = ("base_url", "api_key", "duckdb", "destination", "dataset")


def add_tenant_arguments(parser: argparse.ArgumentParser, *, many: bool) -> None:
    """Declare ``--tenant NAME`` and ``--config FILE`` (and ``--all`` when ``many``)."""
    group = parser.add_argument_group(
        "many tenants",
        f"tenants are listed in a TOML file ({DEFAULT_CONFIG} in the working directory unless "
        "--config says otherwise): [defaults] base_url/duckdb/destination/max_concurrency, and "
        "one [[tenants]] entry per tenant with name, api_key_env (the variable holding its "
        "key) and optional dataset (default: the name)"
        + (
            "; --max-concurrency is then the budget over all tenants (default: [defaults] "
            f"max_concurrency, else {DEFAULT_MAX_CONCURRENCY}; 8 requests per tenant)"
            if many
            else ""
        ),
    )
    if many:
        group.add_argument(
            "--all", action="store_true", help="sync every tenant of the tenants file"
        )
        group.add_argument(
            "--tenant",
            action="append",
            metavar="NAME",
            help="sync this tenant of the tenants file (repeatable)",
        )
    else:
        group.add_argument("--tenant", metavar="NAME", help="use this tenant of the tenants file")
    group.add_argument(
        "--config",
        metavar="FILE",
        help=f"tenants file (default: {DEFAULT_CONFIG} in the working directory)",
    )
    # Declared last: tells a flag the user gave from the single-tenant default it still has.
    parser.set_defaults(
        single_defaults={
            name: parser.get_default(name) for name in (*_FROM_CONFIG, "max_concurrency")
        }
    )


def wants_tenants(args: argparse.Namespace) -> bool:
    """Whether the command runs from the tenants file (``--all``, ``--tenant``).

    Raises:
        UsageError: ``--config`` without ``--all`` or ``--tenant``.
    """
    many = bool(getattr(args, "all", False) or args.tenant)
    if args.config is not None and not many:
        raise UsageError("--config needs --all or --tenant NAME")
    return many


def _given(args: argparse.Namespace, name: str) -> Any:
    """The flag's value if the user gave one (differs from its single-tenant default)."""
    value = getattr(args, name, None)
    return None if value == args.single_defaults.get(name) else value


def _check_flags(args: argparse.Namespace) -> None:
    for name in _FROM_CONFIG:
        if _given(args, name) is not None:
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"{flag} cannot be combined with --all/--tenant: the tenants file sets it "
                "([defaults] or the tenant's entry)"
            )


def load_config(args: argparse.Namespace) -> Any:
    """The tenants file named by ``--config`` (or the default), as a usage error if bad."""
    from pipelines.tenants import TenantConfigError, load_tenants_config

    _check_flags(args)
    try:
        return load_tenants_config(args.config or DEFAULT_CONFIG)
    except TenantConfigError as exc:
        raise UsageError(str(exc)) from None


def run_sync_tenants(args: argparse.Namespace) -> int:
    """``lynkist sync --all`` / ``--tenant``: one summary row per tenant."""
    from pipelines.fleet import sync_tenants
    from pipelines.tenants import TenantConfigError

    if args.all and args.tenant:
        raise UsageError("give either --all or --tenant NAME, not both")
    budget = _given(args, "max_concurrency")
    if budget is not None and budget < 1:
        raise UsageError("--max-concurrency must be at least 1")
    config = load_config(args)
    try:
        tenants = config.select(None if args.all else args.tenant)
        keys = config.api_keys(tenants)
    except TenantConfigError as exc:
        raise UsageError(str(exc)) from None
    results = sync_tenants(
        config,
        tenants,
        keys,
        max_concurrency=budget,
        full_refresh=args.full_refresh,
        timeout=args.timeout,
        max_delete_share=args.max_delete_share,
        on_done=_live_line(len(tenants)) if not (args.quiet or args.json) else None,
    )
    if args.json:
        for result in results:
            print(json.dumps(result.to_dict()))
    elif not args.quiet:
        _print_table(results)
    if args.quiet and not args.json:
        import sys

        for result in results:
            if not result.ok:
                print(f"lynkist sync: tenant {result.tenant}: {result.error}", file=sys.stderr)
    return EXIT_OK if all(result.ok for result in results) else EXIT_FAILURE


def _live_line(total: int) -> Any:
    """On a terminal, one stderr line per tenant as it finishes (a long run shows progress)."""
    import sys
    import threading

    if not sys.stderr.isatty():
        return None
    lock = threading.Lock()
    done = 0

    def report(result: Any) -> None:
        nonlocal done
        with lock:
            done += 1
            status = "ok" if result.ok else f"failed: {result.error}"
            print(f"[{done}/{total}] {result.tenant}: {status}", file=sys.stderr, flush=True)

    return report


def _print_table(results: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="lynkist sync", title_justify="left")
    for column in ("tenant", "dataset", "status", "new", "updated", "deleted", "unchanged"):
        if column in _TEXT:  # names are never cut short, however narrow the terminal
            table.add_column(column, overflow="fold", min_width=min(len(column), 6))
        else:
            table.add_column(column, justify="right")
    table.add_column("rows written", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("error", overflow="fold")
    for result in results:
        s = result.summary
        counts = (
            [f"{v:,}" for v in (s.new, s.updated, s.deleted, s.unchanged, s.rows_written)]
            if s is not None
            else [""] * 5
        )
        table.add_row(
            result.tenant,
            result.dataset,
            "ok" if result.ok else "[red]failed[/]",
            *counts,
            f"{result.duration_s:.1f} s",
            result.error or "",
        )
    console = Console()
    console.print(table)
    failed = sum(1 for r in results if not r.ok)
    console.print(
        f"{len(results) - failed} of {len(results)} tenants synced"
        + (f", {failed} failed" if failed else "."),
        highlight=False,
    )


_TEXT = ("tenant", "dataset", "status")


def push_connection(args: argparse.Namespace) -> dict[str, Any]:
    """Where ``lynkist push --tenant NAME`` goes: base_url, api_key, duckdb, dataset."""
    from pipelines.tenants import TenantConfigError

    config = load_config(args)
    try:
        tenant = config.get(args.tenant)
        key = config.api_key(tenant)
    except TenantConfigError as exc:
        raise UsageError(str(exc)) from None
    return {
        "base_url": config.defaults.base_url,
        "api_key": key,
        "duckdb": str(config.defaults.duckdb),
        "destination": config.defaults.destination,
        "dataset": tenant.dataset,
    }
