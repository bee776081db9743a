"""Keep secrets out of text that may reach logs, errors or results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
_SENSITIVE_HEADERS = frozenset({"authorization", "x-sandbox-admin", "cookie", "set-cookie"})


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """Replace every occurrence of each secret with ``***``, recursing into lists and dicts.

    Args:
        value: A string, or JSON-like data (dicts, lists, scalars) echoed by a server.
        secrets: The secrets to hide (empty strings are ignored).

    Returns:
        The same shape with the secrets masked; non-string scalars are returned unchanged.
    """
    hidden = [s for s in secrets if s]
    if not hidden:
        return value
    return _redact(value, hidden)


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
