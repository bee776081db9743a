"""The admin API under ``/_sandbox`` (header ``X-Sandbox-Admin``; not in ``/openapi.json``).

It lets tests and benchmarks inspect and steer the sandbox: the request log, faults, live
settings, the clock, scan hooks, demo data, planted (unvalidated) records, ground truth, reset,
webhook deliveries.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lynkist_sandbox.faults import FaultSpec
from lynkist_sandbox.hooks import ScanHook
from lynkist_sandbox.models import ContactCreate, ContactUpdate, describe_errors
from lynkist_sandbox.seed import generate_contacts
from lynkist_sandbox.service import ContactService
from lynkist_sandbox.state import SandboxState
from lynkist_sandbox.store import wire

ADMIN_HEADER = "X-Sandbox-Admin"


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def require_admin(
    request: Request, token: Annotated[str | None, Header(alias=ADMIN_HEADER)] = None
) -> None:
    """Reject requests without the admin token (compared in constant time)."""
    expected = _state(request).admin_token
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(401, f"Missing or wrong {ADMIN_HEADER} header")


router = APIRouter(
    prefix="/_sandbox", include_in_schema=False, dependencies=[Depends(require_admin)]
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClockBody(_Strict):
    offset_seconds: float


class HookOp(_Strict):
    op: Literal["create", "update", "archive"]
    contact: dict[str, Any] | None = None
    id: str | None = None
    fields: dict[str, Any] | None = None


class ScanHookBody(_Strict):
    tenant: str
    after_page: int = Field(ge=1)
    ops: list[HookOp]


class SeedBody(_Strict):
    tenant: str = "acme"
    n: int = Field(ge=0, le=2_000_000)
    seed: int = 0
    updated_share: float = Field(default=0.6, ge=0.0, le=1.0)


class PlantBody(_Strict):
    tenant: str = "acme"
    # Any JSON objects: validation is exactly what planting bypasses.
    contacts: list[dict[str, Any]] = Field(max_length=10_000)


class UpdatesBody(_Strict):
    tenant: str = "acme"
    # contact id -> the fields to change, exactly as a PATCH body (validated as one)
    updates: dict[str, dict[str, Any]] = Field(max_length=10_000)


class NoteBody(_Strict):
    tenant: str = "acme"
    body: str = Field(min_length=1, max_length=10_000)
    author: str | None = None


class CommunicationBody(_Strict):
    tenant: str = "acme"
    channel: Literal["email", "call", "sms", "meeting", "other"] = "email"
    direction: Literal["inbound", "outbound"] = "outbound"
    subject: str | None = Field(default=None, max_length=1000)
    body: str | None = Field(default=None, max_length=10_000)


def _check_tenant(state: SandboxState, tenant: str) -> None:
    if tenant not in state.keyring.tenants:
        raise HTTPException(422, f"unknown tenant {tenant!r}; known: {state.keyring.tenants}")


@router.get("/requests")
def get_requests(request: Request) -> dict[str, Any]:
    """Every logged public-API request, oldest first."""
    return {"requests": _state(request).requests.entries()}


@router.delete("/requests")
def clear_requests(request: Request) -> dict[str, Any]:
    """Clear the request log."""
    _state(request).requests.clear()
    return {"cleared": True}


@router.get("/faults")
def get_faults(request: Request) -> dict[str, Any]:
    """The fault spec in force."""
    return _state(request).faults.to_dict()


@router.put("/faults")
def put_faults(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Replace the fault spec (missing fields are 0); the draws restart from its seed."""
    try:
        spec = FaultSpec.from_mapping(body)
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, str(exc)) from None
    _state(request).faults = spec
    return spec.to_dict()


@router.get("/settings")
def get_settings(request: Request) -> dict[str, Any]:
    """The live settings."""
    return _state(request).settings()


