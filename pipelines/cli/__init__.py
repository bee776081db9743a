"""The ``lynkist`` command line: one module per sub-command.

Each sub-command module exposes ``add_parser(subparsers)`` (declares its flags) and
``run(args) -> int`` (does the work and returns the exit code). Exit codes follow the contract
in the README: 0 success, 1 failure, 2 bad configuration / credentials / arguments, 3 a push that
finished with rejected or failed rows, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).

Interruptions are handled here, once for every command: Ctrl-C raises ``KeyboardInterrupt`` and
SIGTERM raises :class:`Terminated` in the main thread; however deep it is caught and wrapped
(dlt turns it into ``PipelineStepFailed``, our commands into their own errors), the command
ends with one line saying what the next run will do, and no traceback, and the process ends
there (``os._exit`` after flushing: threads still waiting on a request must not hold it, and a
second signal during the interpreter's teardown must not print a traceback). A second signal
while the command is still unwinding ends it at once too (every journal a command keeps is
durable at each step, so nothing is lost by not unwinding further).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, NoReturn

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
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM

#: Commands whose normal way to stop is Ctrl-C (a server): they handle their signals themselves.
SELF_STOPPING = frozenset({"sandbox"})

#: What the next run does after an interrupted one, per command (the rest: just "interrupted").
ON_INTERRUPT: dict[str, str] = {
    "push": "the writes that were in flight are recorded; the next `lynkist push` checks which "
    "of them landed (waiting for late ones) before it sends anything again",
    "sync": "nothing half-written is kept; the next `lynkist sync` picks up where this one stopped",
}


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


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread, like ``KeyboardInterrupt`` for SIGINT).

    A ``BaseException`` so that ``except Exception`` blocks let it through, as they do Ctrl-C.
    """


def interruption_in(exc: BaseException) -> BaseException | None:
    """The ``KeyboardInterrupt`` / :class:`Terminated` an exception is, or wraps.

    Follows ``__cause__``, ``__context__`` and dlt's ``PipelineStepFailed.exception``.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, KeyboardInterrupt | Terminated):
            return current
        wrapped = getattr(current, "exception", None)
        pending.extend(
            [current.__cause__, current.__context__]
            + ([wrapped] if isinstance(wrapped, BaseException) else [])
        )
    return None


def reraise_interruption(exc: BaseException) -> None:
    """Raise the interruption an error wraps, so a command's error handler never swallows it.

    Commands call it first in their broad ``except Exception`` blocks.
    """
    interruption = interruption_in(exc)
    if interruption is not None:
        raise interruption from None


class _Signals:
    """SIGINT/SIGTERM handling of one command run (main thread only)."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.announced = False
        self.code: int | None = None
        self._previous: dict[int, Any] = {}

    def line(self) -> str:
        hint = ON_INTERRUPT.get(self.command)
        what = "terminated" if self.code == EXIT_TERMINATED else "interrupted"
        return f"lynkist {self.command}: {what}" + (f" — {hint}" if hint else "")

    def announce(self) -> None:
        if not self.announced:
            self.announced = True
            print(self.line(), file=sys.stderr, flush=True)

    def _first(self, signum: int, _frame: FrameType | None) -> None:
        self.code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
        # A second signal while the command unwinds: stop at once (see the module docstring).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._again)
        if signum == signal.SIGTERM:
            raise Terminated()
        raise KeyboardInterrupt()

    def force_exit_on_next_signal(self) -> None:
        """From now on a signal ends the process at once (the command is already unwinding).

        dlt intercepts the first signal itself while it runs a step and raises later: the
        second one can then reach our handler while the first is being reported.
        """
        if self._previous:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._again)

    def _again(self, _signum: int, _frame: FrameType | None) -> None:
        self.announce()
        _flush_and_exit(self.code or EXIT_INTERRUPTED)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if (
            threading.current_thread() is not threading.main_thread()
            or self.command in SELF_STOPPING
        ):
            yield
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._first)
        dlt_logger = logging.getLogger("dlt")
        dlt_logger.addFilter(self._before_signal)
        try:
            yield
        finally:
            dlt_logger.removeFilter(self._before_signal)
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)

    def _before_signal(self, _record: logging.LogRecord) -> bool:
        """Let dlt's log records through only until a signal arrives: after it, the one line
        on stderr is ours (dlt drains its load step and warns that the package was not fully
        loaded — true, and resumed by the next run, which is what our line says)."""
        if self.code is not None:
            return False
        # dlt takes the first signal itself while a step runs, and raises only after draining
        dlt_signals = sys.modules.get("dlt.common.runtime.signals")
        received = getattr(dlt_signals, "was_signal_received", None)
        return not (callable(received) and received())


def _exit_code(interruption: BaseException) -> int:
    """143 for SIGTERM (ours, or dlt's ``SignalReceivedException`` carrying it), else 130."""
    if isinstance(interruption, Terminated):
        return EXIT_TERMINATED
    if getattr(interruption, "signal_code", None) == signal.SIGTERM:
        return EXIT_TERMINATED
    return EXIT_INTERRUPTED


def _flush_and_exit(code: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _end_process(code: int) -> None:
    """End the ``lynkist`` process now that the command is done, skipping the teardown.

    Freeing every object of dlt, pyarrow and DuckDB one by one when the interpreter exits
    costs 0.3-0.5 s of a sync's wall time (measured: no system call in between) and does
    nothing for the user: the command has closed its files and connections. The exit handlers
    (logging, temporary files, libraries' own) still run first. Returns without ending the
    process when a non-daemon thread is still alive (the interpreter would wait for it), or
    when a profiler or tracer is attached (``python -m cProfile``, a debugger: they write their
    results after the program returns).
    """
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    current = threading.current_thread()
    if current is not threading.main_thread() or any(
        t is not current and not t.daemon and t.is_alive() for t in threading.enumerate()
    ):
        return
    atexit._run_exitfuncs()  # what the interpreter runs first on its way out
    _flush_and_exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lynkist`` console script (which it ends: see :func:`_end_process`)."""
    threshold = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        code = _main(argv)
    finally:
        gc.set_threshold(*threshold)  # main() also runs inside other processes (tests)
    if argv is None:  # the console script (or python -m pipelines.cli), not a caller's process
        _end_process(code)
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(tokens)
    except _ArgumentError as exc:
        return _fail(exc.prog, str(exc), "--json" in tokens)
    as_json = bool(getattr(args, "json", False))
    signals = _Signals(args.command)
    code = EXIT_OK
    with signals.installed():
        try:
            code = int(args.func(args))
        except UsageError as exc:
            code = _fail(f"lynkist {args.command}", str(exc), as_json, EXIT_USAGE)
        except CommandFailed as exc:
            code = _fail(f"lynkist {args.command}", str(exc), as_json, EXIT_FAILURE)
        except BaseException as exc:
            interruption = interruption_in(exc)
            if interruption is None:
                raise
            signals.force_exit_on_next_signal()
            signals.code = signals.code or _exit_code(interruption)
            signals.announce()
        if signals.code is not None:
            signals.announce()  # caught and turned into an error somewhere: still one line
            if as_json:
                print(json.dumps({"ok": False, "error": "interrupted", "exit_code": signals.code}))
            # End here: worker threads still waiting on requests would hold the exit for up to
            # the client's timeout (the journal already records what they sent), and a second
            # Ctrl-C during the interpreter's teardown would print a traceback.
            _flush_and_exit(signals.code)
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
