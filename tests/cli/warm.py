"""A pre-warmed ``python -m pipelines.cli``: fork a fresh process per command, skip the imports.

Each ``lynkist`` process spends ~2.5 s of CPU importing dlt, pandas and DuckDB before it looks at
its arguments; twenty configuration mistakes would cost a minute. This zygote imports them once,
then forks one child per command. The child is an ordinary process of its own (working
directory, environment, stdout/stderr files, exit status) and runs ``pipelines.cli.__main__``
through :mod:`runpy` exactly as ``python -m pipelines.cli`` does, uncaught exceptions reaching
the interpreter's default hook (a traceback on stderr, exit 1) as they would there.

Protocol: one JSON request per stdin line ``{"id", "argv", "env", "cwd", "stdout", "stderr"}``;
one JSON answer per stdout line ``{"id", "returncode", "seconds"}`` when that child has exited.
At most ``--jobs`` children run at once. Fork is safe here because the zygote never starts a thread.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import runpy
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

#: What the sub-commands import lazily inside ``run``: loaded once, before any fork.
PRELOAD = (
    "pipelines.cli.push",
    "pipelines.cli.sandbox",
    "pipelines.cli.sync",
    "pipelines.client",
    "lynkist_sandbox.config",
    "lynkist_sandbox.faults",
    "pipelines.sink",
    "pipelines.sink.journal",
    "pipelines.source.runner",
    "transforms.csv_io",
    "transforms.mapping",
    "dlt",
    "duckdb",
    "pandas",
)


def _child(request: dict[str, Any]) -> None:
    """Become ``python -m pipelines.cli ARGV`` and exit with its status (never returns)."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        sys.argv = ["lynkist", *request["argv"]]
        try:
            runpy.run_module("pipelines.cli", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream must not hide the status
                stream.flush()
        os._exit(code)


def serve(jobs: int) -> None:
    """Fork a child per request line; answer each exit status as it comes."""
    running: dict[int, tuple[str, float]] = {}

    def reap_one() -> None:
        pid, status = os.wait()
        name, started = running.pop(pid)
        answer = {
            "id": name,
            "returncode": os.waitstatus_to_exitcode(status),
            "seconds": round(time.monotonic() - started, 3),
        }
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        while len(running) >= jobs:
            reap_one()
        if threading.active_count() != 1:
            raise RuntimeError("the zygote started a thread: forking it would be unsafe")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        running[pid] = (request["id"], time.monotonic())
    while running:
        reap_one()


def run_commands(
    requests: list[dict[str, Any]], *, jobs: int = 2, timeout: float = 240
) -> dict[str, int]:
    """Run ``lynkist`` command lines through a fresh zygote; ``{id: exit status}``.

    Args:
        requests: ``{"id", "argv", "env", "cwd", "stdout", "stderr"}`` per command.
        jobs: Commands running at once.
        timeout: Seconds for the whole batch.
    """
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.cli.warm", "--jobs", str(jobs)],
        input="".join(json.dumps(request) + "\n" for request in requests),
        capture_output=True,
        text=True,
        cwd=repo,
        env=env,
        timeout=timeout,
        check=True,
    )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    return {answer["id"]: answer["returncode"] for answer in answers}


def main() -> None:
    """Preload, then serve requests until stdin closes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    jobs = parser.parse_args().jobs
    for name in PRELOAD:
        __import__(name)
    serve(jobs)


if __name__ == "__main__":
    main()
