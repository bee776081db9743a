"""The sandbox ASGI application: routes, admin API, error mapping, middleware stack."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from lynkist_sandbox import admin, routes
from lynkist_sandbox.config import SandboxConfig
from lynkist_sandbox.fastread import FastContactRead
from lynkist_sandbox.faults import DroppedResponseLogFilter, FaultInjectionMiddleware
from lynkist_sandbox.gate import ApiGate
from lynkist_sandbox.idempotency import KeyInProgressGuard
from lynkist_sandbox.ratelimit import RateLimitMiddleware
from lynkist_sandbox.service import ContactService
from lynkist_sandbox.state import SandboxState
from pipelines import __version__

DESCRIPTION = """\
A local, faithful implementation of the Lynkist Contacts API for demos and tests.

Where the vendor reference is silent, the sandbox decides:

- Order: `created_at` descending, then `id` descending; updates never move a contact.
  Inserts and archives during a scan shift later pages (as with many real APIs).
- Timestamps: ISO-8601 UTC with microseconds and `Z` (`2026-05-12T08:00:00.123456Z`);
  `updated_at` is null until the first PATCH that sends at least one field.
- `total_pages` = ceil(total_items / limit), 0 for no contacts; `has_prev` = page > 1, also
  past the last page (which answers `data: []`).
- Bodies: unknown fields are a 422 (`extra="forbid"`); a missing body, malformed JSON, or JSON
  that is not an object is a 400; bodies are read as JSON whatever their Content-Type.
- `first_name`, `tags`, `custom_fields` are not nullable (null is a 422); an empty PATCH `{}`
  changes nothing and emits nothing; tags and custom_fields are replaced, not merged.
- Email: syntax-checked (special-use domains such as `.test` accepted) and stored normalized
  (domain lower-cased). Phone: any string of at most 20 characters (E.164 not enforced).
  Other strings: no length limit.
- Search: case-insensitive (Unicode case folding) substring of first_name, last_name, email or
  company; an empty term means no filter. `status` and `tag` are exact, case-sensitive matches.
- Bulk: always 201 (even when every item fails), an empty list is fine, more than 100 items is
  a 422 for the whole request; the answer carries no ids.
- 404 for unknown, archived and other tenants' ids alike (also for ids that are not UUIDs).
- Idempotency-Key (POST /contacts; POST /bulk only with `--idempotent-bulk`): per tenant, kept
  24 h, at most 255 characters; a replay answers the stored status and body with the header
  `Idempotent-Replayed: true`; a request rejected by validation stores nothing; a repeat while
  the first with its key is still being processed (e.g. held by `commit_delay_ms`) is a 409.
- Auth before anything else: 401 (with `WWW-Authenticate: Bearer`) for a missing or unknown key,
  403 for a missing scope, even when the body is malformed too.
- A trailing slash on any API path is served like the path without it.
"""


def _body_problem(exc: RequestValidationError) -> str | None:
    """Why the body as a whole is unusable (→ 400), or ``None`` for field-level errors (→ 422).

    The whole body is wrong when it is missing, is not JSON, or is JSON but not an object.
    """
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "string_unicode":  # valid JSON, text that is not: a 422
            continue
        if err.get("type") == "json_invalid":
            return f"Malformed JSON body: {err.get('ctx', {}).get('error', err.get('msg'))}"
        if loc == ("body",):
            if err.get("type") == "missing":
                return "Request body is required (a JSON object)"
            return "Request body must be a JSON object"
    return None


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problem = _body_problem(exc)
    if problem is not None:
        return JSONResponse({"detail": problem}, status_code=400)
    # FastAPI's own handler, but with an encoder that cannot fail on the echoed input
    return _EscapingJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


class _EscapingJSONResponse(JSONResponse):
    """A JSON answer that can echo any input: non-ASCII as ``\\u`` escapes.

    The 422 details quote the input, and a lone surrogate in it cannot be UTF-8 encoded.
    """

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def create_app(
    config: SandboxConfig | None = None, *, state: SandboxState | None = None
) -> ApiGate:
    """Build the sandbox ASGI app.

    Args:
        config: Start-up configuration (ignored when ``state`` is given).
        state: Ready state to serve (lets the caller read keys and tokens first).

    Returns:
        The ASGI app (FastAPI wrapped in the gate, rate-limit and fault middleware); the
        FastAPI app is reachable as ``.fastapi`` and the state as ``.state``.
    """
    if state is None:
        state = SandboxState(config or SandboxConfig())
        seed_on_start(state)
    sandbox = state

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sandbox.webhooks.start()
        try:
            yield
        finally:
            sandbox.webhooks.stop()

    api = FastAPI(
        title="Lynkist Contacts API (sandbox)",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Parse bodies sent without a Content-Type as JSON too (curl -d sends form type,
        # many scripts send none): a bad body is then a clear 400, not a puzzling 422.
        strict_content_type=False,
    )
    _document_real_statuses(api)
    api.state.sandbox = state
    api.state.service = ContactService(state)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.include_router(routes.router)
    api.include_router(admin.router)

    faulty = FaultInjectionMiddleware(
        FastContactRead(api, api.state.service),
        get_spec=lambda: sandbox.faults,
        get_retry_after_style=lambda: sandbox.config.retry_after,
    )
    limited = RateLimitMiddleware(
        KeyInProgressGuard(faulty),
        get_limiter=lambda: sandbox.limiter,
        get_retry_after_style=lambda: sandbox.config.retry_after,
    )
    app = ApiGate(limited, state)
    app.fastapi = api
    logging.getLogger("uvicorn.error").addFilter(DroppedResponseLogFilter())
    return app


def _document_real_statuses(api: FastAPI) -> None:
    """Drop the 422 FastAPI documents for every parametrized route where none can happen.

    A string path parameter never fails validation, so GET and DELETE by id never answer 422.
    """
    default_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = default_openapi()
            for path, operations in document["paths"].items():
                if path.endswith("/{contact_id}"):
                    for method in ("get", "delete"):
                        operations.get(method, {}).get("responses", {}).pop("422", None)
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def seed_on_start(state: SandboxState) -> int:
    """Seed ``config.seed_contacts`` demo contacts into tenant ``acme``."""
    if state.config.seed_contacts <= 0:
        return 0
    return admin.seed_tenant(
        state, "acme", state.config.seed_contacts, state.config.seed, updated_share=0.6
    )
