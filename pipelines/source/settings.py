"""Constants of the contacts source: table name, column hints, Arrow schema, tuning knobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pyarrow as pa

from transforms.contact import NULLABLE_FIELDS, PAGE_LIMIT_MAX

if TYPE_CHECKING:  # dlt is imported on use (see pipelines.source.quick)
    from dlt.common.schema.typing import TColumnSchema

SOURCE_NAME: Final = "lynkist"
TABLE_NAME: Final = "contacts"
PRIMARY_KEY: Final = "id"

#: Contacts per ``GET /contacts`` request: the API's maximum, so a scan costs the fewest requests.
PAGE_LIMIT: Final = PAGE_LIMIT_MAX
#: Extra full scans when the first one saw the listing shift (total changed, ids missing).
MAX_RESCANS: Final = 2
#: Rows gathered before an Arrow table is handed to dlt: dlt's cost is per item, so fewer,
#: larger tables load faster, while a bound keeps memory flat.
BATCH_ROWS: Final = 2_000
#: Ids per warehouse query when re-reading archived contacts' rows.
MIRROR_QUERY_BATCH: Final = 1_000

TEXT_FIELDS: Final = ("first_name", *NULLABLE_FIELDS)
JSON_FIELDS: Final = ("tags", "custom_fields")
TIMESTAMP_FIELDS: Final = ("created_at", "updated_at")
#: Columns the source adds; the API never sends them.
DELETE_FIELDS: Final = ("is_deleted", "deleted_at")

TIMESTAMP_TYPE: Final = pa.timestamp("us", tz="UTC")

#: The Arrow schema of every table the source yields (unknown API fields are appended as text).
ARROW_SCHEMA: Final = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        *(pa.field(name, pa.string()) for name in TEXT_FIELDS),
        # JSON travels as encoded text: the same JSON column on every destination (DuckDB JSON,
        # PostgreSQL jsonb), where a nested Arrow type would become a DuckDB LIST/STRUCT.
        *(pa.field(name, pa.string()) for name in JSON_FIELDS),
        *(pa.field(name, TIMESTAMP_TYPE) for name in TIMESTAMP_FIELDS),
        pa.field("is_deleted", pa.bool_()),
        pa.field("deleted_at", TIMESTAMP_TYPE),
    ]
)
KNOWN_COLUMNS: Final = frozenset(ARROW_SCHEMA.names)
#: Fields of the API's contact object; any other field is stored as an extra text column.
API_COLUMNS: Final = KNOWN_COLUMNS - frozenset(DELETE_FIELDS)

#: Largest value (UTF-8 bytes of a text, or of the JSON text of ``tags`` / ``custom_fields``)
#: stored as sent. Larger ones are stored as null and reported in ``contacts_rejected``: a
#: 50 MB value makes DuckDB's merge run out of memory under its 128 MB cap, every run.
MAX_VALUE_BYTES: Final = 16 * 2**20
#: ``contacts_rejected.raw`` keeps the record with each string cut to this many characters...
MAX_RAW_VALUE_CHARS: Final = 1_000
#: ...and the whole JSON text cut to this many.
MAX_RAW_CHARS: Final = 16_000

#: Where values that could not be stored as sent are reported (one row per contact and field).
REJECTED_TABLE: Final = "contacts_rejected"
REJECTED_KEY: Final = ("id", "field")
#: dlt's lineage column, filled by the source itself (see ``arrow.with_load_id``).
LOAD_ID_COLUMN: Final = "_dlt_load_id"
#: Its hint, as dlt declares the column when it adds it (``dlt_load_id_column``).
LOAD_ID_HINT: Final[TColumnSchema] = {
    "data_type": "text",
    "nullable": False,
    "precision": 64,
    "description": "Load identifier linking this row to its load operation",
}

REJECTED_HINTS: Final[dict[str, TColumnSchema]] = {
    "id": {"data_type": "text", "nullable": False},
    "field": {"data_type": "text", "nullable": False},
    "reason": {"data_type": "text", "nullable": True},
    "raw": {"data_type": "text", "nullable": True},
    "first_seen": {"data_type": "timestamp", "timezone": True, "nullable": True},
    "last_seen": {"data_type": "timestamp", "timezone": True, "nullable": True},
    "resolved_at": {"data_type": "timestamp", "timezone": True, "nullable": True},
}

_TIMESTAMPTZ: Final[TColumnSchema] = {"data_type": "timestamp", "timezone": True}

#: dlt column hints, declared so that DuckDB and PostgreSQL get the same table.
COLUMN_HINTS: Final[dict[str, TColumnSchema]] = {
    "id": {"data_type": "text", "nullable": False, "primary_key": True},
    **{name: {"data_type": "text", "nullable": True} for name in TEXT_FIELDS},
    **{name: {"data_type": "json", "nullable": True} for name in JSON_FIELDS},
    **{name: {**_TIMESTAMPTZ, "nullable": True} for name in TIMESTAMP_FIELDS},
    "is_deleted": {"data_type": "bool", "nullable": True},
    "deleted_at": {**_TIMESTAMPTZ, "nullable": True},
}
