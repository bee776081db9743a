"""The ``contacts_rejected`` table: values a sync could not store as the API sent them.

One row per contact and field (merged on ``id, field``): the reason, what was stored instead,
the raw record (long strings cut), when it was first and last seen. A sync that sees the
contact again without the problem — or confirms it archived — sets ``resolved_at``; rows with
``resolved_at`` null are the open problems. Nothing here ever stops a sync.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from pipelines.source.arrow import Converted, RecordProblem, arrow_array
from pipelines.source.settings import REJECTED_TABLE, TIMESTAMP_TYPE
from pipelines.source.stats import SyncStats

if TYPE_CHECKING:  # dlt is imported on use (see pipelines.source.quick)
    from dlt.common.pipeline import SupportsPipeline

__all__ = ["OpenProblem", "RejectedLog", "load_open_problems"]

_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("field", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("raw", pa.string()),
        pa.field("first_seen", TIMESTAMP_TYPE),
        pa.field("last_seen", TIMESTAMP_TYPE),
        pa.field("resolved_at", TIMESTAMP_TYPE),
    ]
)

Key = tuple[str, str]


@dataclass(frozen=True)
class OpenProblem:
    """A row of ``contacts_rejected`` not resolved yet."""

    reason: str | None
    raw: str | None
    first_seen: datetime | None
    last_seen: datetime | None


def _has_table(pipeline: SupportsPipeline) -> bool:
    if not pipeline.default_schema_name:
        return False
    schema = pipeline.schemas[pipeline.default_schema_name]
    return REJECTED_TABLE in schema.tables and bool(schema.get_table_columns(REJECTED_TABLE))


def load_open_problems(pipeline: SupportsPipeline | None) -> dict[Key, OpenProblem]:
    """The open rows of ``contacts_rejected`` (none when the table does not exist yet)."""
    from dlt.destinations.exceptions import DatabaseUndefinedRelation

    if pipeline is None or not _has_table(pipeline):
        return {}
    out: dict[Key, OpenProblem] = {}
    with pipeline.sql_client() as client:  # type: ignore[attr-defined]
        table = client.make_qualified_table_name(REJECTED_TABLE)
        names = ("id", "field", "reason", "raw", "first_seen", "last_seen", "resolved_at")
        cols = ", ".join(client.escape_column_name(c) for c in names)
        resolved = client.escape_column_name("resolved_at")
        try:
            with client.execute_query(
                f"SELECT {cols} FROM {table} WHERE {resolved} IS NULL"
            ) as cur:
                rows = cur.fetchall()
        except DatabaseUndefinedRelation:
            return {}
    for contact_id, field, reason, raw, first_seen, last_seen, _ in rows:
        out[contact_id, field] = OpenProblem(reason, raw, first_seen, last_seen)
    return out


class RejectedLog:
    """This run's problems, and which open ones it resolved.

    Args:
        open_problems: The open rows of the table when the run started.
    """

    def __init__(self, open_problems: dict[Key, OpenProblem] | None = None) -> None:
        self.open = open_problems or {}
        self._open_ids = {contact_id for contact_id, _ in self.open}
        self.problems: dict[Key, RecordProblem] = {}
        self.renamed: dict[str, str] = {}
        self._seen: set[str] = set()

    def observe(self, converted: Converted) -> None:
        """Record a converted page's problems and renamed fields."""
        for problem in converted.problems:
            self.problems[problem.contact_id, problem.field] = problem
        self.renamed.update(converted.renamed)

    def saw(self, ids: Iterable[str]) -> None:
        """Contacts this run saw (live or confirmed archived): their old problems may be over."""
        if self._open_ids:
            self._seen.update(i for i in ids if i in self._open_ids)

    def count_into(self, stats: SyncStats) -> None:
        """Copy what the scan found (problems, renamed fields, resolved problems) into ``stats``."""
        stats.problems = list(self.problems.values())
        stats.renamed = dict(self.renamed)
        stats.resolved = len(self.resolved())

    def resolved(self) -> list[Key]:
        """Open problems whose contact this run saw without them."""
        return [k for k in self.open if k[0] in self._seen and k not in self.problems]

    def table(self, now: datetime) -> pa.Table | None:
        """The rows to merge into ``contacts_rejected``; None when there is nothing to write."""
        rows: list[dict[str, object]] = []
        for key, problem in self.problems.items():
            known = self.open.get(key)
            rows.append(
                {
                    "id": problem.contact_id,
                    "field": problem.field,
                    "reason": problem.reason,
                    "raw": problem.raw,
                    "first_seen": known.first_seen if known and known.first_seen else now,
                    "last_seen": now,
                    "resolved_at": None,
                }
            )
        for key in self.resolved():
            known = self.open[key]
            rows.append(
                {
                    "id": key[0],
                    "field": key[1],
                    "reason": known.reason,
                    "raw": known.raw,
                    "first_seen": known.first_seen,
                    "last_seen": known.last_seen,
                    "resolved_at": now,
                }
            )
        if not rows:
            return None
        columns = [arrow_array([row[f.name] for row in rows], f.type) for f in _SCHEMA]
        return pa.Table.from_arrays(columns, schema=_SCHEMA)
