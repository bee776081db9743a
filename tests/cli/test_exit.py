"""How the ``lynkist`` process ends: at once, with exit handlers and profilers still served."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: A command that fails on its flags (exit 2) before any network or warehouse work.
BAD = ["sync", "--api-key", "k", "--max-concurrency", "0"]


def test_the_command_runs_exit_handlers_and_keeps_its_exit_code(tmp_path: Path) -> None:
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('handler ran', flush=True))\n"
        f"sys.argv = ['lynkist', *{BAD!r}]\n"
        "from pipelines.cli import main\n"
        "main()\n"
        "print('after main: the process should have ended', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "handler ran\n"
    assert "--max-concurrency must be at least 1" in done.stderr


def test_a_profiler_still_gets_to_write_its_results(tmp_path: Path) -> None:
    profile = tmp_path / "sync.prof"
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "pipelines.cli", *BAD],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert "--max-concurrency must be at least 1" in done.stderr  # (cProfile drops the code)
    assert profile.is_file() and profile.stat().st_size > 0
