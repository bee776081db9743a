"""Running one measured job in a child process and reading back its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class JobResult:
    """What a child job reported, plus what the parent measured around it."""

    name: str
    wall_s: float
    peak_rss_mb: float
    output: dict[str, Any]


class JobFailed(RuntimeError):
    """A benchmark job exited non-zero; the message carries its stderr tail."""


def run_job(name: str, workdir: Path, **params: Any) -> JobResult:
    """Run ``benchmarks.jobs <name>`` with ``params`` and measure wall time and peak RSS.

    Args:
        name: Job name, a function in ``benchmarks.jobs.JOBS``.
        workdir: Working directory of the child (warehouses and files land there).
        **params: JSON-serialisable keyword arguments for the job.

    Returns:
        The job's JSON output with the parent's measurements.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "benchmarks.jobs", name, json.dumps(params)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    stdout, stderr = proc.communicate()
    # communicate() already reaped the child; its rusage is in RUSAGE_CHILDREN only as a max
    # over all children, so the job reports its own peak RSS from inside (see jobs.py).
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise JobFailed(f"job {name} exited {proc.returncode}: {stderr[-2000:]}")
    last = stdout.strip().splitlines()[-1]
    output = json.loads(last)
    return JobResult(name, wall, float(output.pop("peak_rss_mb", 0.0)), output)
