"""Reproducible fault injection for the sandbox: 5xx, 429, dropped connections, slow answers.

A :class:`FaultSpec` says which share of public-API requests misbehave, and how; the spec string
form is what ``lynkist sandbox --faults`` takes::

    5xx=0.1,429=0.1,drop=0.02,after_commit=0.05,slow=0.05:4000,commit_delay_ms=6000,seed=7

:class:`FaultInjectionMiddleware` applies it as pure ASGI middleware, to paths under
``/api/v1/public/`` only (the admin API and docs never fail). Per request it makes exactly four
draws from ``random.Random(spec.seed)`` — whatever the outcome — so a given request sequence
always gets the same faults. Outcomes, decided before the handler runs:

* ``5xx``   — answered 500, 502 or 503 ``{"detail": ...}``; the handler never runs (no write).
* ``429``   — answered 429 with ``Retry-After`` in the configured style (1 s wait); no write.
* ``drop``  — the connection is dropped before the handler runs (no write).
* ``drop_after_commit`` — write requests only (POST/PATCH/DELETE, except ``POST …/search``): the
  handler runs to completion (the write commits, webhooks fire), its answer is swallowed and the
  connection dropped, so the client cannot know whether the write happened.
* ``slow``  — independent of the above: the request is delayed ``slow_ms`` first.
* ``commit_delay_ms`` — not a share: every write request that gets no other fault is committed
  only after this delay, whether or not the client is still connected. The body is read at once
  (as a server queueing the request would), then the handler runs after the delay and commits;
  its answer reaches the client only if it is still waiting. This models a real API that keeps
  processing a queued request after the client went (Ctrl-C, a timeout): the client cannot see
  the write, yet it happens. Draws are unchanged, so it composes with the shares above.

Dropping a connection: the middleware sends ``http.response.start`` announcing a
``content-length`` and returns without sending the body. Uvicorn then closes the transport (it
logs "ASGI callable returned without completing response." at ERROR on ``uvicorn.error``;
:class:`DroppedResponseLogFilter` silences exactly that line) and httpx raises
``httpx.RemoteProtocolError`` ("peer closed connection without sending complete message body").
The status line and headers do reach the socket first, but a client that reads the body (every
non-streaming httpx call) never gets a response object.

How the sandbox app wires it::

    app = FaultInjectionMiddleware(
        app,
        get_spec=lambda: state.faults,             # re-read per request; replacing the object
                                                   # (PUT /_sandbox/faults) reseeds the draws
        get_retry_after_style=lambda: state.config.retry_after,
        on_fault=lambda event: ...,                # {"fault", "method", "path", "status"}
    )
    logging.getLogger("uvicorn.error").addFilter(DroppedResponseLogFilter())

Every faulted request also gets ``scope["state"]["sandbox_fault"]`` set to the fault's name
(``"5xx"``, ``"429"``, ``"drop"``, ``"drop_after_commit"``) for an outer request-log middleware
sharing the scope. ``slow`` alone is not a fault and is not reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from lynkist_sandbox.ratelimit import (
    API_PATH_PREFIX,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    format_retry_after,
    send_json,
)

#: Spec-string keys (and aliases) -> FaultSpec field.
_SPEC_KEYS: Final = {
    "5xx": "error_5xx",
    "error_5xx": "error_5xx",
    "429": "error_429",
    "error_429": "error_429",
    "drop": "drop",
    "after_commit": "drop_after_commit",
    "drop_after_commit": "drop_after_commit",
    "slow": "slow",
    "slow_ms": "slow_ms",
    "commit_delay_ms": "commit_delay_ms",
    "writes_only": "writes_only",
    "seed": "seed",
}
_SHARE_FIELDS: Final = ("error_5xx", "error_429", "drop", "drop_after_commit", "slow")
_WRITE_METHODS: Final = frozenset({"POST", "PATCH", "DELETE"})
_5XX_STATUSES: Final = (500, 502, 503)
_5XX_DETAIL: Final = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
#: The wait announced by injected 429s: short, so chaos runs stay fast, yet a real backoff.
INJECTED_RETRY_AFTER_S: Final = 1.0
_DROP_LOG_LINE: Final = "ASGI callable returned without completing response."


@dataclass
class FaultSpec:
    """Which share of public-API requests misbehave, and how.

    ``error_5xx + error_429 + drop`` must not exceed 1 (one request gets at most one of them);
    ``drop_after_commit`` applies to write requests that got none of those; ``slow`` is drawn
    independently.

    Attributes:
        error_5xx: Share answered 500/502/503 before the handler runs.
        error_429: Share answered 429 (+ ``Retry-After``) before the handler runs.
        drop: Share whose connection is dropped before the handler runs.
        drop_after_commit: Share of write requests (POST/PATCH/DELETE, not POST search) that
            run and commit, then have their connection dropped.
        slow: Share delayed by ``slow_ms`` before anything else happens.
        slow_ms: The delay of slow requests, in milliseconds.
        commit_delay_ms: Every write request without another fault commits only after this
            many milliseconds, even if its client disconnected meanwhile (0: at once).
        writes_only: When true, 5xx, 429, drop and slow hit write requests only (reads always
            succeed): an API that throttles or fails its writes while it still serves reads.
        seed: Seeds ``random.Random`` for every draw.

    Raises:
        ValueError: When a share is outside [0, 1], the exclusive shares sum above 1,
            ``slow_ms`` is negative, or ``seed`` is not an integer.
    """

    error_5xx: float = 0.0
    error_429: float = 0.0
    drop: float = 0.0
    drop_after_commit: float = 0.0
    slow: float = 0.0
    slow_ms: float = 0.0
    commit_delay_ms: float = 0.0
    writes_only: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in _SHARE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"fault share {name} must be a number, got {value!r}")
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"fault share {name} must be between 0 and 1, got {value!r}")
        exclusive = self.error_5xx + self.error_429 + self.drop
        if exclusive > 1.0 + 1e-9:
            raise ValueError(f"fault shares 5xx + 429 + drop must not exceed 1, got {exclusive:g}")
        for name in ("slow_ms", "commit_delay_ms"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{name} must be a number ≥ 0, got {value!r}")
        if not isinstance(self.writes_only, bool):
            raise ValueError(f"writes_only must be true or false, got {self.writes_only!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"fault seed must be an integer, got {self.seed!r}")

    @property
    def active(self) -> bool:
        """Whether any fault can happen at all."""
        return self.commit_delay_ms > 0 or any(getattr(self, name) > 0 for name in _SHARE_FIELDS)

    @classmethod
    def parse(cls, spec: str) -> FaultSpec:
        """Parse the ``--faults`` string form.

        ``KEY=VALUE`` pairs separated by commas; keys ``5xx``, ``429``, ``drop``,
        ``after_commit``, ``slow`` (``SHARE:MS``, or ``SHARE`` with ``slow_ms=MS``), ``slow_ms``,
        ``commit_delay_ms``, ``seed`` (field names are accepted too). Empty or ``none`` means
        no faults.

        Args:
            spec: e.g. ``"5xx=0.1,429=0.1,drop=0.02,after_commit=0.05,slow=0.05:4000,seed=7"``.

        Returns:
            The spec.

        Raises:
            ValueError: On an unknown or repeated key, a malformed value, or an invalid spec;
                the message names the offending part.
        """
        text = spec.strip()
        if text.lower() in ("", "none", "off"):
            return cls()
        values: dict[str, Any] = {}
        for raw in text.split(","):
            item = raw.strip()
            key, sep, value = item.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not key or not value:
                raise ValueError(f"bad fault spec item {item!r}: expected KEY=VALUE")
            field = _SPEC_KEYS.get(key)
            if field is None:
                known = (
                    "5xx, 429, drop, after_commit, slow, slow_ms, commit_delay_ms, writes_only, "
                    "seed"
                )
                raise ValueError(f"unknown fault {key!r} in {item!r}; known: {known}")
            if field == "slow" and ":" in value:
                share, _, ms = value.partition(":")
                _store(values, "slow", _number(share, item), item)
                _store(values, "slow_ms", _number(ms, item), item)
            elif field == "writes_only":
                if value.lower() not in ("1", "0", "true", "false"):
                    raise ValueError(f"bad writes_only in {item!r}: expected 1/0 or true/false")
                _store(values, field, value.lower() in ("1", "true"), item)
            elif field == "seed":
                try:
                    _store(values, "seed", int(value), item)
                except ValueError:
                    raise ValueError(f"bad fault seed in {item!r}: expected an integer") from None
            else:
                _store(values, field, _number(value, item), item)
        if values.get("slow", 0) > 0 and values.get("slow_ms", 0) == 0:
            raise ValueError("slow needs a delay: write slow=SHARE:MS (e.g. slow=0.05:4000)")
        return cls(**values)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultSpec:
        """Build a spec from field names (e.g. a JSON body), rejecting unknown keys.

        Args:
            data: Any subset of the fields; missing ones default to 0.

        Returns:
            The spec.

        Raises:
            ValueError: On unknown keys or invalid values.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(
                f"unknown fault field(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
            )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def to_spec(self) -> str:
        """The string form that :meth:`parse` reads back (non-zero fields only)."""
        parts = [
            f"{key}={getattr(self, field):g}"
            for key, field in (
                ("5xx", "error_5xx"),
                ("429", "error_429"),
                ("drop", "drop"),
                ("after_commit", "drop_after_commit"),
            )
            if getattr(self, field) > 0
        ]
        if self.slow > 0:
            parts.append(f"slow={self.slow:g}:{self.slow_ms:g}")
        if self.commit_delay_ms > 0:
            parts.append(f"commit_delay_ms={self.commit_delay_ms:g}")
        if self.writes_only:
            parts.append("writes_only=1")
        if parts or self.seed:
            parts.append(f"seed={self.seed}")
        return ",".join(parts) or "none"


