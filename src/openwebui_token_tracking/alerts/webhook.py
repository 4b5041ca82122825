"""The webhook channel: a signed JSON POST, one idempotency key per event.

Headers: ``X-Token-Tracking-Signature: sha256=<hex HMAC-SHA256 of the exact body under
the shared secret>``, ``Idempotency-Key: <event id>`` (the same on every retry),
``X-Token-Tracking-Event: <event type>`` and ``X-Token-Tracking-Attempt: <n>``.
Any 2xx answer is a delivery; anything else is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import httpx

from ..errors import AlertDeliveryError

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Token-Tracking-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Token-Tracking-Event"
ATTEMPT_HEADER = "X-Token-Tracking-Attempt"
TIMEOUT_SECONDS = 10.0


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """What a receiver checks: the header matches the body under the shared secret."""
    return header is not None and hmac.compare_digest(header, sign(body, secret))


_unsigned_warned = False


def post(client: httpx.Client, url: str, body: bytes, *, event_key: str, event_type: str,
         secret: str, attempt: int) -> None:
    """POST one event; ``AlertDeliveryError`` unless the receiver answers 2xx."""
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: event_key,
               EVENT_HEADER: event_type, ATTEMPT_HEADER: str(attempt)}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    else:
        global _unsigned_warned
        if not _unsigned_warned:
            _unsigned_warned = True
            logger.warning("alert_webhook_secret is not set: webhook alerts are sent unsigned")
    try:
        response = client.post(url, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise AlertDeliveryError(f"webhook unreachable: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise AlertDeliveryError(f"webhook answered HTTP {response.status_code}")
