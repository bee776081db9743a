"""API keys of the demo tenants: who a bearer token is, and what it may do.

Keys are compared with :func:`hmac.compare_digest` against every known key (no early exit), so
the time an answer takes says nothing about how close a guess was. Keys never reach a log: the
request log records the tenant, not the key.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Final

READ: Final = "contacts:read"
WRITE: Final = "contacts:write"

DEMO_TENANTS: Final = ("acme", "globex")
#: Key kind -> scopes it grants.
KEY_KINDS: Final[dict[str, frozenset[str]]] = {
    "rw": frozenset({READ, WRITE}),
    "ro": frozenset({READ}),
    "wo": frozenset({WRITE}),
}
KEY_PREFIX: Final = "lk_sandbox_"


@dataclass(frozen=True)
class Principal:
    """The tenant and scopes a valid key grants."""

    tenant: str
    scopes: frozenset[str]


def new_key() -> str:
    """A fresh random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def new_admin_token() -> str:
    """A fresh random admin token for the ``/_sandbox`` API."""
    return "sbadm_" + secrets.token_urlsafe(24)


class KeyRing:
    """The keys of every tenant, resolved in constant time."""

    def __init__(self, keys: dict[str, dict[str, str]] | None = None) -> None:
        """Create the demo tenants' keys.

        Args:
            keys: Fixed keys ``{tenant: {kind: key}}``; random keys for the demo tenants when
                ``None``.
        """
        if keys is None:
            keys = {tenant: {kind: new_key() for kind in KEY_KINDS} for tenant in DEMO_TENANTS}
        unknown = {kind for kinds in keys.values() for kind in kinds} - set(KEY_KINDS)
        if unknown:
            raise ValueError(f"unknown key kinds {sorted(unknown)}; use rw, ro, wo")
        self.keys: dict[str, dict[str, str]] = {t: dict(k) for t, k in keys.items()}
        self._entries = [
            (key.encode(), Principal(tenant, KEY_KINDS[kind]))
            for tenant, kinds in self.keys.items()
            for kind, key in kinds.items()
        ]

    @property
    def tenants(self) -> list[str]:
        """Names of the tenants that have keys."""
        return list(self.keys)

    def resolve(self, token: str | None) -> Principal | None:
        """The principal a bearer token belongs to, or ``None`` when it is unknown."""
        if not token:
            return None
        candidate = token.encode()
        found: Principal | None = None
        for key, principal in self._entries:
            if hmac.compare_digest(candidate, key):
                found = principal
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
