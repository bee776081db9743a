"""When the applier flushes: as soon as events wait, at most once per interval (start to start)."""

from __future__ import annotations

import math

from pipelines.listen.applier import MIN_GAP_S, next_flush_due


def _due(start: float, end: float, waiting: int, backlog: bool = False) -> float | None:
    return next_flush_due(
        start, end, waiting=waiting, backlog=backlog, interval=1.0, batch_events=1000
    )


def test_nothing_waiting_means_no_flush() -> None:
    assert _due(10.0, 10.5, waiting=0) is None


def test_the_interval_counts_from_the_previous_start_not_its_end() -> None:
    # a 0.6 s flush started at 10.0: the next may start at 11.0, not 11.6
    assert _due(10.0, 10.6, waiting=3) == 11.0


def test_an_event_after_a_quiet_spell_is_flushed_at_once() -> None:
    # the last flush ended at 10.5; an event stored at 100.0 is due at once, not at 101.0
    due = _due(10.0, 10.5, waiting=1)
    assert due is not None and due <= 100.0
    assert _due(-math.inf, -math.inf, waiting=1) == -math.inf  # no flush yet


def test_a_full_batch_or_a_backlog_goes_right_after_a_short_gap() -> None:
    assert _due(10.0, 10.5, waiting=1000) == 10.5 + MIN_GAP_S
    assert _due(10.0, 10.5, waiting=0, backlog=True) == 10.5 + MIN_GAP_S


def test_readers_always_get_a_gap_between_flushes() -> None:
    # a flush longer than the interval: the next one waits MIN_GAP_S after its end
    assert _due(10.0, 11.4, waiting=5) == 11.4 + MIN_GAP_S
