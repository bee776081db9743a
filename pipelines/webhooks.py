"""Verify Lynkist webhook deliveries in your receiver (and sign them, for tests).

Every delivery is a ``POST`` with a JSON body ``{"id", "event", "tenant", "occurred_at",
"data"}`` and two headers:

* ``Lynkist-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>``
  (several ``v1=`` entries may appear while a secret is being rotated; one match suffices);
* ``Lynkist-Event-Id: <the body's id>`` — the same on every retry of one event.

Use it on the *raw* request body, before any JSON parsing or re-serialisation::

    from pipelines.webhooks import ReplayGuard, WebhookVerificationError, verify

    guard = ReplayGuard()                 # one per receiver process

    def handle(raw_body: bytes, headers) -> int:
        try:
            event = verify(raw_body, headers.get("Lynkist-Signature"), SECRET, replay_guard=guard)
        except WebhookVerificationError:
            return 400                    # forged, tampered, stale or replayed: ignore it
        process(event)                    # event["event"], event["data"], ...
        return 200

What is rejected: a missing or malformed header, a signature made with another secret, a body
changed after signing, a timestamp more than ``tolerance_s`` from now (an old delivery replayed
later), and — with a :class:`ReplayGuard` — the same event id seen twice within the tolerance
window (a captured delivery replayed quickly). The sandbox signs each retry afresh, so a retried
delivery has a new timestamp but the same event id: a receiver using a guard acknowledges it
as a duplicate (``WebhookVerificationError.duplicate`` is true) rather than processing it twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from typing import Any, Final

SIGNATURE_HEADER: Final = "Lynkist-Signature"
EVENT_ID_HEADER: Final = "Lynkist-Event-Id"
SIGNATURE_SCHEME: Final = "v1"
DEFAULT_TOLERANCE_S: Final = 300
# ASCII digits only (str.isdigit() also says yes to "²", which int() refuses) and few of them
# (int() refuses more than 4,300); 15 digits of Unix seconds reach far past any real date.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
# hmac.compare_digest raises TypeError on non-ASCII str: only hex reaches it
_HEX = re.compile(r"[0-9a-fA-F]+")


class WebhookVerificationError(ValueError):
    """The delivery cannot be trusted; the message says why (never containing the secret).

    Attributes:
        duplicate: True when the signature was valid but the event id was already seen
            (a retry or a replay): acknowledge it, don't process it again.
    """

    def __init__(self, message: str, *, duplicate: bool = False) -> None:
        super().__init__(message)
        self.duplicate = duplicate


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _body_bytes(body: bytes | str) -> bytes:
    """The body as signed bytes; a ``str`` that is not valid Unicode cannot have been signed."""
    try:
        return _as_bytes(body)
    except UnicodeEncodeError:
        raise WebhookVerificationError("body is not valid UTF-8 text") from None


def compute_signature(body: bytes | str, secret: str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with ``secret``."""
    message = f"{int(timestamp)}.".encode() + _as_bytes(body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """Build a ``Lynkist-Signature`` header value for ``body``.

    Args:
        body: The exact bytes that will be sent (a ``str`` is UTF-8 encoded).
        secret: The shared webhook secret.
        timestamp: Unix seconds to sign with (default: now).

    Returns:
        ``"t=<timestamp>,v1=<hex signature>"``.
    """
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},{SIGNATURE_SCHEME}={compute_signature(body, secret, t)}"


