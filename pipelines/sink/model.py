"""Push from a warehouse model: the rows of a SQL query or a table instead of a CSV file.

The rows come through the warehouse pipeline's own SQL client, so any destination dlt
supports (DuckDB, PostgreSQL, ...) works the same. Cells become the text a CSV would hold
(lists and objects as JSON, ``NULL`` as empty), so the mapping, cleaning, plan and outcomes are
exactly those of a CSV push.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import dlt
import pandas as pd

__all__ = ["ModelInput", "ModelReadError", "read_model"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ModelReadError(ValueError):
    """The query or table cannot be read (bad SQL, unknown table): one line saying why."""


@dataclass(frozen=True)
class ModelInput:
    """Where the rows come from: exactly one of ``query`` and ``table``.

    Attributes:
        query: A ``SELECT`` whose columns are named like the contact fields (or mapped).
        table: ``schema.name`` or ``name`` (then in the warehouse's dataset).
    """

    query: str | None = None
    table: str | None = None

    def __post_init__(self) -> None:
        if (self.query is None) == (self.table is None):
            raise ModelReadError("give exactly one of a query and a table")
        if self.query is not None and not self.query.strip():
            raise ModelReadError("--query is empty: give a SELECT statement")
        if self.table is not None:
            parts = self.table.split(".")
            if len(parts) > 2 or not all(_IDENT.fullmatch(p) for p in parts):
                raise ModelReadError(
                    f"--table {self.table!r}: give schema.name or name (letters, digits, _)"
                )

    @property
    def source(self) -> str:
        """What the run history records: ``table:<name>`` or ``query:sha256:<12 hex>``.

        A query is recorded by its hash: it may be long and may name things the history's
        readers need not see; the same query always gives the same hash.
        """
        if self.table is not None:
            return f"table:{self.table}"
        digest = hashlib.sha256(" ".join((self.query or "").split()).encode()).hexdigest()
        return f"query:sha256:{digest[:12]}"

    def sql(self, client: Any) -> str:
        """The statement to run on ``client`` (a dlt SQL client)."""
        if self.query is not None:
            return self.query.strip().rstrip(";")
        parts = (self.table or "").split(".")
        if len(parts) == 1:
            return f"SELECT * FROM {client.make_qualified_table_name(parts[0])}"
        schema, name = parts
        return (
            f"SELECT * FROM {client.escape_column_name(schema)}.{client.escape_column_name(name)}"
        )


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_model(pipeline: dlt.Pipeline, model: ModelInput) -> pd.DataFrame:
    """The model's rows as text columns, one per column of the result.

    Raises:
        ModelReadError: The statement failed (its first line says why).
    """
    try:
        with pipeline.sql_client() as client:  # noqa: SIM117 - the query needs the client
            with client.execute_query(model.sql(client)) as cursor:
                columns = [str(d[0]) for d in cursor.description or ()]
                rows = cursor.fetchall()
    except ModelReadError:
        raise
    except Exception as exc:  # dlt wraps each destination's errors differently
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        what = f"--table {model.table}" if model.table is not None else "--query"
        raise ModelReadError(f"{what}: the warehouse refused it: {detail}") from None
    if not columns:
        raise ModelReadError("--query returned no columns: give a SELECT statement")
    if len(set(columns)) != len(columns):
        raise ModelReadError(f"the model has duplicate column names: {', '.join(columns)}")
    return pd.DataFrame([[_as_text(v) for v in row] for row in rows], columns=columns, dtype=object)
