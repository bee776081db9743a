"""Crash recovery: complete the load packages an interrupted run left behind — or set aside one
that keeps failing, so it never blocks the warehouse."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.warehouse.errors import WarehouseError

if TYPE_CHECKING:
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

__all__ = [
    "MAX_RESUMES",
    "PENDING_DIRS",
    "PendingLoadError",
    "PendingOutcome",
    "failure_reason",
    "finish_pending",
    "has_pending_packages",
    "start_clean",
]

#: Failed attempts to finish a load package left by an earlier run before it is set aside.
MAX_RESUMES = 2
_FAILURES_FILE = "lynkist_resume_failures.json"
#: Directories of dlt's pipeline working directory that hold packages not loaded yet (what
#: :func:`finish_pending` completes).
PENDING_DIRS = (("normalize", "extracted"), ("load", "new"), ("load", "normalized"))
_TRACEBACK = "Traceback (most recent call last):"


class PendingLoadError(WarehouseError):
    """Packages an earlier run left could not be loaded (yet); the run stopped before syncing."""


@dataclass
class PendingOutcome:
    """What happened to the load packages an earlier run left behind.

    Attributes:
        loaded: Packages loaded now.
        set_aside: One message per package set aside (failed ``MAX_RESUMES`` times, or
            dropped unloaded by a full refresh).
    """

    loaded: int = 0
    set_aside: list[str] = field(default_factory=list)


def failure_reason(exc: PipelineStepFailed) -> str:
    """One line for a failed step: ``dlt <step> step failed: <Type>: <message>``.

    A failed load job's message quotes the job's whole traceback; only its last exception line
    is kept (no frames, no module path).
    """
    inner = exc.__cause__ or exc.__context__
    detail = (str(inner) if inner is not None else str(exc)).strip()
    if _TRACEBACK in detail:
        for line in detail.rsplit(_TRACEBACK, 1)[1].splitlines():
            if line and not line[0].isspace():
                kind, _, message = line.partition(": ")
                kind = kind.rsplit(".", 1)[-1]
                return f"dlt {exc.step} step failed: {kind}: {message}" if message else kind
    first_line = detail.splitlines()[0] if detail else type(inner).__name__
    return f"dlt {exc.step} step failed: {first_line}"


def has_pending_packages(working_dir: Path) -> bool:
    """Whether the pipeline working directory holds a package its next run would load first
    (read from the folders: no dlt import)."""
    return any(
        any(working_dir.joinpath(*parts).glob("*"))
        for parts in PENDING_DIRS
        if working_dir.joinpath(*parts).is_dir()
    )


def _failures(pipeline: dlt.Pipeline) -> dict[str, int]:
    try:
        data = json.loads(Path(pipeline.working_dir, _FAILURES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save_failures(pipeline: dlt.Pipeline, failures: dict[str, int]) -> None:
    Path(pipeline.working_dir, _FAILURES_FILE).write_text(json.dumps(failures))


def _pending(pipeline: dlt.Pipeline) -> list[str]:
    """Pending packages, after dropping extracted copies already committed as normalized.

    dlt commits a normalized package by renaming it into ``load/normalized`` and then deleting
    the extracted one; a kill between those two steps leaves both, and dlt would then normalize
    the extracted copy again and fail to commit it over the existing one. The committed package
    is complete (the rename is atomic), so the stale extracted copy is dropped first.
    """
    normalized = set(pipeline.list_normalized_load_packages())
    for load_id in pipeline.list_extracted_load_packages():
        if load_id in normalized:
            shutil.rmtree(Path(pipeline.working_dir, "normalize", "extracted", load_id))
    return sorted(set(pipeline.list_extracted_load_packages()) | normalized)


def finish_pending(pipeline: dlt.Pipeline) -> PendingOutcome:
    """Normalize and load packages an interrupted run left behind.

    Every table we load merges on its key or appends rows with a run id, so loading a package
    again is harmless. A package that keeps failing must not block the warehouse: each failure
    is counted (in the pipeline's working directory); under ``MAX_RESUMES`` the run stops with
    :class:`PendingLoadError`, at ``MAX_RESUMES`` the package is set aside with dlt's
    ``abort_packages`` (kept among dlt's completed packages as aborted, with its failed jobs)
    and the run goes on. For the sync nothing is lost: it compares the API with the warehouse,
    so the contacts of a set-aside package are loaded again.

    Args:
        pipeline: The pipeline whose working directory may hold pending packages.

    Raises:
        PendingLoadError: The packages failed and have not reached ``MAX_RESUMES`` failures.
    """
    from dlt.pipeline.exceptions import PipelineStepFailed  # dlt on use: cheap package import

    pending = _pending(pipeline)
    if not pending:
        return PendingOutcome()
    failures = _failures(pipeline)
    try:
        if pipeline.list_extracted_load_packages():
            pipeline.normalize()
        pipeline.load()
    except PipelineStepFailed as exc:
        reason = failure_reason(exc)
        counts = {load_id: failures.get(load_id, 0) + 1 for load_id in pending}
        _save_failures(pipeline, counts)
        worst = max(counts.values())
        if worst < MAX_RESUMES:
            raise PendingLoadError(
                f"could not finish {len(pending)} load package(s) left by an earlier run "
                f"(attempt {worst} of {MAX_RESUMES}): {reason}; the next run sets it aside and "
                "goes on (or run with --full-refresh)"
            ) from None
        pipeline.abort_packages()
        _save_failures(pipeline, {})
        return PendingOutcome(
            set_aside=[
                f"set aside load package {', '.join(pending)} after {worst} failed attempts "
                f"({reason}); kept by dlt as an aborted package — this run reloads its "
                "contacts from the API"
            ]
        )
    _save_failures(pipeline, {})
    return PendingOutcome(loaded=len(pending))


def start_clean(pipeline: dlt.Pipeline) -> PendingOutcome:
    """A full refresh: set aside whatever an earlier run left pending, without loading it."""
    pending = _pending(pipeline)
    if not pending:
        return PendingOutcome()
    pipeline.abort_packages()
    _save_failures(pipeline, {})
    return PendingOutcome(
        set_aside=[f"--full-refresh: set aside load package {', '.join(pending)} unloaded"]
    )
