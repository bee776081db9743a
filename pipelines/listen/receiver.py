"""The HTTP side of ``lynkist listen``: verify, spool, acknowledge (a Starlette app).

``POST /webhooks/lynkist``:

* 413 when the body is larger than the limit (checked on ``Content-Length`` and while reading);
* 400 when the signature is missing, wrong or stale, or the event is not one (never stored);
* 200 ``{"status": "stored"}`` once the event is fsync'd in the spool, or
  ``{"status": "duplicate"}`` when its id was stored before (acknowledged, not applied twice);
* 503 when the spool cannot store it, so the sender retries.

``GET /healthz``: 200 with the queue depth (events spooled, not yet in the warehouse), the time
of the last flush and the counters.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.listen.spool import Spool, SpooledEvent, SpoolError, utc_now_iso
from pipelines.webhooks import (
    DEFAULT_TOLERANCE_S,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_SCHEME,
    WebhookVerificationError,
    verify,
)

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/webhooks/lynkist"
HEALTH_PATH: Final = "/healthz"
#: A contact event is a few KB; anything near this is not one of ours.
DEFAULT_MAX_BODY: Final = 1024 * 1024


@dataclass(frozen=True)
class VerifySettings:
    """How deliveries are authenticated (the reference does not define a format).

    Attributes:
        secret: The shared HMAC secret (kept out of ``repr``).
        header: Header carrying ``t=<unix>,<scheme>=<hex>``.
        scheme: The signature's key in that header.
        tolerance_s: Largest accepted distance between the signed time and now.
        event_id_header: Header carrying the event id (must match the body's ``id`` if sent).
    """

    secret: str
    header: str = SIGNATURE_HEADER
    scheme: str = SIGNATURE_SCHEME
    tolerance_s: float = DEFAULT_TOLERANCE_S
    event_id_header: str = EVENT_ID_HEADER

    def __repr__(self) -> str:
        return f"VerifySettings(header={self.header!r}, tolerance_s={self.tolerance_s})"


class Counters:
    """What the receiver answered so far (read by ``/healthz`` and the exit summary)."""

    def __init__(self) -> None:
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        self.oversized = 0
        self.store_failures = 0


class InvalidEvent(ValueError):
    """A correctly signed body that is not an event we can keep."""


def parse_event(event: dict[str, Any], header_id: str | None) -> SpooledEvent:
    """The spool record of a verified event body.

    Raises:
        InvalidEvent: No id or type, or the id differs from the event-id header.
    """
    event_id, kind = event.get("id"), event.get("event")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidEvent("event has no id")
    if not isinstance(kind, str) or not kind:
        raise InvalidEvent("event has no type")
    if header_id is not None and header_id != event_id:
        raise InvalidEvent("event id header does not match the body's id")
    data = event.get("data")
    contact_id = data.get("id") if isinstance(data, dict) else None
    if kind.startswith("contact.") and not (isinstance(contact_id, str) and contact_id):
        raise InvalidEvent(f"{kind} event without data.id")
    tenant, occurred = event.get("tenant"), event.get("occurred_at")
    return SpooledEvent(
        seq=0,
        event_id=event_id,
        event=kind,
        tenant=tenant if isinstance(tenant, str) else None,
        contact_id=contact_id if isinstance(contact_id, str) else None,
        occurred_at=occurred if isinstance(occurred, str) else None,
        received_at=utc_now_iso(),
        payload=json.dumps(event, separators=(",", ":"), ensure_ascii=False),
    )


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    spool: Spool,
    verify_settings: VerifySettings,
    *,
    on_stored: Callable[[SpooledEvent], None],
    health: Callable[[], dict[str, Any]],
    counters: Counters,
    max_body: int = DEFAULT_MAX_BODY,
) -> Starlette:
    """The receiver app.

    Args:
        spool: Where accepted events go.
        verify_settings: Secret, header, scheme, tolerance.
        on_stored: Called with each newly stored event (the applier fetches its contact
            and wakes up).
        health: Returns the applier's part of ``/healthz`` (queue depth, last flush).
        counters: Filled with what was answered.
        max_body: Largest accepted body, in bytes.
    """
    settings = verify_settings

    async def receive(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, max_body)
        except _TooLarge:
            counters.oversized += 1
            return JSONResponse({"error": f"body larger than {max_body} bytes"}, 413)
        try:
            event = verify(
                body,
                request.headers.get(settings.header),
                settings.secret,
                tolerance_s=settings.tolerance_s,
                scheme=settings.scheme,
            )
            record = parse_event(event, request.headers.get(settings.event_id_header))
        except (WebhookVerificationError, InvalidEvent) as exc:
            counters.rejected += 1
            log.info("rejected a delivery: %s", exc)
            return JSONResponse({"error": str(exc)}, 400)
        try:
            added = await run_in_threadpool(spool.add, record)
        except SpoolError as exc:
            counters.store_failures += 1
            log.error("%s", exc)
            return JSONResponse({"error": "cannot store the event now; retry later"}, 503)
        if not added:
            counters.duplicates += 1
            return JSONResponse({"status": "duplicate", "id": record.event_id})
        counters.stored += 1
        on_stored(record)
        return JSONResponse({"status": "stored", "id": record.event_id})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **health(), **vars(counters)})

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, receive, methods=["POST"]),
            Route(HEALTH_PATH, healthz, methods=["GET"]),
        ]
    )
