"""Running one measured process (a benchmark job or the real ``lynkist`` command) and reading it.

Every measurement is of a whole child process, interpreter start included, as a user or cron
pays for it: the parent times it from spawn to exit and reads its peak RSS from ``wait4`` (the
rusage of that one child, not a maximum over all children).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ProcessResult:
    """One child process: what the parent measured around it, and what it printed.

    Attributes:
        name: Job or command name.
        wall_s: Spawn to exit, interpreter start and imports included.
        peak_rss_mb: The child's peak resident set size.
        returncode: Its exit code.
        output: The JSON object it printed last (``{}`` when none).
        stderr: The tail of its standard error.
    """

    name: str
    wall_s: float
    peak_rss_mb: float
    returncode: int
    output: dict[str, Any] = field(default_factory=dict)
    stderr: str = ""


#: Kept for the jobs' callers: a job result is a process result.
JobResult = ProcessResult


class JobFailed(RuntimeError):
    """A benchmark job exited non-zero; the message carries its stderr tail."""


def _run(name: str, cmd: list[str], workdir: Path, env: dict[str, str]) -> ProcessResult:
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    output: dict[str, Any] = {}
    lines = stdout.strip().splitlines()
    if lines:
        try:
            parsed = json.loads(lines[-1])
            output = parsed if isinstance(parsed, dict) else {}
        except json.JSONDecodeError:
            output = {}
    # ru_maxrss is in KiB on Linux
    return ProcessResult(
        name, wall, usage.ru_maxrss / 1024, proc.returncode, output, stderr[-2000:]
    )


def run_job(name: str, workdir: Path, **params: Any) -> ProcessResult:
    """Run ``benchmarks.jobs <name>`` with ``params`` in a child process and measure it.

    Args:
        name: Job name, a function in ``benchmarks.jobs.JOBS``.
        workdir: Working directory of the child (warehouses and files land there).
        **params: JSON-serialisable keyword arguments for the job.

    Raises:
        JobFailed: The job exited non-zero.
    """
    cmd = [sys.executable, "-m", "benchmarks.jobs", name, json.dumps(params)]
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    result = _run(name, cmd, workdir, env)
    if result.returncode != 0:
        raise JobFailed(f"job {name} exited {result.returncode}: {result.stderr}")
    return result


def lynkist_command() -> str:
    """The installed ``lynkist`` console script (the one beside this interpreter first)."""
    beside = Path(sys.executable).parent / "lynkist"
    found = str(beside) if beside.exists() else shutil.which("lynkist")
    if not found:
        raise JobFailed("the lynkist command is not installed (run `make install`)")
    return found


def run_cli(name: str, args: list[str], workdir: Path, *, api_key: str) -> ProcessResult:
    """Run the real ``lynkist`` command as a user or cron would, and measure it.

    The key travels in ``LYNKIST_API_KEY`` (as documented), not on the command line. A non-zero
    exit is a result here, not an error: the caller decides whether the goal was met.
    """
    env = {**os.environ, "LYNKIST_API_KEY": api_key}
    env.pop("PYTHONPATH", None)  # the installed command, exactly as a user runs it
    return _run(name, [lynkist_command(), *args], workdir, env)
