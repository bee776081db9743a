"""The ``lynkist`` command line: one module per sub-command.

Each sub-command module exposes ``add_parser(subparsers)`` (declares its flags) and
``run(args) -> int`` (does the work and returns the exit code). Exit codes follow the contract
in the README: 0 success, 1 failure, 2 bad configuration / credentials / arguments, 3 a push that
finished with rejected or failed rows.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from pipelines import __version__

#: Young-generation GC threshold of the ``lynkist`` process. Python's default (700 net
#: allocations) runs ~500 collections in one 20,000-contact sync, scanning the large module graph
#: dlt, pyarrow and pandas leave behind: ~10% of its CPU. Our data holds no reference cycles
#: worth collecting early; measured peak RSS is the same at 50,000.
GC_THRESHOLD = (50_000, 20, 20)

#: Sub-command name -> module implementing it (imported when the parser is built; each keeps
#: its heavy imports inside ``run`` so ``lynkist --help`` stays fast).
COMMANDS: dict[str, str] = {
    "sandbox": "pipelines.cli.sandbox",
    "sync": "pipelines.cli.sync",
    "push": "pipelines.cli.push",
    "listen": "pipelines.cli.listen",
    "report": "pipelines.cli.report",
    "demo": "pipelines.cli.demo",
}

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_ROWS_FAILED = 3


class UsageError(Exception):
    """A user mistake (bad flag, missing key, unwritable path): message shown, exit code 2."""


class CommandFailed(Exception):
    """The command ran and failed (API down after retries, warehouse error): exit code 1."""


class _ArgumentError(Exception):
    """argparse refused the command line: which (sub-)command, and its one-line message."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are one line (like every other error of ours), not a usage dump.

    Sub-command parsers inherit the class (``add_subparsers`` uses the parent's type).
    """

    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(self.prog, f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    parser = _Parser(
        prog="lynkist",
        description="Lynkist connector: sandbox API, incremental sync, reverse ETL, reports.",
    )
    parser.add_argument("--version", action="version", version=f"lynkist-etl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lynkist`` console script."""
    threshold = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        return _main(argv)
    finally:
        gc.set_threshold(*threshold)  # main() also runs inside other processes (tests)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(tokens)
    except _ArgumentError as exc:
        return _fail(exc.prog, str(exc), "--json" in tokens)
    as_json = bool(getattr(args, "json", False))
    try:
        code = int(args.func(args))
    except UsageError as exc:
        code = _fail(f"lynkist {args.command}", str(exc), as_json, EXIT_USAGE)
    except CommandFailed as exc:
        code = _fail(f"lynkist {args.command}", str(exc), as_json, EXIT_FAILURE)
    except KeyboardInterrupt:
        print(f"lynkist {args.command}: interrupted", file=sys.stderr)
        code = 130
    return code


def _fail(prog: str, message: str, as_json: bool, code: int = EXIT_USAGE) -> int:
    """Say what went wrong in one line on stderr; with ``--json`` also one object on stdout.

    The JSON object keeps a log of one JSON line per run parseable when a run fails.
    """
    print(f"{prog}: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"ok": False, "error": message, "exit_code": code}))
    return code


if __name__ == "__main__":
    sys.exit(main())
