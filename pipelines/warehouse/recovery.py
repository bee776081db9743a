"""Crash recovery: complete the load packages an interrupted run left behind."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dlt

__all__ = ["finish_pending"]


def finish_pending(pipeline: dlt.Pipeline) -> int:
    """Normalize and load packages an interrupted run left behind; returns how many.

    Every table we load merges on its key or appends rows with a run id, so loading a package
    again is harmless. dlt commits a normalized package by renaming it into
    ``load/normalized`` and then deleting the extracted one; a kill between those two steps
    leaves both, and dlt would then normalize the extracted copy again and fail to commit it
    over the existing one. The committed package is complete (the rename is atomic), so the
    stale extracted copy is dropped first.

    Args:
        pipeline: The pipeline whose working directory may hold pending packages.

    Returns:
        The number of packages loaded.
    """
    normalized = set(pipeline.list_normalized_load_packages())
    for load_id in pipeline.list_extracted_load_packages():
        if load_id in normalized:
            shutil.rmtree(Path(pipeline.working_dir, "normalize", "extracted", load_id))
    if pipeline.list_extracted_load_packages():
        pipeline.normalize()
    pending = pipeline.list_normalized_load_packages()
    if pending:
        pipeline.load()
    return len(pending)
