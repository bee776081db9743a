"""Package-level defaults of ``pipelines``."""

from __future__ import annotations

import subprocess
import sys

RUN_A_PIPELINE = """
import tempfile
import pipelines  # noqa: F401  (sets the defaults)
import dlt
from dlt.common.runtime import anon_tracker

workdir = tempfile.mkdtemp()
pipeline = dlt.pipeline(
    "probe", destination=dlt.destinations.duckdb(workdir + "/p.duckdb"), pipelines_dir=workdir
)
pipeline.run([{"a": 1}], table_name="t")
print(anon_tracker._ANON_TRACKER_ENDPOINT)
"""
READ_THE_SETTING = "import os, pipelines; print(os.environ['RUNTIME__DLTHUB_TELEMETRY'])"
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}


def _last_line(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def test_dlt_telemetry_is_off_by_default() -> None:
    # A fresh process: dlt decides about telemetry once, at its first pipeline. No endpoint
    # means no event is ever sent.
    assert _last_line(RUN_A_PIPELINE, ENV) == "None"


def test_a_users_own_telemetry_setting_wins() -> None:
    assert _last_line(READ_THE_SETTING, {**ENV, "RUNTIME__DLTHUB_TELEMETRY": "true"}) == "true"
