"""The demo tells what it does: the sample contacts it adds, and what the report step wrote."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from pipelines.demo import SHARED_SAMPLE_ROWS, run_demo


@pytest.mark.slow
def test_demo_says_what_it_adds_and_what_the_report_wrote(tmp_path: Path) -> None:
    buffer = io.StringIO()
    result = run_demo(tmp_path / "demo", contacts=40, console=Console(file=buffer, width=200))
    out = buffer.getvalue()
    assert (
        f"added {SHARED_SAMPLE_ROWS} contacts of the sample export on top of the 40 seeded" in out
    )
    report_step = out.split("5. Report")[1]
    assert f"wrote {result.report_html}" in report_step
    assert f"{len(result.charts)} charts" in report_step and result.charts