def _number(text: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"bad number {text!r} in fault spec item {item!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"bad number {text!r} in fault spec item {item!r}")
    return value


def _store(values: dict[str, Any], field: str, value: Any, item: str) -> None:
    if field in values:
        raise ValueError(f"fault {field} given twice (at {item!r})")
    values[field] = value


@dataclass(frozen=True)
class FaultDecision:
    """What happens to one request.

    Attributes:
        fault: ``"5xx"``, ``"429"``, ``"drop"``, ``"drop_after_commit"`` or ``None``.
        status: The status of an injected 5xx answer (500/502/503), else ``None``.
        delay_s: Seconds to wait before anything else (``slow``), 0 when not slow.
    """

    fault: str | None
    status: int | None
    delay_s: float


def is_write(method: str, path: str) -> bool:
    """Whether a request changes data: POST/PATCH/DELETE, except the read-only POST search."""
    return method.upper() in _WRITE_METHODS and not (
        method.upper() == "POST" and path.rstrip("/").endswith("/search")
    )


def draw(spec: FaultSpec, rng: random.Random, method: str, path: str) -> FaultDecision:
    """Decide one request's fate; always consumes exactly four draws from ``rng``.

    Args:
        spec: The fault spec.
        rng: The generator (seeded from ``spec.seed`` by the caller).
        method: HTTP method.
        path: Request path (to tell POST search from writes).

    Returns:
        The decision.
    """
    u_error, u_status, u_commit, u_slow = rng.random(), rng.random(), rng.random(), rng.random()
    if spec.writes_only and not is_write(method, path):
        return FaultDecision(None, None, 0.0)
    delay_s = spec.slow_ms / 1000.0 if u_slow < spec.slow else 0.0
    if u_error < spec.error_5xx:
        status = _5XX_STATUSES[min(int(u_status * len(_5XX_STATUSES)), len(_5XX_STATUSES) - 1)]
        return FaultDecision("5xx", status, delay_s)
    if u_error < spec.error_5xx + spec.error_429:
        return FaultDecision("429", 429, delay_s)
    if u_error < spec.error_5xx + spec.error_429 + spec.drop:
        return FaultDecision("drop", None, delay_s)
    if u_commit < spec.drop_after_commit and is_write(method, path):
        return FaultDecision("drop_after_commit", None, delay_s)
    return FaultDecision(None, None, delay_s)


async def drop_connection(send: Send, status: int = 200, headers: list[Any] | None = None) -> None:
    """Make the server drop the connection mid-response (see the module docstring).

    Sends the response head announcing a body that never comes; the caller must then return
    from the ASGI app without sending anything else.

    Args:
        send: The ASGI send callable.
        status: Status line to announce (the client cannot act on it: the body never arrives).
        headers: Raw header pairs to announce; ``content-length`` is replaced by a non-zero one.
    """
    kept = [
        (bytes(k), bytes(v))
        for k, v in headers or [(b"content-type", b"application/json")]
        if bytes(k).lower() not in (b"content-length", b"transfer-encoding")
    ]
    kept.append((b"content-length", b"64"))
    await send({"type": "http.response.start", "status": status, "headers": kept})


class DroppedResponseLogFilter(logging.Filter):
    """Hides uvicorn's ERROR line for responses that were dropped on purpose.

    All instances compare equal, so ``logger.addFilter(DroppedResponseLogFilter())`` called once
    per app (many apps per test session) installs it only once.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROP_LOG_LINE

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DroppedResponseLogFilter)

    def __hash__(self) -> int:
        return hash(DroppedResponseLogFilter)


class FaultInjectionMiddleware:
    """Pure ASGI middleware injecting the faults of the current :class:`FaultSpec`.

    Args:
        app: The wrapped ASGI application.
        get_spec: Returns the current spec; called per request. When it returns a different
            object than before, the generator is reseeded from the new spec's seed.
        get_retry_after_style: Returns the ``Retry-After`` style for injected 429s.
        on_fault: Called with ``{"fault", "method", "path", "status"}`` for every faulted
            request (``status`` is the injected one, the swallowed handler's for
            ``drop_after_commit``, ``None`` for ``drop``).
        path_prefix: Only paths starting with this get faults.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        get_spec: Callable[[], FaultSpec],
        get_retry_after_style: Callable[[], str] = lambda: "seconds",
        on_fault: Callable[[dict[str, Any]], None] | None = None,
        path_prefix: str = API_PATH_PREFIX,
    ) -> None:
        self.app = app
        self._get_spec = get_spec
        self._get_style = get_retry_after_style
        self._on_fault = on_fault
        self._prefix = path_prefix
        self._spec: FaultSpec | None = None
        self._rng = random.Random(0)
        # Draws for "mixed" Retry-After use their own stream so they never shift fault draws.
        self._style_rng = random.Random(0)

    def _decide(self, method: str, path: str) -> FaultDecision | None:
        spec = self._get_spec()
        if spec is not self._spec:
            self._spec = spec
            self._rng = random.Random(spec.seed)
            self._style_rng = random.Random(spec.seed + 1)
        if not spec.active:
            return None
        return draw(spec, self._rng, method, path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self._prefix):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        decision = self._decide(method, path)
        if decision is None:
            await self.app(scope, receive, send)
            return
        if decision.delay_s > 0:
            await asyncio.sleep(decision.delay_s)
        if decision.fault is None:
            spec = self._get_spec()
            if spec.commit_delay_ms > 0 and is_write(method, path):
                await self._commit_late(scope, receive, send, spec.commit_delay_ms / 1000.0)
            else:
                await self.app(scope, receive, send)
            return
        status: int | None = decision.status
        # Set before answering so an outer log middleware sees it when the response head passes.
        scope.setdefault("state", {})["sandbox_fault"] = decision.fault
        if decision.fault == "5xx":
            assert status is not None
            await send_json(send, status, {"detail": f"{_5XX_DETAIL[status]} (injected fault)"})
        elif decision.fault == "429":
            retry_after = format_retry_after(
                INJECTED_RETRY_AFTER_S, self._get_style(), rng=self._style_rng
            )
            await send_json(
                send,
                429,
                {"detail": "Rate limit exceeded (injected fault)"},
                extra_headers=[]
                if retry_after is None
                else [(b"retry-after", retry_after.encode())],
            )
        elif decision.fault == "drop":
            await drop_connection(send)
        else:
            status = await self._run_and_drop(scope, receive, send)
        if self._on_fault is not None:
            self._on_fault(
                {"fault": decision.fault, "method": method, "path": path, "status": status}
            )

    async def _commit_late(
        self, scope: Scope, receive: Receive, send: Send, delay_s: float
    ) -> None:
        """Read the body now, run the handler after ``delay_s`` even if the client has gone."""
        messages: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went before its body arrived: nothing to commit
            messages.append(message)
            if not message.get("more_body", False):
                break
        if not messages or messages[-1].get("more_body", False):
            return
        await asyncio.sleep(delay_s)
        queued = list(messages)

        async def replay() -> Message:
            # The buffered body first; then whatever the connection says (a disconnect).
            return queued.pop(0) if queued else await receive()

        # uvicorn ignores sends to a closed connection, so the handler runs to completion and
        # commits either way; the answer is simply never read when the client has gone.
        await self.app(scope, replay, send)

    async def _run_and_drop(self, scope: Scope, receive: Receive, send: Send) -> int | None:
        """Run the handler to completion, swallow its answer, drop the connection."""
        head: Message | None = None

        async def swallow(message: Message) -> None:
            nonlocal head
            if message["type"] == "http.response.start":
                head = message

        await self.app(scope, receive, swallow)
        if head is None:
            await drop_connection(send)
            return None
        await drop_connection(send, int(head["status"]), list(head.get("headers", [])))
        return int(head["status"])
