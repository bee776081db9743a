"""Push outcomes: the results frame, the ``push_results`` warehouse table, the CSV, a summary.

``push_results`` is appended through dlt (its own pipeline, ``<sync pipeline>_push``, in the same
warehouse and dataset as the mirror), one row per input row of every push — or, on DuckDB once
dlt has created the table, by SQL (:mod:`.record`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipelines.sink.execute import RowResult
from pipelines.sink.plan import Plan
from transforms.csv_io import write_csv

TABLE_NAME = "push_results"
RESULT_COLUMNS = (
    "run_id",
    "row_number",
    "match_key",
    "action",
    "outcome",
    "http_status",
    "error",
    "contact_id",
    "pushed_at",
    "source",
)
OUTCOMES = ("created", "updated", "unchanged", "rejected", "failed")
#: How the run read its input: recorded in ``push_results`` (the run history), not in the CSV.
#: What it read is ``source`` (a file name, ``table:<schema.name>`` or ``query:sha256:<hash>``).
PROVENANCE_COLUMNS = ("mapping", "match_on")

_ARROW_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("row_number", pa.int64(), nullable=False),
        pa.field("match_key", pa.string()),
        pa.field("action", pa.string(), nullable=False),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("http_status", pa.int64()),
        pa.field("error", pa.string()),
        pa.field("contact_id", pa.string()),
        pa.field("pushed_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("source", pa.string()),
        *(pa.field(name, pa.string()) for name in PROVENANCE_COLUMNS),
    ]
)

_COLUMN_HINTS: dict[str, dict[str, Any]] = {
    "run_id": {"data_type": "text", "nullable": False},
    "row_number": {"data_type": "bigint", "nullable": False},
    "match_key": {"data_type": "text", "nullable": True},
    "action": {"data_type": "text", "nullable": False},
    "outcome": {"data_type": "text", "nullable": False},
    "http_status": {"data_type": "bigint", "nullable": True},
    "error": {"data_type": "text", "nullable": True},
    "contact_id": {"data_type": "text", "nullable": True},
    "pushed_at": {"data_type": "timestamp", "timezone": True, "nullable": False},
    "source": {"data_type": "text", "nullable": True},
    **{name: {"data_type": "text", "nullable": True} for name in PROVENANCE_COLUMNS},
}


def results_frame(
    run_id: str,
    results: Sequence[RowResult],
    pushed_at: datetime | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """One row per input row, columns :data:`RESULT_COLUMNS`.

    ``source`` names what was pushed (the export's file name), so a run can be told apart.
    """
    when = pushed_at or datetime.now(UTC)
    frame = pd.DataFrame(
        {
            "run_id": [run_id] * len(results),
            "row_number": pd.array([r.row_number for r in results], dtype="Int64"),
            "match_key": pd.Series([r.match_key for r in results], dtype=object),
            "action": [r.action for r in results],
            "outcome": [r.outcome for r in results],
            "http_status": pd.array([r.http_status for r in results], dtype="Int64"),
            "error": pd.Series([r.error for r in results], dtype=object),
            "contact_id": pd.Series([r.contact_id for r in results], dtype=object),
            "pushed_at": pd.Series([when] * len(results), dtype="datetime64[us, UTC]"),
            "source": pd.Series([source] * len(results), dtype=object),
        },
        columns=list(RESULT_COLUMNS),
    )
    return frame


def results_table(
    frame: pd.DataFrame, provenance: Mapping[str, str | None] | None = None
) -> pa.Table | None:
    """The ``push_results`` rows of a run as Arrow (``None`` when there are none).

    Args:
        frame: :func:`results_frame`'s rows.
        provenance: The run's :data:`PROVENANCE_COLUMNS` values, repeated on each row.
    """
    if frame.empty:
        return None
    given = provenance or {}
    frame = frame.assign(**{name: given.get(name) for name in PROVENANCE_COLUMNS})
    return pa.Table.from_pandas(frame, schema=_ARROW_SCHEMA, preserve_index=False)


def results_resource(table: pa.Table | None) -> Any:
    """The append of :func:`results_table`'s rows to ``push_results``, as a dlt resource to run
    with other resources of the push's pipeline; ``None`` without rows."""
    if table is None:
        return None
    import dlt  # on use: a push recorded by SQL never imports it

    return dlt.resource(  # type: ignore[call-overload]
        [table],
        name=TABLE_NAME,
        table_name=TABLE_NAME,
        write_disposition="append",
        columns=_COLUMN_HINTS,
    )


def write_results_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write the results as CSV, with spreadsheet formulas neutralised.

    Cells come from the user's file (match keys) and the server (errors); a cell starting with
    ``=``, ``+``, ``-``, ``@``, tab or carriage return would run as a formula when the CSV is
    opened in a spreadsheet, so such cells are prefixed with a quote.
    """
    target = Path(path)
    out = frame.copy()
    out["pushed_at"] = out["pushed_at"].map(
        lambda ts: ts.isoformat().replace("+00:00", "Z") if ts is not None else None
    )
    write_csv(out, target)
    return target


def write_plan_csv(plan: Plan, path: str | Path) -> Path:
    """Write a dry run's plan (one row per input row, :meth:`Plan.to_frame` columns) as CSV,
    spreadsheet formulas neutralised like the results."""
    target = Path(path)
    write_csv(plan.to_frame(), target)
    return target


def summarize(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per outcome (every outcome present) and ``total``."""
    counts = frame["outcome"].value_counts().to_dict() if len(frame) else {}
    summary = {name: int(counts.get(name, 0)) for name in OUTCOMES}
    summary["total"] = len(frame)
    return summary
