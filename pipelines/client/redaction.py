"""Keep secrets out of text that may reach logs, errors or results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

MASK = "***"
_SENSITIVE_HEADERS = frozenset({"authorization", "x-sandbox-admin", "cookie", "set-cookie"})
#: Query parameters whose value is a credential whatever it is (not only our own key).
_SENSITIVE_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "auth",
        "authorization",
        "secret",
        "password",
        "signature",
        "sig",
    }
)


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """Replace every occurrence of each secret with ``***``, recursing into lists and dicts.

    Args:
        value: A string, or JSON-like data (dicts, lists, scalars) echoed by a server.
        secrets: The secrets to hide (empty strings are ignored).

    Returns:
        The same shape with the secrets masked; non-string scalars are returned unchanged.
    """
    hidden = _variants(secrets)
    if not hidden:
        return value
    return _redact(value, hidden)


def _variants(secrets: Iterable[str]) -> list[str]:
    """Each secret as given and percent-encoded (as a URL would carry it), longest first."""
    out = set()
    for secret in secrets:
        if secret:
            out |= {secret, quote(secret, safe=""), quote(secret)}
    return sorted(out, key=len, reverse=True)


def redact_url(url: str, secrets: Iterable[str]) -> str:
    """A URL fit to print: the secrets masked anywhere, and any credential it carries.

    Masks the secrets (also percent-encoded) wherever they appear, the password of a
    ``user:password@`` part, and the values of credential-like query parameters (``api_key``,
    ``token``, ``signature``…) — a redirect may echo another credential than ours.

    Args:
        url: The URL (e.g. a redirect's ``Location``), possibly malformed.
        secrets: The secrets to hide.

    Returns:
        The URL with credentials replaced by ``***``.
    """
    text = redact(url, secrets)
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = "&".join(
        f"{name}={MASK}" if sep and name.lower() in _SENSITIVE_PARAMS else f"{name}{sep}{value}"
        for name, sep, value in (item.partition("=") for item in parts.query.split("&"))
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact(value: Any, hidden: list[str]) -> Any:
    if isinstance(value, str):
        for secret in hidden:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, Mapping):
        return {_redact(k, hidden): _redact(v, hidden) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, hidden) for v in value]
    return value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Copy headers with credentials masked (for debug logging).

    Args:
        headers: Request or response headers.

    Returns:
        A plain dict where ``Authorization`` and similar headers read ``***``.
    """
    return {k: (MASK if k.lower() in _SENSITIVE_HEADERS else v) for k, v in headers.items()}


class Secret:
    """A string that stays hidden in ``repr``/``str`` (debuggers, rich tracebacks, logs).

    Args:
        value: The secret.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not picklable")
