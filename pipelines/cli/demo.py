"""``lynkist demo``: sandbox + sync + incremental sync + push + report, in one command."""

from __future__ import annotations

import argparse

from pipelines.cli import EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Declare ``lynkist demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole product on a throwaway local setup",
        description=(
            "Start a sandbox with seeded contacts, sync them, change a few on the server and "
            "sync again, push a sample HubSpot export, and build the report. Everything lands "
            "in --dir, which is recreated on every run; no process is left running."
        ),
    )
    parser.add_argument(
        "--dir", default="lynkist-demo", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--contacts",
        type=int,
        default=3000,
        help="contacts seeded into the sandbox (default: %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from pipelines.cli.sandbox import require_sandbox_extra

    require_sandbox_extra()
    from pipelines.demo import run_demo

    run_demo(args.dir, contacts=args.contacts)
    return EXIT_OK
