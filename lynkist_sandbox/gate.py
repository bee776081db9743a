"""The outer ASGI layer of the public API: request log, added latency, authentication.

Order for a request under ``/api/``: it is logged (whatever happens next), delayed by the
configured latency, authenticated (401 unknown key, 403 missing scope), then passed on to the
rate limiter, the fault injector and finally the routes. Authenticating here, before FastAPI
reads the body, makes a bad key a 401 even when the body is malformed too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lynkist_sandbox.auth import READ, WRITE, Principal, bearer_token
from lynkist_sandbox.ratelimit import ASGIApp, Message, Receive, Scope, Send, send_json
from lynkist_sandbox.state import SandboxState

API_PREFIX = "/api/"
_BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})


def required_scope(method: str, path: str) -> str:
    """The scope a request needs: reads (GET, POST search) need read, the rest write."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return READ
    if method == "POST" and path.rstrip("/").endswith("/search"):
        return READ
    return WRITE


def principal_of(scope: Scope) -> Principal:
    """The principal the gate authenticated (routes only run after it)."""
    principal: Principal = scope["state"]["principal"]
    return principal


class ApiGate:
    """Pure ASGI middleware in front of the rate limiter, the faults and the routes."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        """Wrap ``app``; settings are read from ``state`` per request (live changes apply)."""
        self.app = app
        self.state = state
        #: The FastAPI app behind the middleware (set by ``create_app``).
        self.fastapi: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        state = self.state
        if scope["path"].endswith("/"):
            # Clients that join base URL and path differ on the trailing slash; serve both
            # (a redirect would lose POST bodies with many clients).
            scope = dict(scope, path=scope["path"].rstrip("/"), raw_path=None)
        if scope["method"] in _BODY_METHODS:
            scope = dict(scope, headers=_as_json_body(scope.get("headers", ())))
        token = _authorization_token(scope)
        principal = state.keyring.resolve(token)
        entry: dict[str, Any] = {
            "seq": None,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "status": None,
            "tenant": principal.tenant if principal else None,
            "fault": None,
            "at": state.clock.now_iso(),
        }
        request_state = scope.setdefault("state", {})

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        try:
            latency = state.config.latency_ms
            if latency > 0:
                await asyncio.sleep(latency / 1000.0)
            if principal is None:
                detail = "Invalid API key" if token else "Missing API key"
                await send_json(
                    logged_send,
                    401,
                    {"detail": f"{detail}: send Authorization: Bearer <key>"},
                    extra_headers=[(b"www-authenticate", b"Bearer")],
                )
                return
            needed = required_scope(scope["method"], scope["path"])
            if needed not in principal.scopes:
                await send_json(
                    logged_send, 403, {"detail": f"This API key lacks the {needed} scope"}
                )
                return
            request_state["principal"] = principal
            await self.app(scope, receive, logged_send)
        finally:
            entry["fault"] = request_state.get("sandbox_fault")
            if entry["fault"] == "drop":
                entry["status"] = None
            state.requests.add(entry)


def _authorization_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return bearer_token(value.decode("latin-1"))
    return None


def _as_json_body(headers: Any) -> list[tuple[bytes, bytes]]:
    """Headers with the body declared JSON: every body is read as JSON, whatever its declared
    type (``curl -d`` sends a form type), so a bad body is a clear 400, never a puzzling 422."""
    kept = [(k, v) for k, v in headers if k.lower() != b"content-type"]
    kept.append((b"content-type", b"application/json"))
    return kept
