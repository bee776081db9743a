"""``LynkistClient``: the one HTTP client of the project (extract and reverse ETL).

A synchronous ``httpx.Client`` (thread-safe, pooled) plus a thread pool for concurrency: dlt
resources are synchronous generators, and a few threads saturate an HTTP API as well as
asyncio would here. Retries follow :mod:`pipelines.client.retry`; concurrency adapts to 429s
through :mod:`pipelines.client.concurrency`; errors are :mod:`pipelines.client.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from pipelines import __version__
from pipelines.client.concurrency import AdaptiveLimiter, map_bounded
from pipelines.client.errors import (
    ConflictError,
    LynkistAPIError,
    LynkistConfigError,
    LynkistError,
    LynkistTransportError,
    OutcomeUnknownError,
    ServerError,
    api_error,
    format_detail,
)
from pipelines.client.models import BulkResult, ClientStats, ContactPage
from pipelines.client.paginator import ContactPaginator
from pipelines.client.redaction import Secret, redact, redact_url
from pipelines.client.retry import RetryEvent, RetryPolicy, was_sent
from pipelines.contact import API_BASE_PATH
from pipelines.defaults import DEFAULT_MAX_CONCURRENCY
from transforms.contact import BULK_MAX_ITEMS, PAGE_LIMIT_MAX

__all__ = ["USER_AGENT", "LynkistClient"]

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)

USER_AGENT = f"lynkist-etl/{__version__} (+httpx)"


class _BearerAuth(httpx.Auth):
    """Bearer auth whose repr never shows the key."""

    def __init__(self, api_key: Secret) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


def _normalize_base_url(base_url: str) -> str:
    text = (base_url or "").strip()
    example = "use http(s)://host[:port], e.g. https://api.lynkist.io"
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise LynkistConfigError(
            f"base URL {text!r} is not a valid URL ({exc}); {example}"
        ) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise LynkistConfigError(f"base URL {text!r} is not an http(s) URL; {example}")
    if url.query or url.fragment:
        raise LynkistConfigError(f"base URL {text!r} must not have a query or fragment; {example}")
    path = url.path.rstrip("/")
    # Accept a base URL that already includes the API path (a common copy-paste).
    if path.endswith(API_BASE_PATH):
        path = path[: -len(API_BASE_PATH)]
    return str(url.copy_with(path=path or "/")).rstrip("/")


def _check_api_key(api_key: str) -> str:
    if not isinstance(api_key, str) or not api_key.strip():
        raise LynkistConfigError(
            "no API key given — set LYNKIST_API_KEY (or pass --api-key / api_key=...)"
        )
    key = api_key.strip()
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise LynkistConfigError(
            "the API key contains spaces or non-printable characters — check LYNKIST_API_KEY"
        )
    return key


class LynkistClient:
    """Client for the Lynkist Contacts API.

    Thread-safe: one instance serves every thread of a sync or a push. Use it as a context
    manager (or call :meth:`close`).

    Args:
        base_url: Server root, e.g. ``"https://api.lynkist.io"`` or ``"http://127.0.0.1:8123"``
            (the API path ``/api/v1/public/contacts`` is appended).
        api_key: The tenant's API key (sent as ``Authorization: Bearer``; never logged).
        timeout: Seconds per network operation (connect at most 10 s).
        max_concurrency: Upper bound of concurrent requests in :meth:`iter_contact_pages` and
            :meth:`map_concurrent`; also sizes the connection pool.
        retry: Retry policy (default :class:`RetryPolicy()`).
        transport: An httpx transport to use instead of the network (tests, proxies).

    Raises:
        LynkistConfigError: For a malformed base URL or an empty/garbled API key.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.base_url = _normalize_base_url(base_url)
        self._api_key = Secret(_check_api_key(api_key))
        self._api_url = self.base_url + API_BASE_PATH
        # For messages and repr: a base URL may carry credentials (user:password@, ?token=).
        self._shown_url = redact_url(self.base_url, [self._api_key.reveal()])
        self.retry = retry or RetryPolicy()
        self.stats = ClientStats()
        self.limiter = AdaptiveLimiter(max_concurrency)
        self._contacted = False
        self._prefetched: tuple[int, ContactPaginator] | None = None
        self._timeout = timeout
        self._http = httpx.Client(
            auth=_BearerAuth(self._api_key),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"LynkistClient(base_url={self._shown_url!r})"

    def __enter__(self) -> LynkistClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop a listing started by :meth:`prefetch_contact_pages`; close the connection pool."""
        if self._prefetched is not None:
            self._prefetched[1].close()
            self._prefetched = None
        self._http.close()

    @property
    def max_concurrency(self) -> int:
        """The configured upper bound of concurrent requests."""
        return self.limiter.max_concurrency

    # -- endpoints -------------------------------------------------------------------------

    def list_contacts(
        self,
        *,
        page: int = 1,
        limit: int = PAGE_LIMIT_MAX,
        search: str | None = None,
        status: str | None = None,
    ) -> ContactPage:
        """``GET /contacts``: one page, newest first (as the server orders it).

        Args:
            page: 1-based page number.
            limit: Page size, 1-100.
            search: Free-text filter (first/last name, email, company).
            status: Exact status filter.

        Returns:
            The page with its pagination fields.
        """
        params: dict[str, Any] = {"page": page, "limit": limit}
        if search is not None:
            params["search"] = search
        if status is not None:
            params["status"] = status
        response = self._request("GET", "", endpoint="/contacts", params=params)
        return self._page(response)

    def search_contacts(
        self,
        *,
        search_term: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        page: int = 1,
        limit: int = PAGE_LIMIT_MAX,
    ) -> ContactPage:
        """``POST /contacts/search``: filters in the body, paging in the query string.

        Args:
            search_term: Free-text filter.
            status: Exact status filter.
            tag: Contacts carrying this tag.
            page: 1-based page number.
            limit: Page size, 1-100.

        Returns:
            The page with its pagination fields.
        """
        body = {
            k: v
            for k, v in (("search_term", search_term), ("status", status), ("tag", tag))
            if v is not None
        }
        response = self._request(
            "POST",
            "/search",
            endpoint="/contacts/search",
            params={"page": page, "limit": limit},
            json=body,
        )
        return self._page(response)

    def iter_contact_pages(
        self,
        *,
        limit: int = PAGE_LIMIT_MAX,
        search: str | None = None,
        status: str | None = None,
    ) -> ContactPaginator:
        """Every page of ``GET /contacts``: page 1, then the rest concurrently.

        Pages 2..N are fetched in parallel, bounded by the adaptive limiter, and yielded in
        completion order (not page order); memory holds at most a window of pages. Each page
        number is requested once; a page that fails after retries raises from the iterator.

        Args:
            limit: Page size, 1-100.
            search: Free-text filter.
            status: Exact status filter.

        Returns:
            A :class:`ContactPaginator` (an iterator of :class:`ContactPage`; its
            ``total_pages`` / ``pages_fetched`` serve progress displays).
        """

        if self._prefetched is not None:
            (started_limit, started), self._prefetched = self._prefetched, None
            if started_limit == limit and search is None and status is None:
                return started
            started.close()

        def fetch(page: int) -> ContactPage:
            return self.list_contacts(page=page, limit=limit, search=search, status=status)

        return ContactPaginator(fetch, limiter=self.limiter)

    def prefetch_contact_pages(self, *, limit: int = PAGE_LIMIT_MAX, buffer: int = 256) -> None:
        """Start listing every contact now, in the background, for a later consumer.

        For a caller with slow work ahead (``lynkist sync`` importing dlt before it can take a
        page): the pages arrive meanwhile, up to ``buffer`` held. The next
        :meth:`iter_contact_pages` with the same ``limit`` and no filter continues this listing
        instead of starting another; :meth:`close` stops it if nobody came.

        Args:
            limit: Page size, 1-100.
            buffer: Most pages held before the consumer takes the first one.
        """
        if self._prefetched is not None:
            self._prefetched[1].close()
        pages = self.iter_contact_pages(limit=limit)
        self._prefetched = (limit, pages.start(start_buffer=buffer))

    def iter_search_pages(
        self,
        *,
        search_term: str | None = None,
        status: str | None = None,
        tag: str | None = None,
        limit: int = PAGE_LIMIT_MAX,
    ) -> ContactPaginator:
        """Every page of ``POST /contacts/search``, paginated like :meth:`iter_contact_pages`.

        Args:
            search_term: Free-text filter.
            status: Exact status filter.
            tag: Contacts carrying this tag.
            limit: Page size, 1-100.

        Returns:
            A :class:`ContactPaginator`; ``close()`` it to stop early (``total_pages`` is known
            after the first page).
        """

        def fetch(page: int) -> ContactPage:
            return self.search_contacts(
                search_term=search_term, status=status, tag=tag, page=page, limit=limit
            )

        return ContactPaginator(fetch, limiter=self.limiter)

    def get_contact(self, contact_id: str) -> dict[str, Any]:
        """``GET /contacts/{id}``.

        Raises:
            NotFoundError: No live contact with this id in the key's tenant.
        """
        response = self._request("GET", self._id_path(contact_id), endpoint="/contacts/{id}")
        return self._json(response)

    def create_contact(
        self, fields: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """``POST /contacts``: create one contact.

        Retried like a read only when ``idempotency_key`` is given (the server answers a
        replay with the first result). Without one, a failure after sending raises
        :class:`OutcomeUnknownError` instead of risking a duplicate.

        Args:
            fields: The contact's writable fields (``first_name`` required).
            idempotency_key: A unique key per intended contact (e.g. ``uuid4().hex``).

        Returns:
            The created contact, with ``id``.
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = self._request(
            "POST",
            "",
            endpoint="/contacts",
            json=dict(fields),
            headers=headers,
            idempotent=idempotency_key is not None,
        )
        return self._json(response)

    def bulk_create(
        self, contacts: list[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> BulkResult:
        """``POST /contacts/bulk``: create up to 100 contacts.

        Retried only when the batch provably was not processed: a 429, or a connection that
        failed before anything was sent. Any other failure after sending (timeout, dropped
        connection, 5xx) raises :class:`OutcomeUnknownError`: the server may have committed
        the batch, the response carries no ids, and the API does not promise to honour
        ``Idempotency-Key`` on this endpoint — the caller must reconcile before resending.

        Args:
            contacts: 1-100 contacts; an empty list returns an empty result without a call.
            idempotency_key: Sent as ``Idempotency-Key`` for servers that honour it on bulk;
                it does not change the retry rule above.

        Returns:
            The per-batch counts and the per-item errors by index.

        Raises:
            ValueError: More than 100 contacts.
        """
        if not contacts:
            return BulkResult(total=0, created=0, failed=0, errors=[])
        if len(contacts) > BULK_MAX_ITEMS:
            raise ValueError(f"bulk_create takes at most {BULK_MAX_ITEMS} contacts")
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = self._request(
            "POST",
            "/bulk",
            endpoint="/contacts/bulk",
            json={"contacts": [dict(c) for c in contacts]},
            headers=headers,
            idempotent=False,
        )
        try:
            return BulkResult.from_json(self._json(response))
        except ValueError as exc:
            raise self._bad_body("POST", response, str(exc)) from None

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``PATCH /contacts/{id}``: change only the given fields (``None`` clears one).

        Retried (re-applying the same partial update is harmless).

        Returns:
            The updated contact.

        Raises:
            NotFoundError: The contact does not exist or was archived.
            ValidationError: A field value was rejected (``.field_errors``).
        """
        response = self._request(
            "PATCH", self._id_path(contact_id), endpoint="/contacts/{id}", json=dict(fields)
        )
        return self._json(response)

    def delete_contact(self, contact_id: str) -> None:
        """``DELETE /contacts/{id}``: archive (soft-delete) a contact.

        Retried. When an earlier attempt may have gone through (its answer was lost) and the
        retry answers 404, the contact is archived either way, so that counts as success.

        Raises:
            NotFoundError: The contact did not exist (on the first answer).
        """
        self._request(
            "DELETE", self._id_path(contact_id), endpoint="/contacts/{id}", delete_retry=True
        )

    def map_concurrent(
        self, fn: Callable[[T], R], items: Iterable[T]
    ) -> Iterator[tuple[T, R | Exception]]:
        """Run ``fn`` over ``items`` in threads, bounded by the adaptive limiter.

        Typically ``fn`` makes one client call (e.g. a PATCH). Fewer calls are in flight after
        429s and more again when the API is calm. Items are consumed lazily.

        Args:
            fn: Work for one item; exceptions are yielded, not raised.
            items: The inputs.

        Yields:
            ``(item, result)`` or ``(item, exception)`` in completion order.
        """
        return map_bounded(fn, items, limiter=self.limiter, thread_name_prefix="lynkist-map")

    # -- plumbing --------------------------------------------------------------------------

    @staticmethod
    def _id_path(contact_id: str) -> str:
        if not contact_id:
            raise ValueError("contact_id must not be empty")
        return "/" + quote(str(contact_id), safe="")

    def _page(self, response: httpx.Response) -> ContactPage:
        try:
            return ContactPage.from_json(self._json(response))
        except ValueError as exc:
            raise self._bad_body(response.request.method, response, str(exc)) from None

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise self._bad_body(
                response.request.method, response, "the response is not JSON"
            ) from None

    def _bad_body(self, method: str, response: httpx.Response, why: str) -> LynkistAPIError:
        snippet = redact(response.text[:200], [self._api_key.reveal()])
        return LynkistAPIError(
            response.status_code,
            method,
            response.request.url.path,
            f"unexpected response from {self._shown_url}: {why}; body starts {snippet!r}",
        )

    def _detail(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500]
        detail = body.get("detail", body) if isinstance(body, dict) else body
        return redact(detail, [self._api_key.reveal()])

    def _request(
        self,
        method: str,
        suffix: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        delete_retry: bool = False,
    ) -> httpx.Response:
        """Send one logical request with retries and map failures to typed errors.

        ``endpoint`` is the template used in stats (``/contacts/{id}``); messages show the
        real path. ``idempotent=False`` turns failures that may have been applied into
        :class:`OutcomeUnknownError` (never retried).
        """
        url = self._api_url + suffix
        path = httpx.URL(url).path
        maybe_applied = False

        def attempt() -> httpx.Response:
            nonlocal maybe_applied
            self.stats.record_request(method, endpoint)
            failure: httpx.TransportError | None = None
            try:
                response = self._http.request(
                    method, url, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                failure = exc
            if failure is not None:
                # Raised outside the except block so no httpx exception (whose .request holds
                # the Authorization header) is chained to ours.
                raise self._transport_error(method, path, failure, idempotent)
            self._contacted = True
            self.stats.record_status(response.status_code)
            if response.status_code == 429:
                self.limiter.on_throttle(self.limiter.current_epoch())
            else:
                self.limiter.on_success()
            if response.is_success:
                return response
            if (
                delete_retry
                and maybe_applied
                and response.status_code == 404
                and method == "DELETE"
            ):
                return response
            if response.is_redirect:
                # Never followed (the key must not travel to another address); the address
                # is shown to fix the base URL, with any credential it echoes masked.
                location = redact_url(
                    response.headers.get("Location", "?"), [self._api_key.reveal()]
                )
                raise LynkistConfigError(
                    f"{method} {path} was redirected (HTTP {response.status_code}) to "
                    f"{location} — set the base URL to the final address"
                )
            if response.status_code == 404 and suffix in ("", "/search", "/bulk"):
                # The collection endpoints always exist on a Lynkist server.
                raise LynkistConfigError(
                    f"{method} {path} answered 404: {self._shown_url} does not serve the "
                    "Lynkist Contacts API — check --base-url / LYNKIST_BASE_URL"
                )
            retry_after = self.retry.parse_retry_after(response.headers.get("Retry-After"))
            error = api_error(
                response.status_code, method, path, self._detail(response), retry_after=retry_after
            )
            if response.status_code == 409 and headers and "Idempotency-Key" in headers:
                # its key is still in progress on the server: nothing done, retried (replays)
                error = ConflictError(409, method, path, error.detail, retry_after=retry_after)
            if isinstance(error, ServerError):
                if not idempotent:
                    raise OutcomeUnknownError(
                        method,
                        path,
                        f"HTTP {error.status}: {format_detail(error.detail) or 'server error'}",
                        status=error.status,
                    )
                maybe_applied = True
            raise error

        def on_retry(event: RetryEvent) -> None:
            nonlocal maybe_applied
            self.stats.record_retry()
            if isinstance(event.error, LynkistTransportError) and event.error.sent:
                maybe_applied = True
            log.info(
                "retrying %s %s in %.1fs after attempt %d failed: %s",
                method,
                path,
                event.wait,
                event.attempt,
                type(event.error).__name__,
            )

        try:
            return self.retry.call(attempt, on_retry=on_retry)
        except LynkistTransportError as error:
            self.stats.record_error()
            if error.first_contact and not error.sent:
                raise LynkistConfigError(
                    f"cannot reach the Lynkist API at {self._shown_url} ({error.reason}) — check "
                    "--base-url / LYNKIST_BASE_URL and that the server is running"
                ) from None
            if error.first_contact and error.reason.startswith(("ReadTimeout", "WriteTimeout")):
                # it accepted the connection and never answered: a wrong port (not an HTTP
                # server) or a hung server; say which host, and which setting bounds the wait
                raise LynkistConfigError(
                    f"{urlsplit(self.base_url).netloc} accepted the connection but did not "
                    f"answer within {self._timeout:g} s (--timeout) — check --base-url / "
                    "LYNKIST_BASE_URL and that the server there is the Lynkist API and healthy"
                ) from None
            raise
        except LynkistError:
            self.stats.record_error()
            raise

    def _transport_error(
        self, method: str, path: str, exc: httpx.TransportError, idempotent: bool
    ) -> LynkistError:
        self.stats.record_transport_error()
        reason = redact(f"{type(exc).__name__}: {exc}".rstrip(": "), [self._api_key.reveal()])
        if isinstance(exc, httpx.UnsupportedProtocol):
            return LynkistConfigError(f"base URL {self._shown_url!r} is not usable: {reason}")
        sent = was_sent(exc)
        if sent and not idempotent:
            return OutcomeUnknownError(method, path, reason)
        return LynkistTransportError(
            method, path, reason, sent=sent, first_contact=not self._contacted
        )
