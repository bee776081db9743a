"""The in-flight journal that makes a killed or interrupted push safe to run again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lynkist_sandbox import SandboxServer
from pipelines.client import LynkistClient
from pipelines.sink.journal import InflightJournal
from pipelines.sink.reconcile import settle_previous
from tests.sink.conftest import create_contacts


def test_journal_keeps_each_call_until_it_is_resolved(tmp_path: Path) -> None:
    path = tmp_path / "inflight.json"
    journal = InflightJournal(path)
    assert journal.pending() == []
    first = journal.begin("email", [("a@x.test", {"email": "a@x.test", "first_name": "A"})])
    second = journal.begin("email", [("b@x.test", {"email": "b@x.test", "first_name": "B"})])
    # another process (a new instance) sees both, with their rows
    calls = InflightJournal(path).pending()
    assert [c.call_id for c in calls] == [first, second]
    assert calls[0].rows[0].match_key == "a@x.test" and calls[0].match_on == "email"
    assert calls[0].rows[0].payload["first_name"] == "A"
    assert calls[0].sent_at <= calls[1].sent_at <= time.time()
    journal.resolve([first])
    assert [c.call_id for c in InflightJournal(path).pending()] == [second]
    journal.resolve([second])
    assert not path.exists()


def test_journal_reads_an_older_single_record_as_a_call_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "inflight.json"
    sent_at = time.time() - 5
    path.write_text(json.dumps({"sent_at": sent_at, "pid": 1}))
    (call,) = InflightJournal(path).pending()
    assert call.sent_at == sent_at and call.rows == ()
    path.write_text("{not json")
    (call,) = InflightJournal(path).pending()  # unreadable: a blind call sent just now
    assert call.rows == () and call.sent_at > sent_at


def test_journal_of_an_older_version_is_resolved_and_removed(tmp_path: Path) -> None:
    # an older version wrote one JSON object; this one appends lines to it
    path = tmp_path / "inflight.json"
    rows = [{"match_key": "a@x.test", "payload": {"first_name": "A"}}]
    calls = {"c1": {"sent_at": 1.0, "match_on": "email", "rows": rows}}
    calls["c2"] = {**calls["c1"], "sent_at": 2.0}
    path.write_text(json.dumps({"calls": calls}))
    journal = InflightJournal(path)
    assert [c.call_id for c in journal.pending()] == ["c1", "c2"]
    journal.resolve(["c1"])
    (left,) = InflightJournal(path).pending()
    assert left.call_id == "c2" and left.rows[0].match_key == "a@x.test"
    journal.resolve(["c2"])
    assert journal.pending() == [] and not path.exists()


class FakeClock:
    """Wall clock that only moves when the code under test sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _rows(emails: list[str]) -> list[tuple[str, dict[str, str]]]:
    return [(e, {"first_name": "X", "email": e}) for e in emails]


def test_settle_finds_the_rows_that_landed_and_waits_only_while_some_may_land(
    sb: SandboxServer, client: LynkistClient, tmp_path: Path
) -> None:
    create_contacts(client, [{"first_name": "X", "email": f"in{i}@x.test"} for i in range(3)])
    journal = InflightJournal(tmp_path / "inflight.json")
    landed = journal.begin("email", _rows([f"in{i}@x.test" for i in range(3)]))
    calls = journal.pending()
    clock = FakeClock(calls[0].sent_at + 1.0)

    # every row is there: settled at once, no waiting
    settled = settle_previous(client, calls, grace_s=30, sleep=clock.sleep, clock=clock.time)
    assert sorted(c["email"] for c in settled.found) == [f"in{i}@x.test" for i in range(3)]
    assert settled.calls == [landed] and settled.rows == 3 and clock.sleeps == []

    # one row never lands: looked up until the grace has passed, then confirmed absent
    journal.begin("email", _rows(["never@x.test"]))
    calls = journal.pending()
    clock = FakeClock(calls[-1].sent_at + 1.0)
    settled = settle_previous(
        client, calls, grace_s=5, poll_s=1.0, sleep=clock.sleep, clock=clock.time
    )
    assert sorted(c["email"] for c in settled.found) == [f"in{i}@x.test" for i in range(3)]
    assert settled.rows == 4
    assert sum(clock.sleeps) == pytest.approx(4.0) and len(clock.sleeps) == 4
    assert clock.now >= calls[-1].sent_at + 5  # never gave up before the grace


def test_settle_of_a_call_without_rows_waits_out_the_grace(
    sb: SandboxServer, client: LynkistClient, tmp_path: Path
) -> None:
    path = tmp_path / "inflight.json"
    path.write_text(json.dumps({"sent_at": 1000.0, "pid": 1}))  # an older version's record
    clock = FakeClock(1001.0)
    settled = settle_previous(
        client, InflightJournal(path).pending(), grace_s=3, sleep=clock.sleep, clock=clock.time
    )
    assert settled.found == [] and clock.now == pytest.approx(1003.0)