@router.put("/settings")
def put_settings(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Change latency, rate limit, burst, Retry-After style or bulk idempotency, live."""
    try:
        return _state(request).update_settings(body)
    except (ValueError, TypeError) as exc:
        raise HTTPException(422, str(exc)) from None


@router.put("/clock")
def put_clock(request: Request, body: ClockBody) -> dict[str, Any]:
    """Shift the server clock (negative: writes get timestamps in the past)."""
    state = _state(request)
    state.clock.offset_seconds = body.offset_seconds
    return {"offset_seconds": body.offset_seconds, "now": state.clock.now_iso()}


@router.post("/scan-hooks")
def add_scan_hook(request: Request, body: ScanHookBody) -> dict[str, Any]:
    """Run ops once, right after the tenant's first list/search answer for ``after_page``."""
    state = _state(request)
    _check_tenant(state, body.tenant)
    ops: list[dict[str, Any]] = []
    for index, op in enumerate(body.ops):
        try:
            if op.op == "create":
                ContactCreate.model_validate(op.contact)
                ops.append({"op": "create", "contact": op.contact})
            elif op.op == "update":
                ContactUpdate.model_validate(op.fields)
                if not op.id:
                    raise HTTPException(422, f"ops[{index}]: update needs an id")
                ops.append({"op": "update", "id": op.id, "fields": op.fields})
            else:
                if not op.id:
                    raise HTTPException(422, f"ops[{index}]: archive needs an id")
                ops.append({"op": "archive", "id": op.id})
        except ValidationError as exc:
            raise HTTPException(422, f"ops[{index}]: {describe_errors(exc)}") from None
    state.hooks.add(ScanHook(body.tenant, body.after_page, ops))
    return {"registered": len(ops)}


@router.post("/seed")
async def seed(request: Request, body: SeedBody) -> dict[str, Any]:
    """Generate demo contacts into a tenant."""
    state = _state(request)
    _check_tenant(state, body.tenant)
    created = await run_in_threadpool(
        seed_tenant, state, body.tenant, body.n, body.seed, body.updated_share
    )
    return {"created": created}


def seed_tenant(state: SandboxState, tenant: str, n: int, seed: int, updated_share: float) -> int:
    """Generate ``n`` contacts (timestamps before the server's now) into ``tenant``."""
    if n <= 0:
        return 0
    contacts = generate_contacts(n, seed=seed, updated_share=updated_share, now=state.clock.now())
    return state.contacts.insert_existing(tenant, contacts)


@router.post("/plant")
async def plant(request: Request, body: PlantBody) -> dict[str, Any]:
    """Store contacts as the API would return them, bypassing validation (bad-record tests).

    Each object is served by list, search and get exactly as given (a lone surrogate escaped
    as ``\\ud83d``); ``id`` and ``created_at`` are filled in when missing. A contact with the
    same id is replaced. No webhook is sent.
    """
    state = _state(request)
    _check_tenant(state, body.tenant)
    ids = await run_in_threadpool(
        state.contacts.plant, body.tenant, body.contacts, state.clock.now_iso()
    )
    return {"ids": ids}


@router.get("/contacts")
def ground_truth(request: Request, tenant: Annotated[str, Query()] = "acme") -> Response:
    """Every contact of the tenant, archived ones included, with ``archived_at``."""
    state = _state(request)
    _check_tenant(state, tenant)
    # wire(): a planted lone surrogate is sent escaped, not as invalid UTF-8
    body = wire({"contacts": state.contacts.all_contacts(tenant)})
    return Response(body, media_type="application/json")


@router.post("/reset")
def reset(request: Request) -> dict[str, Any]:
    """Delete contacts, idempotency keys, logs, hooks and webhook deliveries."""
    _state(request).reset()
    return {"reset": True}


@router.post("/updates")
def apply_updates(request: Request, body: UpdatesBody) -> dict[str, Any]:
    """Change many contacts in one call, as that many ``PATCH /contacts/{id}`` would: each is
    validated as a PATCH body, committed on its own and emits its own ``contact.updated``.

    For driving webhook receivers at rates one process cannot serve PATCH requests at; the
    answer maps each changed id to its new ``updated_at`` (its commit time), unknown or
    archived ids to null.
    """
    state = _state(request)
    _check_tenant(state, body.tenant)
    try:
        changes = {cid: ContactUpdate.model_validate(f) for cid, f in body.updates.items()}
    except ValidationError as exc:
        raise HTTPException(422, describe_errors(exc)) from None
    service: ContactService = request.app.state.service
    committed: dict[str, str | None] = {}
    for contact_id, update in changes.items():
        contact = service.update(body.tenant, contact_id, update)
        committed[contact_id] = contact["updated_at"] if contact else None
    return {"updated": committed}


def _add_activity(
    request: Request, contact_id: str, kind: str, body: NoteBody | CommunicationBody
) -> dict[str, Any]:
    state = _state(request)
    tenant = body.tenant
    fields = body.model_dump(exclude={"tenant"}, exclude_none=True)
    _check_tenant(state, tenant)
    service: ContactService = request.app.state.service
    data = service.add_activity(tenant, contact_id, kind, fields)
    if data is None:
        raise HTTPException(404, f"no live contact {contact_id} in tenant {tenant!r}")
    return data


@router.post("/contacts/{contact_id}/notes", status_code=201)
def add_note(request: Request, contact_id: str, body: NoteBody) -> dict[str, Any]:
    """Attach a note to a contact (as the dashboard would); emits ``contact.note_added``."""
    return _add_activity(request, contact_id, "note", body)


@router.post("/contacts/{contact_id}/communications", status_code=201)
def add_communication(request: Request, contact_id: str, body: CommunicationBody) -> dict[str, Any]:
    """Record a communication; emits ``contact.communication_added``."""
    return _add_activity(request, contact_id, "communication", body)


@router.get("/webhooks")
def webhook_deliveries(request: Request) -> dict[str, Any]:
    """Webhook delivery attempts so far."""
    return {"deliveries": list(_state(request).webhooks.deliveries)}
