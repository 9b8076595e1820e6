"""Webhook notifications: JSON bodies signed with HMAC-SHA256, retried with exponential backoff.

Each webhook of a spec that takes a topic gets a POST of the JSON body with the headers
``X-EOEngine-Event`` (the topic), ``X-EOEngine-Delivery`` (a fresh id), ``X-EOEngine-Timestamp``
(UTC, ISO 8601) and ``X-EOEngine-Signature: sha256=<hex>`` (HMAC-SHA256 of the raw body with the
webhook's secret; the receiver recomputes it to know the body came from us and was not altered).
An answer outside 2xx, a timeout or a refused connection is retried after ``backoff``, ``2 ×
backoff``, ... up to ``attempts`` tries; then the delivery is recorded as failed. A webhook failing
never fails the run, and the secret is never part of a record, a log line or an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from eoengine.subscriptions.spec import Webhook
from eoengine.subscriptions.state import Delivery


@dataclass(frozen=True)
class Retry:
    """How deliveries are tried: ``attempts`` times, waiting ``backoff × 2^n`` seconds, each try ``timeout`` long."""

    attempts: int = 4
    backoff: float = 1.0
    timeout: float = 10.0


def signature(secret: str, body: bytes) -> str:
    """The ``X-EOEngine-Signature`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256 with ``secret``.

    Args:
        secret: the webhook's shared secret.
        body: the raw request body.

    Returns:
        The header value.

    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def notify(webhooks: list[Webhook], topic: str, payload: dict[str, Any], retry: Retry | None = None) -> list[Delivery]:
    """Send ``payload`` as ``topic`` to every webhook that takes it.

    Args:
        webhooks: the subscription's webhooks.
        topic: ``run.succeeded``, ``run.failed``, ``change.detected`` or ``drift.alert``.
        payload: the JSON body's data (the topic is added to it).
        retry: attempts, backoff and timeout.

    Returns:
        One delivery record per webhook that takes the topic.

    """
    body = json.dumps({"topic": topic} | payload, default=str, sort_keys=True).encode()
    return [deliver(hook, topic, body, retry or Retry()) for hook in webhooks if topic in hook.topics]


def deliver(hook: Webhook, topic: str, body: bytes, retry: Retry) -> Delivery:
    """POST ``body`` to one webhook, retried; the outcome recorded without the secret.

    Args:
        hook: the webhook.
        topic: the event.
        body: the raw JSON body.
        retry: attempts, backoff and timeout.

    Returns:
        The delivery: attempts, the last status code or error, and whether it was delivered.

    """
    delivery_id = uuid.uuid4().hex
    status: int | None = None
    error: str | None = None
    attempts = 0
    for attempt in range(max(1, retry.attempts)):
        if attempt:
            time.sleep(retry.backoff * 2 ** (attempt - 1))
        attempts += 1
        status, error = _post(hook, topic, body, delivery_id, retry.timeout)
        if status is not None and 200 <= status < 300:
            return Delivery(id=delivery_id, topic=topic, url=hook.url, attempts=attempts, status_code=status,
                            outcome="delivered")
    return Delivery(id=delivery_id, topic=topic, url=hook.url, attempts=attempts, status_code=status,
                    error=error, outcome="failed")


def _post(hook: Webhook, topic: str, body: bytes, delivery_id: str, timeout: float) -> tuple[int | None, str | None]:
    """One try: the status code, or None and the error (which names the URL, never the secret)."""
    headers = {"Content-Type": "application/json", "User-Agent": "eoengine-webhooks",
               "X-EOEngine-Event": topic, "X-EOEngine-Delivery": delivery_id,
               "X-EOEngine-Timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
               "X-EOEngine-Signature": signature(hook.secret, body)}
    request = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status), None
    except urllib.error.HTTPError as exc:
        return int(exc.code), f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(reason).__name__}: {reason}".replace(hook.secret, "***")