def parse_signature_header(
    header: str | None, *, scheme: str = SIGNATURE_SCHEME
) -> tuple[int, list[str]]:
    """Split a ``Lynkist-Signature`` value into its timestamp and ``v1`` signatures.

    Args:
        header: The header value (``None`` when the header is absent).
        scheme: The signature scheme's key in the header (``v1``).

    Returns:
        ``(timestamp, [signature, ...])``.

    Raises:
        WebhookVerificationError: When the header is missing or malformed.
    """
    if not header or not header.strip():
        raise WebhookVerificationError(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookVerificationError(
                f"malformed {SIGNATURE_HEADER} header: expected t=<unix>,v1=<hex>"
            )
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                raise WebhookVerificationError(
                    f"malformed {SIGNATURE_HEADER} header: bad or repeated timestamp"
                )
            timestamp = int(value)
        elif key == scheme:
            if not _HEX.fullmatch(value):
                raise WebhookVerificationError(
                    f"malformed {SIGNATURE_HEADER} header: a {scheme}= signature is not hexadecimal"
                )
            signatures.append(value.lower())
        # Unknown schemes (future v2, ...) are ignored, as Stripe-style receivers do.
    if timestamp is None:
        raise WebhookVerificationError(f"malformed {SIGNATURE_HEADER} header: no timestamp t=")
    if not signatures:
        raise WebhookVerificationError(
            f"malformed {SIGNATURE_HEADER} header: no {scheme}= signature"
        )
    return timestamp, signatures


class ReplayGuard:
    """Remembers event ids seen within the tolerance window; thread-safe.

    Args:
        tolerance_s: How long an id is remembered; match ``verify``'s ``tolerance_s`` (older
            deliveries are rejected by their timestamp anyway).
    """

    def __init__(self, tolerance_s: float = DEFAULT_TOLERANCE_S) -> None:
        self._tolerance = tolerance_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def check_and_remember(self, event_id: str, now: float) -> bool:
        """Record ``event_id``; return False when it was already seen within the window."""
        with self._lock:
            horizon = now - 2 * self._tolerance
            if len(self._seen) > 1024:
                self._seen = {k: v for k, v in self._seen.items() if v >= horizon}
            seen_at = self._seen.get(event_id)
            if seen_at is not None and seen_at >= horizon:
                return False
            self._seen[event_id] = now
            return True


def verify(
    body: bytes | str,
    header: str | None,
    secret: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
    replay_guard: ReplayGuard | None = None,
    scheme: str = SIGNATURE_SCHEME,
) -> dict[str, Any]:
    """Check a delivery's signature and freshness, then return the parsed event.

    Args:
        body: The raw request body, exactly as received.
        header: The ``Lynkist-Signature`` header value (``None`` if absent).
        secret: The shared webhook secret.
        tolerance_s: Maximum distance, in seconds, between the signed timestamp and ``now``.
        now: Current Unix time (default: ``time.time()``).
        replay_guard: When given, an event id already seen is rejected as a duplicate.
        scheme: Which ``<scheme>=<hex>`` entries of the header carry the signature.

    Returns:
        The event: ``{"id", "event", "tenant", "occurred_at", "data"}``.

    Raises:
        WebhookVerificationError: Missing/malformed header, wrong signature (other secret or
            tampered body), timestamp outside the tolerance (replay), body not a JSON object,
            or — with a guard — an event id seen before.
    """
    timestamp, signatures = parse_signature_header(header, scheme=scheme)
    raw = _body_bytes(body)
    expected = compute_signature(raw, secret, timestamp)
    # compare_digest on every candidate: no early exit that would leak timing.
    matched = [hmac.compare_digest(expected, candidate) for candidate in signatures]
    if not any(matched):
        raise WebhookVerificationError(
            "signature mismatch: the body was altered or signed with another secret"
        )
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError(
            f"timestamp outside the tolerance of {tolerance_s:g}s "
            f"(signed {current - timestamp:+.0f}s ago): possible replay"
        )
    try:
        event = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WebhookVerificationError("body is not valid JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("body is not a JSON object")
    if replay_guard is not None:
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise WebhookVerificationError("event has no id: cannot check for replays")
        if not replay_guard.check_and_remember(event_id, current):
            raise WebhookVerificationError(
                f"event {event_id} already received: duplicate or replay", duplicate=True
            )
    return event
