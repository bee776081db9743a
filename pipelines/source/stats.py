"""Counters a sync fills while it runs, and the progress hook that reads them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.source.arrow import RecordProblem


@dataclass
class SyncStats:
    """What the contacts resource saw and decided, updated as it goes.

    Attributes:
        new: Contacts not in the warehouse before, emitted.
        updated: Known contacts whose ``updated_at`` (or ``created_at``) differs, emitted.
        restored: Contacts marked deleted in the warehouse that are live again (also counted in
            ``updated``).
        deleted: Contacts confirmed archived (404) and emitted with ``is_deleted = true``.
        unchanged: Contacts seen with the fingerprint the warehouse holds: not emitted.
        pages: Listing pages processed (over every pass).
        pages_total: Pages the current pass expects (for progress displays).
        scan_passes: Full scans of the listing (1, plus re-scans after page shifts).
        delete_candidates: Live warehouse contacts the scans did not see (checked one by one).
        rows_emitted: Rows handed to dlt.
        phase: ``"mirror"``, ``"scan"``, ``"confirm"`` or ``"done"``.
        conflict_ids: Contacts that changed again after this run emitted them (re-fetched by a
            follow-up load, so one load never carries two versions of a contact).
        problems: Values stored other than as the API sent them (also written to
            ``contacts_rejected``), one per contact and field.
        renamed: Unknown API fields stored under another column name (field -> column).
        resolved: Earlier problems this run found gone (contact fixed or archived).
        on_progress: Called (with this object) after every page and phase change.
    """

    new: int = 0
    updated: int = 0
    restored: int = 0
    deleted: int = 0
    unchanged: int = 0
    pages: int = 0
    pages_total: int = 0
    scan_passes: int = 0
    delete_candidates: int = 0
    rows_emitted: int = 0
    phase: str = "mirror"
    on_progress: Callable[[SyncStats], None] | None = field(default=None, repr=False, compare=False)
    conflict_ids: list[str] = field(default_factory=list, repr=False)
    problems: list[RecordProblem] = field(default_factory=list, repr=False)
    renamed: dict[str, str] = field(default_factory=dict, repr=False)
    resolved: int = 0

    def notify(self) -> None:
        """Tell the progress hook, if any, that the counters moved."""
        if self.on_progress is not None:
            self.on_progress(self)

    def set_phase(self, phase: str) -> None:
        """Enter a new phase and notify."""
        self.phase = phase
        self.notify()

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("on_progress", "conflict_ids", "problems")
        } | {"conflicts": len(self.conflict_ids), "problems": len(self.problems)}
