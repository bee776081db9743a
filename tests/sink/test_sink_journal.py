"""The in-flight journal that makes a killed push safe to run again."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipelines.sink.journal import InflightJournal


def test_journal_waits_out_a_recent_bulk_call_of_a_killed_run(tmp_path: Path) -> None:
    journal = InflightJournal(tmp_path / "inflight.json")
    assert journal.wait_for_previous(5.0) == 0.0  # clean state: no wait
    journal.mark_sent()
    started = time.monotonic()
    waited = InflightJournal(tmp_path / "inflight.json").wait_for_previous(0.3)
    assert 0.0 < waited <= 0.3
    assert time.monotonic() - started >= waited - 0.01
    journal.clear()
    assert journal.previous_sent_at() is None


def test_journal_ignores_an_old_record(tmp_path: Path) -> None:
    path = tmp_path / "inflight.json"
    path.write_text(json.dumps({"sent_at": time.time() - 60, "pid": 1}))
    assert InflightJournal(path).wait_for_previous(30.0) == 0.0
