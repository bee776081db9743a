"""Defaults the library and the command line share, in one place.

Kept free of imports: the command line builds its parsers (and help texts) from these values,
and ``lynkist --help`` should not pay for importing httpx or dlt.
"""

from __future__ import annotations

from typing import Final

#: Requests in flight by default for reads: a sync, listing scans, look-ups.
DEFAULT_MAX_CONCURRENCY: Final = 8
#: Requests in flight by default for a push: its PATCHes are independent one-row writes, and
#: the client's AIMD limiter halves the bound on 429s anyway.
DEFAULT_PUSH_CONCURRENCY: Final = 16
