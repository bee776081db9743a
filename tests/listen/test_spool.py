"""The spool on a real SQLite file: durable, deduplicating, replayable, prunable."""

from __future__ import annotations

from pathlib import Path

from pipelines.listen.spool import Spool, SpooledEvent, utc_now_iso


def _event(event_id: str, contact: str = "c1") -> SpooledEvent:
    return SpooledEvent(
        0, event_id, "contact.updated", "acme", contact, utc_now_iso(), utc_now_iso(), "{}"
    )


def test_ids_are_unique_and_pending_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path)
    assert spool.add(_event("e1")) and spool.add(_event("e2"))
    assert not spool.add(_event("e1"))  # a retry of an event already stored
    spool.close()
    reopened = Spool(path)
    pending = reopened.pending(10)
    assert [e.event_id for e in pending] == ["e1", "e2"]
    reopened.mark_applied([pending[0].seq])
    assert [e.event_id for e in reopened.pending(10)] == ["e2"]
    assert reopened.pending_count() == 1
    assert not reopened.add(_event("e1"))  # applied, still a duplicate
    assert reopened.prune(keep_s=3600) == 0  # applied just now: kept
    assert reopened.prune(keep_s=-1) == 1  # older than the horizon: pruned, e2 still pending
    assert [e.event_id for e in reopened.pending(10)] == ["e2"]
    reopened.close()
