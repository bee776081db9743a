"""Running a ``lynkist … --json`` command in its own interpreter, to see what it imported.

A start-up promise ("a no-change sync never imports dlt") only holds in a new process: the test
process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

#: The imports whose cost the quick paths avoid.
HEAVY_MODULES = ("dlt", "pandas")


def run_cli(args: Sequence[str], *, api_key: str) -> dict[str, Any]:
    """``lynkist ARGS`` (a ``--json`` command) in a new interpreter.

    Returns:
        The command's JSON summary, plus ``exit`` (its exit code) and ``imported`` (which of
        :data:`HEAVY_MODULES` it had imported by the end, sorted).
    """
    code = (
        "import json, sys\n"
        "from contextlib import redirect_stdout\n"
        "from io import StringIO\n"
        "from pipelines.cli import main\n"
        "out = StringIO()\n"
        "with redirect_stdout(out):\n"
        f"    code = main({list(args)!r})\n"
        "summary = json.loads(out.getvalue())\n"
        "summary['exit'] = code\n"
        f"summary['imported'] = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)\n"
        "print(json.dumps(summary))\n"
    )
    env = {**os.environ, "LYNKIST_API_KEY": api_key}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))
