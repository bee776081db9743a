"""Where the Lynkist Contacts API lives.

The contact object itself (fields, limits, the email rule) is :mod:`transforms.contact`.
"""

from __future__ import annotations

from typing import Final

API_BASE_PATH: Final = "/api/v1/public/contacts"
DEFAULT_BASE_URL: Final = "https://api.lynkist.io"
