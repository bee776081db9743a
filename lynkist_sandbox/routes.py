"""The seven public endpoints under ``/api/v1/public/contacts``.

Authentication happens in :mod:`lynkist_sandbox.gate` (before the body is read); the
``HTTPBearer`` dependency here only documents the scheme in the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from lynkist_sandbox.gate import principal_of
from lynkist_sandbox.idempotency import MAX_KEY_LENGTH
from lynkist_sandbox.models import (
    BulkRequest,
    BulkResponse,
    Contact,
    ContactCreate,
    ContactPage,
    ContactUpdate,
    ErrorResponse,
    MessageResponse,
    SearchRequest,
)
from lynkist_sandbox.service import ContactService, IdempotencyConflictError, WriteResult
from lynkist_sandbox.store import ContactFilter, wire
from pipelines.contact import API_BASE_PATH
from transforms.contact import PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


Responses = dict[int | str, dict[str, Any]]
E400: Responses = {400: _error("Missing body or malformed JSON")}
E401: Responses = {401: _error("Missing or invalid API key")}
E403: Responses = {403: _error("The key lacks the scope the endpoint needs")}
E404: Responses = {
    404: _error("The contact does not exist, is archived, or belongs to another tenant")
}
E422: Responses = {422: _error("Validation error, with field-level details")}
E429: Responses = {
    429: {
        **_error("Rate limit hit"),
        "headers": {
            "Retry-After": {
                "description": "Seconds, or an HTTP-date, to wait before retrying",
                "schema": {"type": "string"},
            }
        },
    }
}
COMMON: Responses = {**E401, **E403, **E429}

router = APIRouter(
    prefix=API_BASE_PATH,
    tags=["contacts"],
    dependencies=[Security(bearer)],
    responses=COMMON,
)

Page = Annotated[int, Query(ge=1, description="Page number, from 1")]
Limit = Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX, description="Page size, 1-100")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=MAX_KEY_LENGTH,
        description="Same key + same body within 24 h replays the first answer; "
        "same key + different body is a 422.",
    ),
]
BulkIdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=MAX_KEY_LENGTH,
        description="Honoured only when the sandbox runs with --idempotent-bulk "
        "(the reference does not promise it); ignored otherwise.",
    ),
]
NOT_FOUND = {"detail": "Contact not found"}


def _service(request: Request) -> ContactService:
    service: ContactService = request.app.state.service
    return service


def _tenant(request: Request) -> str:
    return principal_of(request.scope).tenant


def _json(body: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=body, status_code=status, media_type="application/json", headers=headers
    )


def _written(result: WriteResult) -> Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return _json(result.body, result.status, headers)


@router.get(
    "",
    summary="List contacts",
    response_model=None,
    responses={200: {"model": ContactPage, "description": "A page, newest first"}, **E422},
)
async def list_contacts(
    request: Request,
    search: Annotated[
        str | None,
        Query(description="Case-insensitive substring of first_name, last_name, email, company"),
    ] = None,
    status: Annotated[str | None, Query(description="Exact status")] = None,
    page: Page = 1,
    limit: Limit = PAGE_LIMIT_DEFAULT,
) -> Response:
    """Live contacts, newest first (``created_at`` desc, then ``id`` desc)."""
    flt = ContactFilter(search=search or None, status=status)
    return _json(_service(request).page(_tenant(request), flt, page, limit))


@router.post(
    "/search",
    summary="Search contacts",
    response_model=None,
    responses={
        200: {"model": ContactPage, "description": "A page, newest first"},
        **E400,
        **E422,
    },
)
async def search_contacts(
    request: Request, body: SearchRequest, page: Page = 1, limit: Limit = PAGE_LIMIT_DEFAULT
) -> Response:
    """Like the list, with filters in the body; ``tag`` matches one tag exactly."""
    flt = ContactFilter(search=body.search_term or None, status=body.status, tag=body.tag)
    return _json(_service(request).page(_tenant(request), flt, page, limit))


@router.post(
    "",
    summary="Create a contact",
    status_code=201,
    response_model=None,
    responses={201: {"model": Contact, "description": "The new contact"}, **E400, **E422},
)
async def create_contact(
    request: Request, body: ContactCreate, idempotency_key: IdempotencyKey = None
) -> Response:
    """Create a contact; emits ``contact.created``."""
    try:
        result = _service(request).create(_tenant(request), body, idempotency_key or None)
    except IdempotencyConflictError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    return _written(result)


@router.post(
    "/bulk",
    summary="Bulk-create contacts",
    status_code=201,
    response_model=None,
    responses={201: {"model": BulkResponse, "description": "Per-item outcome"}, **E400, **E422},
)
async def bulk_create(
    request: Request, body: BulkRequest, idempotency_key: BulkIdempotencyKey = None
) -> Response:
    """Create up to 100 contacts; invalid items are reported by index, never abort the batch."""
    try:
        result = _service(request).bulk(_tenant(request), body.contacts, idempotency_key or None)
    except IdempotencyConflictError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    return _written(result)


@router.get(
    "/{contact_id}",
    summary="Get a contact",
    response_model=None,
    responses={200: {"model": Contact, "description": "The contact"}, **E404},
)
async def get_contact(request: Request, contact_id: str) -> Response:
    """One live contact of the key's tenant."""
    contact = _service(request).get(_tenant(request), contact_id)
    if contact is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    return _json(wire(contact))


@router.patch(
    "/{contact_id}",
    summary="Update a contact",
    response_model=None,
    responses={
        200: {"model": Contact, "description": "The updated contact"},
        **E400,
        **E404,
        **E422,
    },
)
async def update_contact(request: Request, contact_id: str, body: ContactUpdate) -> Response:
    """Partial update: only the fields sent change; null clears a nullable field."""
    contact = _service(request).update(_tenant(request), contact_id, body)
    if contact is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    return _json(wire(contact))


@router.delete(
    "/{contact_id}",
    summary="Archive a contact",
    response_model=None,
    responses={200: {"model": MessageResponse, "description": "Archived"}, **E404},
)
async def delete_contact(request: Request, contact_id: str) -> Response:
    """Soft delete: hidden from list, search and GET from now on; emits ``contact.deleted``."""
    if not _service(request).archive(_tenant(request), contact_id):
        return JSONResponse(NOT_FOUND, status_code=404)
    return JSONResponse({"message": "Contact deleted"})
