"""lynkist-etl: the Lynkist Contacts API connector (extract, reverse ETL, sandbox)."""

import os

__version__ = "0.1.0"

# dlt reports anonymous usage to its vendor on every pipeline run unless told not to. A
# connector that handles customer contacts sends nothing anywhere its user did not ask for:
# off by default, and a user who wants it sets RUNTIME__DLTHUB_TELEMETRY=true.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
