"""The project's HTTP client for the Lynkist Contacts API.

>>> with LynkistClient("https://api.lynkist.io", api_key) as client:  # doctest: +SKIP
...     for page in client.iter_contact_pages():
...         ...

Modules: :mod:`.client` (LynkistClient), :mod:`.errors` (exception hierarchy), :mod:`.retry`
(RetryPolicy), :mod:`.paginator` (ContactPaginator), :mod:`.concurrency` (AdaptiveLimiter),
:mod:`.models` (ContactPage, BulkResult, ClientStats), :mod:`.redaction` (redact).
"""

from pipelines.client.client import USER_AGENT, LynkistClient
from pipelines.client.concurrency import AdaptiveLimiter, map_bounded
from pipelines.client.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    LynkistAPIError,
    LynkistConfigError,
    LynkistError,
    LynkistTransportError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from pipelines.client.models import BulkResult, ClientStats, ContactPage
from pipelines.client.paginator import ContactPaginator
from pipelines.client.redaction import Secret, redact, redact_headers
from pipelines.client.retry import RetryEvent, RetryPolicy, is_retryable, parse_retry_after

__all__ = [
    "USER_AGENT",
    "AdaptiveLimiter",
    "AuthenticationError",
    "BadRequestError",
    "BulkResult",
    "ClientStats",
    "ConflictError",
    "ContactPage",
    "ContactPaginator",
    "LynkistAPIError",
    "LynkistClient",
    "LynkistConfigError",
    "LynkistError",
    "LynkistTransportError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryEvent",
    "RetryPolicy",
    "Secret",
    "ServerError",
    "ValidationError",
    "is_retryable",
    "map_bounded",
    "parse_retry_after",
    "redact",
    "redact_headers",
]
