"""The sandbox's clock: UTC, shiftable by the admin API to simulate skew and late commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def format_ts(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and ``Z``: ``2026-05-12T08:00:00.123456Z``.

    One fixed width, so stored timestamps also sort correctly as text.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_ts(value: str | datetime | None) -> str | None:
    """Any ISO-8601 timestamp (or datetime) in the sandbox's fixed format; naive means UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_ts(value)


class Clock:
    """Wall-clock UTC plus an adjustable offset."""

    def __init__(self) -> None:
        """Start with no offset."""
        self.offset_seconds = 0.0

    def now(self) -> datetime:
        """The server's current time (offset applied)."""
        return datetime.now(UTC) + timedelta(seconds=self.offset_seconds)

    def now_iso(self) -> str:
        """The server's current time, formatted like every timestamp it serves."""
        return format_ts(self.now())
