"""Typed errors raised by :class:`pipelines.client.LynkistClient`.

Every message names the HTTP method and the endpoint path and says what to do next; none ever
contains the API key (the client redacts it from anything the server echoes back, and no
``httpx`` request, with its ``Authorization`` header, is ever attached to an error)::

    LynkistError
     ├── LynkistConfigError            bad base URL / API key, or the host unreachable at first
     │                                 contact — fix the configuration, retrying will not help
     ├── LynkistAPIError               the server answered with an error status
     │    ├── BadRequestError          400 malformed body
     │    ├── AuthenticationError      401 the API key was rejected
     │    ├── PermissionDeniedError    403 the key lacks contacts:read / contacts:write
     │    ├── NotFoundError            404 no such contact (or another tenant's)
     │    ├── ConflictError            409 to a keyed request: one with the same Idempotency-Key
     │    │                            is still being processed (retried: a later try replays)
     │    ├── ValidationError          422 field-level details in ``.field_errors``
     │    ├── RateLimitError           429 still throttled when the retry budget ran out
     │    └── ServerError              5xx still failing when the retry budget ran out
     └── LynkistTransportError         timeouts / connection errors after the retry budget
          └── OutcomeUnknownError      a non-idempotent write was sent and its answer was lost
                                       (timeout after sending, dropped connection, 5xx): the
                                       server may have committed it — reconcile, never resend
                                       blindly

All errors pickle (they cross process boundaries in dlt's workers) and keep their attributes.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "LynkistAPIError",
    "LynkistConfigError",
    "LynkistError",
    "LynkistTransportError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "ValidationError",
    "api_error",
]

_DETAIL_MAX = 500


def _rebuild(cls: type[LynkistError], state: dict[str, Any]) -> LynkistError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class LynkistError(Exception):
    """Base class of every error the client raises.

    Attributes:
        message: The human-readable message (also ``str(error)``).
        attempts: How many HTTP attempts were made before giving up (1 = no retry).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = 1

    def __str__(self) -> str:
        if self.attempts > 1:
            return f"{self.message} (gave up after {self.attempts} attempts)"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__)))


class LynkistConfigError(LynkistError):
    """The client is misconfigured: bad base URL, missing API key, or an unreachable host."""


