"""``GET /contacts/{id}`` answered without FastAPI's routing: the cheapest read stays cheap.

A real API answers reads by id from a fleet of servers; the sandbox is one process that also
sends the webhooks, and FastAPI's routing, dependency solving and exception layers cost more
than the read itself (about 0.5 ms of CPU per GET, measured). A webhook receiver that fetches
each changed contact (``lynkist listen``) makes this the hottest endpoint, so it is served here,
inside the gate (log, latency, authentication), the rate limiter and the fault injector: every
one of them still applies. The answers are the route's own (``routes.get_contact`` stays the
documented one, for the OpenAPI document).
"""

from __future__ import annotations

from lynkist_sandbox.gate import principal_of
from lynkist_sandbox.ratelimit import ASGIApp, Receive, Scope, Send
from lynkist_sandbox.service import ContactService
from lynkist_sandbox.store import wire
from pipelines.contact import API_BASE_PATH

_PREFIX = API_BASE_PATH + "/"
_NOT_FOUND = b'{"detail":"Contact not found"}'


class FastContactRead:
    """Pure ASGI: serve ``GET {API_BASE_PATH}/{id}`` from the service, pass the rest on.

    Args:
        app: The FastAPI app (everything else).
        service: The contact operations.
    """

    def __init__(self, app: ASGIApp, service: ContactService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "GET" or not path.startswith(_PREFIX):
            await self.app(scope, receive, send)
            return
        contact_id = path[len(_PREFIX) :]
        if not contact_id or "/" in contact_id:
            await self.app(scope, receive, send)
            return
        contact = self.service.get(principal_of(scope).tenant, contact_id)
        status, body = (200, wire(contact).encode()) if contact is not None else (404, _NOT_FOUND)
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
