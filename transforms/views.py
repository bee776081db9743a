"""Analysis views over the synced warehouse, created in the pipeline's dataset.

The SQL lives in ``transforms/sql/<view>.sql``, written once in DuckDB's dialect; for other
destinations it is transpiled with sqlglot (the library dlt itself uses). Only the base view
``contacts_all`` is generated here, because it adapts to the table dlt actually created: tags as a
JSON list column (the Arrow-based source), a native list, or dlt's nested ``contacts__tags``
table; and columns that dlt has not materialized yet (never seen a non-null value) read as NULL.

Views (dependency order) and their columns::

    contacts_all        every contact ever synced: id, first_name, last_name, phone, email,
                        company, job_title, status, tags (list), custom_fields (JSON),
                        created_at, updated_at, is_deleted, deleted_at
    contacts_current    live contacts: the same without is_deleted / deleted_at
    contacts_summary    one row: live_contacts, archived_contacts, all_contacts,
                        first_created_at, last_created_at, last_updated_at
    contacts_growth     grain ('day' | 'week'), period_start (UTC date; weeks start Monday),
                        created, archived, net_change, live_total (running, end of period)
    contacts_status_funnel        status ('(none)' for null), stage_order (lead 1, active 2,
                                  customer 3, others 4), contacts, pct_of_live
    contacts_tag_counts           tag, contacts, pct_of_live
    contacts_data_quality_issues  id, issue, value, group_size, first_name, last_name, email,
                                  phone -- one row per (live contact, problem); issue is one of
                                  missing_email_and_phone, missing_email, missing_phone,
                                  phone_not_e164, duplicate_email, duplicate_phone
    contacts_data_quality         check_order, issue, description, contacts, pct_of_live
    push_outcomes       run_id, started_at, action, outcome, rows
    push_error_reasons  run_id, reason (error with values blanked out), rows, rank, example
    push_history        run_id, started_at, finished_at, rows, action_create, action_update,
                        action_unchanged, action_reject, created, updated, unchanged, rejected,
                        failed, top_error, top_error_rows
    contact_notes           contact_id, note_id, body, author, added_at, received_at, event_id
                            -- one row per contact.note_added event (``lynkist listen``)
    contact_communications  contact_id, communication_id, channel, direction, subject, body,
                            recorded_at, received_at, event_id -- contact.communication_added

Duplicates compare emails case-insensitively (trimmed) and phones ignoring formatting
(everything but digits and ``+``): the rows a push matched on email or phone could not tell
apart. E.164 means ``^\\+[1-9]\\d{1,14}$``.

The ``push_*`` views are created only once ``push_results`` exists (the first push creates it);
``pipelines.warehouse.create_views`` creates them in a warehouse (cheap and idempotent). Likewise
the event views once ``contact_events`` exists (``lynkist listen`` creates it).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

CONTACT_VIEWS: tuple[str, ...] = (
    "contacts_all",
    "contacts_current",
    "contacts_summary",
    "contacts_growth",
    "contacts_status_funnel",
    "contacts_tag_counts",
    "contacts_data_quality_issues",
    "contacts_data_quality",
)
PUSH_VIEWS: tuple[str, ...] = ("push_outcomes", "push_error_reasons", "push_history")
EVENT_VIEWS: tuple[str, ...] = ("contact_notes", "contact_communications")
ALL_VIEWS: tuple[str, ...] = CONTACT_VIEWS + PUSH_VIEWS + EVENT_VIEWS

#: sqlglot dialects the views are written and tested for.
SUPPORTED_DIALECTS = frozenset({"duckdb", "postgres"})

_TEXT, _TS, _BOOL = "VARCHAR", "TIMESTAMP WITH TIME ZONE", "BOOLEAN"
_JSON = {"duckdb": "JSON", "postgres": "JSONB"}
#: contacts_all's columns and the type used when dlt has not created the column yet.
_CONTACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", _TEXT),
    ("first_name", _TEXT),
    ("last_name", _TEXT),
    ("phone", _TEXT),
    ("email", _TEXT),
    ("company", _TEXT),
    ("job_title", _TEXT),
    ("status", _TEXT),
    ("tags", ""),
    ("custom_fields", "json"),
    ("created_at", _TS),
    ("updated_at", _TS),
    ("is_deleted", _BOOL),
    ("deleted_at", _TS),
)


def view_sql(name: str, dialect: str = "duckdb") -> str:
    """Return the SELECT behind one of the static views, in the given SQL dialect.

    Args:
        name: A view name from ``ALL_VIEWS`` other than ``contacts_all``.
        dialect: A sqlglot dialect name (``"duckdb"`` or ``"postgres"``).

    Returns:
        The query text, without a trailing semicolon.
    """
    text = resources.files("transforms").joinpath("sql", f"{name}.sql").read_text("utf-8")
    if dialect == "duckdb":
        return text.strip().rstrip(";")
    import sqlglot  # on use: half a second of imports a sync with nothing to write never needs

    return sqlglot.transpile(text, read="duckdb", write=dialect)[0]


def _tags_expression(dialect: str, columns: Mapping[str, str], has_tags_table: bool) -> str:
    tags_type = columns.get("tags", "").upper()
    if tags_type.endswith("[]") or tags_type == "ARRAY":
        return "c.tags"
    if tags_type and dialect == "duckdb":
        # from_json accepts both the JSON type and JSON stored as text
        return "COALESCE(FROM_JSON(c.tags, '[\"VARCHAR\"]'), CAST([] AS VARCHAR[]))"
    if tags_type:
        return "ARRAY(SELECT JSONB_ARRAY_ELEMENTS_TEXT(CAST(c.tags AS JSONB)))"
    if has_tags_table and "_dlt_id" in columns:
        return (
            "ARRAY(SELECT t.value FROM contacts__tags AS t "
            "WHERE t._dlt_parent_id = c._dlt_id ORDER BY t._dlt_list_idx)"
        )
    return "CAST([] AS VARCHAR[])" if dialect == "duckdb" else "CAST(ARRAY[] AS TEXT[])"


def contacts_all_sql(
    dialect: str, columns: Mapping[str, str], *, has_tags_table: bool = False
) -> str:
    """Build the SELECT of ``contacts_all`` for the ``contacts`` table as it exists.

    Args:
        dialect: ``"duckdb"`` or ``"postgres"``.
        columns: Column name -> database type name of the ``contacts`` table.
        has_tags_table: Whether dlt's nested ``contacts__tags`` table exists (used when there
            is no ``tags`` column).

    Returns:
        The query text.
    """
    select: list[str] = []
    for name, fill_type in _CONTACT_COLUMNS:
        if name == "tags":
            expr = _tags_expression(dialect, columns, has_tags_table)
        elif name == "is_deleted":
            expr = "COALESCE(c.is_deleted, FALSE)" if name in columns else "FALSE"
        elif name in columns:
            expr = f"c.{name}"
        else:
            sql_type = _JSON[dialect] if fill_type == "json" else fill_type
            expr = f"CAST(NULL AS {sql_type})"
        select.append(f"{expr} AS {name}")
    return "SELECT\n    " + ",\n    ".join(select) + "\nFROM contacts AS c"


def view_definitions(
    dialect: str, tables: Mapping[str, Mapping[str, str]]
) -> list[tuple[str, str]]:
    """Return ``(view name, SELECT)`` pairs, in creation order, for the tables that exist.

    Args:
        dialect: ``"duckdb"`` or ``"postgres"``.
        tables: Table name -> (column name -> type) for the tables in the dataset.

    Returns:
        The definitions; empty when there is no ``contacts`` table yet.
    """
    definitions: list[tuple[str, str]] = []
    if "contacts" in tables:
        base = contacts_all_sql(
            dialect, tables["contacts"], has_tags_table="contacts__tags" in tables
        )
        definitions.append(("contacts_all", base))
        definitions += [(name, view_sql(name, dialect)) for name in CONTACT_VIEWS[1:]]
    if "push_results" in tables:
        definitions += [(name, view_sql(name, dialect)) for name in PUSH_VIEWS]
    if "contact_events" in tables:
        definitions += [(name, view_sql(name, dialect)) for name in EVENT_VIEWS]
    return definitions