def format_detail(detail: Any) -> str:
    """Render a server ``detail`` payload as one short line.

    Args:
        detail: The decoded ``detail`` (string, list, dict) or raw body text.

    Returns:
        A compact single-line string, truncated to a readable length.
    """
    if detail is None or detail == "":
        return ""
    text = detail if isinstance(detail, str) else json.dumps(detail, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


class LynkistAPIError(LynkistError):
    """The server answered with an error status.

    Attributes:
        status: The HTTP status code.
        method: The HTTP method, e.g. ``"PATCH"``.
        endpoint: The request path, e.g. ``"/api/v1/public/contacts/3f2c…"``.
        detail: The server's ``detail`` (decoded JSON or text), already free of the API key.
        retry_after: Seconds the server asked to wait (429/503), if it said so.
    """

    hint: ClassVar[str] = ""

    def __init__(
        self,
        status: int,
        method: str,
        endpoint: str,
        detail: Any = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.endpoint = endpoint
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(self._compose())

    def _explanation(self) -> str:
        return self.hint

    def _detail_text(self) -> str:
        return format_detail(self.detail)

    def _compose(self) -> str:
        parts = [f"{self.method} {self.endpoint} failed with HTTP {self.status}"]
        explanation = self._explanation()
        detail = self._detail_text()
        text = parts[0]
        if explanation:
            text += f": {explanation}"
        if detail and detail not in explanation:
            text += f" (server said: {detail})"
        return text


class BadRequestError(LynkistAPIError):
    """400: the body is malformed or misses required fields."""

    hint = "the request body was malformed or incomplete"


class AuthenticationError(LynkistAPIError):
    """401: the API key is missing or invalid."""

    hint = "the API key was rejected — check LYNKIST_API_KEY (or --api-key)"

    def _detail_text(self) -> str:
        return ""


class PermissionDeniedError(LynkistAPIError):
    """403: the key lacks the scope this endpoint needs (``.scope``)."""

    @property
    def scope(self) -> str:
        """The scope the endpoint needs: ``contacts:read`` or ``contacts:write``."""
        is_read = self.method == "GET" or self.endpoint.rstrip("/").endswith("/search")
        return "contacts:read" if is_read else "contacts:write"

    def _explanation(self) -> str:
        return f"the key lacks {self.scope} — use an API key that has the {self.scope} scope"

    def _detail_text(self) -> str:
        return ""


class NotFoundError(LynkistAPIError):
    """404: the contact does not exist, was archived, or belongs to another tenant."""

    hint = "not found (no such contact, archived, or another tenant's)"


class ConflictError(LynkistAPIError):
    """409: a request with the same ``Idempotency-Key`` is still being processed (Stripe's
    semantics); still answered when the retry budget ran out. Resending with the same key is
    safe: once the first finishes, the server replays its answer."""

    hint = "an earlier request with the same Idempotency-Key is still being processed"


class ValidationError(LynkistAPIError):
    """422: the API rejected field values.

    Attributes:
        field_errors: ``{field: message}``, e.g. ``{"email": "value is not a valid email
            address (got 'x@')"}``; the field is the dotted location inside the body or query.
    """

    def __init__(
        self,
        status: int,
        method: str,
        endpoint: str,
        detail: Any = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.field_errors = parse_field_errors(detail)
        super().__init__(status, method, endpoint, detail, retry_after=retry_after)

    def _explanation(self) -> str:
        if not self.field_errors:
            return "validation failed"
        fields = "; ".join(f"{name}: {msg}" for name, msg in self.field_errors.items())
        return f"validation failed — {fields}"

    def _detail_text(self) -> str:
        return "" if self.field_errors else format_detail(self.detail)


def parse_field_errors(detail: Any) -> dict[str, str]:
    """Turn a FastAPI/Pydantic 422 ``detail`` into ``{field: message}``.

    Args:
        detail: The ``detail`` value of the error envelope.

    Returns:
        One entry per field (messages joined with ``"; "`` when a field has several); empty when
        the detail has no field-level structure.
    """
    if not isinstance(detail, list):
        return {}
    errors: dict[str, str] = {}
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = [str(part) for part in item.get("loc", []) if part not in ("body", "query")]
        name = ".".join(loc) or "body"
        msg = str(item.get("msg", "invalid"))
        if "input" in item and not isinstance(item["input"], dict | list):
            shown = repr(item["input"])
            msg += f" (got {shown if len(shown) <= 80 else shown[:79] + '…'})"
        errors[name] = f"{errors[name]}; {msg}" if name in errors else msg
    return errors


class RateLimitError(LynkistAPIError):
    """429: still throttled when the retry budget ran out."""

    def _explanation(self) -> str:
        text = "rate limited by the API"
        if self.retry_after is not None:
            text += f"; the server asked to wait {self.retry_after:.0f}s"
        return text + " — lower --max-concurrency or retry later"


class ServerError(LynkistAPIError):
    """5xx: the server kept failing until the retry budget ran out."""

    hint = "the Lynkist API had a server error — retry later"


class LynkistTransportError(LynkistError):
    """No usable HTTP answer: timeout, refused or dropped connection, after the retry budget.

    Attributes:
        method: The HTTP method.
        endpoint: The request path.
        reason: The underlying failure, e.g. ``"ReadTimeout: timed out"``.
        sent: False when the request provably never left the client (connect failure), so
            resending cannot duplicate anything.
        first_contact: True when the client had never had an answer from this server.
    """

    def __init__(
        self,
        method: str,
        endpoint: str,
        reason: str,
        *,
        sent: bool = True,
        first_contact: bool = False,
    ) -> None:
        self.method = method
        self.endpoint = endpoint
        self.reason = reason
        self.sent = sent
        self.first_contact = first_contact
        super().__init__(self._compose())

    def _compose(self) -> str:
        return f"{self.method} {self.endpoint} failed without an HTTP answer: {self.reason}"


class OutcomeUnknownError(LynkistTransportError):
    """A non-idempotent write was sent but its answer was lost; the server may have applied it.

    Attributes:
        status: The HTTP status when the answer was a 5xx, else None.
    """

    def __init__(
        self,
        method: str,
        endpoint: str,
        reason: str,
        *,
        status: int | None = None,
    ) -> None:
        self.status = status
        super().__init__(method, endpoint, reason, sent=True)

    def _compose(self) -> str:
        return (
            f"{self.method} {self.endpoint} was sent but its outcome is unknown ({self.reason}); "
            "the server may or may not have applied it — check what exists before resending"
        )


_BY_STATUS: dict[int, type[LynkistAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: ValidationError,
    429: RateLimitError,
}


def api_error(
    status: int,
    method: str,
    endpoint: str,
    detail: Any = None,
    *,
    retry_after: float | None = None,
) -> LynkistAPIError:
    """Build the typed error for an HTTP error status.

    Args:
        status: The HTTP status code.
        method: The HTTP method.
        endpoint: The request path.
        detail: The server's ``detail`` (already redacted).
        retry_after: Seconds from a ``Retry-After`` header, if any.

    Returns:
        The matching :class:`LynkistAPIError` subclass instance (the base class for statuses
        without a dedicated one).
    """
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else LynkistAPIError
    return cls(status, method, endpoint, detail, retry_after=retry_after)
