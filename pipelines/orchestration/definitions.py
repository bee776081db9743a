"""``defs`` for Dagster: ``dagster dev -m pipelines.orchestration.definitions``.

The tenants file is ``$LYNKIST_CONFIG``, or ``lynkist.toml`` in the working directory.
"""

from __future__ import annotations

import os

from pipelines.orchestration.assets import CONFIG_ENV, build_defs
from pipelines.tenants import DEFAULT_CONFIG

defs = build_defs(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG))
