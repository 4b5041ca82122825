"""Deliver queued alerts: claim due outbox rows, send each, record the outcome.

Three things run a deliverer: ``owui-token-tracking serve`` (a background thread that
polls), ``owui-token-tracking alerts deliver`` (one pass, e.g. from cron), and a charge
that queued an alert in a pipe process (``kick``: a daemon thread, started after the
commit, never on the event loop). Sending happens outside any database transaction;
a failure is recorded on its row and retried with exponential backoff, and can never
reach the charge that queued it.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from sqlalchemy.engine import URL, Engine

from ..accountant import Accountant, utcnow
from ..accounting.alerts import TEST_EVENT_TYPE
from ..errors import AlertDeliveryError, TokenTrackingError
from ..storage import outbox
from ..storage.alerts import EMAIL, WEBHOOK
from . import mail, webhook
from .config import AlertConfig, alert_config, recipients

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
"""How long a claimed delivery is held: longer than any send may take."""


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    """Attempts that failed and will be retried."""
    gave_up: int = 0
    errors: list[str] = field(default_factory=list)


class AlertDeliverer:
    """Sends the alerts queued in one database's outbox."""

    def __init__(self, engine_or_url: Engine | str | URL | None = None, *,
                 clock: Callable[[], datetime] = utcnow,
                 transport: httpx.BaseTransport | None = None,
                 ssl_context: ssl.SSLContext | None = None, batch: int = 20,
                 max_attempts: int = outbox.MAX_ATTEMPTS) -> None:
        self.accountant = Accountant(engine_or_url, clock=clock)
        self.engine = self.accountant.engine
        self.clock = clock
        self.transport = transport
        self.ssl_context = ssl_context
        self.batch = batch
        self.max_attempts = max_attempts

    def deliver_due(self, now: datetime | None = None) -> DeliveryReport:
        """One pass: every due delivery once (claimed first, so no two deliverers send
        the same row at the same time)."""
        now = now or self.clock()
        report = DeliveryReport()
        while True:
            claimed, config = self.accountant.run(lambda s: (
                outbox.claim_due(s, now=now, lease=LEASE, batch=self.batch), alert_config(s)))
            if not claimed:
                return report
            with httpx.Client(transport=self.transport) as client:
                for delivery in claimed:
                    self._deliver_one(client, config, delivery, now, report)
            if len(claimed) < self.batch:
                return report

    def _deliver_one(self, client: httpx.Client, config: AlertConfig,
                     delivery: outbox.Claimed, now: datetime, report: DeliveryReport) -> None:
        try:
            self._send(client, config, delivery)
        except AlertDeliveryError as exc:
            error = str(exc)
            gave_up = self.accountant.run(lambda s: outbox.mark_failed(
                s, delivery, now, error, self.max_attempts))
            report.errors.append(f"{delivery.channel} {delivery.event_key}: {exc}")
            if gave_up:
                report.gave_up += 1
                logger.error("gave up delivering alert %s by %s: %s", delivery.event_key,
                             delivery.channel, exc)
            else:
                report.failed += 1
                logger.warning("alert %s by %s failed (will retry): %s", delivery.event_key,
                               delivery.channel, exc)
            return
        self.accountant.run(lambda s: outbox.mark_delivered(s, delivery, now))
        report.delivered += 1

    def _send(self, client: httpx.Client, config: AlertConfig,
              delivery: outbox.Claimed) -> None:
        payload = json.loads(delivery.payload)
        if delivery.channel == WEBHOOK:
            if not config.webhook_url:
                raise AlertDeliveryError("alert_webhook_url is not set")
            webhook.post(client, config.webhook_url, delivery.payload.encode(),
                         event_key=delivery.event_key, event_type=payload["type"],
                         secret=config.webhook_secret, attempt=delivery.attempts + 1)
        elif delivery.channel == EMAIL:
            self._mail(config, payload)
        else:
            raise AlertDeliveryError(f"unknown alert channel {delivery.channel!r}")

    def _mail(self, config: AlertConfig, payload: dict[str, object]) -> None:
        if config.smtp is None:
            raise AlertDeliveryError("alert_smtp_host is not set")
        to = self.accountant.run(lambda s: recipients(s, config, payload), read_only=True)
        if not to:
            raise AlertDeliveryError("no e-mail recipient: set alert_email_to")
        mail.send(config.smtp, mail.compose(payload, config.smtp.sender, to), self.ssl_context)

    def next_due(self) -> datetime | None:
        """When the earliest pending delivery may be tried; None if nothing is pending."""
        return self.accountant.run(outbox.next_due, read_only=True)

    def send_test(self, channels: list[str] | None = None) -> dict[str, str | None]:
        """Send a test event now (not queued) to each configured channel (or those asked
        for); returns each channel's error, None where it was delivered."""
        now = self.clock()
        config = self.accountant.run(alert_config, read_only=True)
        configured = [c for c, on in ((WEBHOOK, bool(config.webhook_url)),
                                      (EMAIL, config.smtp is not None)) if on]
        wanted = configured if channels is None else channels
        if not wanted:
            raise AlertDeliveryError(
                "no alert channel is configured: set alert_webhook_url or alert_smtp_host")
        key = str(uuid.uuid4())
        body = json.dumps({"type": TEST_EVENT_TYPE, "id": key, "instant": now.isoformat()},
                          sort_keys=True, separators=(",", ":"))
        results: dict[str, str | None] = {}
        with httpx.Client(transport=self.transport) as client:
            for channel in wanted:
                try:
                    if channel not in configured:
                        raise AlertDeliveryError(f"channel {channel} is not configured")
                    self._send(client, config, outbox.Claimed(0, channel, 0, key, body, ""))
                    results[channel] = None
                except AlertDeliveryError as exc:
                    results[channel] = str(exc)
        return results


# -- background delivery ------------------------------------------------------------------

class _Worker(threading.Thread):
    """Delivers until nothing is pending (a kick) or forever, polling (serve)."""

    def __init__(self, deliverer: AlertDeliverer, key: str, poll_seconds: float | None):
        super().__init__(name="token-tracking-alerts", daemon=True)
        self.deliverer = deliverer
        self.key = key
        self.poll_seconds = poll_seconds
        self.wake = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                self.deliverer.deliver_due()
                nxt = self.deliverer.next_due()
            except TokenTrackingError as exc:  # e.g. the database is away: try later
                logger.warning("alert delivery pass failed: %s", exc)
                nxt = self.deliverer.clock() + timedelta(seconds=60)
            if nxt is None and self.poll_seconds is None:
                with _lock:
                    if not self.wake.is_set():
                        _workers.pop(self.key, None)
                        return
                continue
            wait = None if nxt is None else \
                max((nxt - self.deliverer.clock()).total_seconds(), 0.0)
            if self.poll_seconds is not None:
                wait = self.poll_seconds if wait is None else min(wait, self.poll_seconds)
            self.wake.wait(wait)
        with _lock:
            if _workers.get(self.key) is self:
                _workers.pop(self.key)


_workers: dict[str, _Worker] = {}
_lock = threading.Lock()


def _key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def kick(engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
    """Deliver what is queued, in a background thread of this process (started once;
    woken when already running). Returns at once."""
    key = _key(engine)
    with _lock:
        worker = _workers.get(key)
        if worker is not None and worker.is_alive():
            worker.wake.set()
            return
        worker = _Worker(AlertDeliverer(engine, clock=clock), key, None)
        _workers[key] = worker
    worker.start()


def start_background(deliverer: AlertDeliverer, poll_seconds: float = 30.0) -> _Worker:
    """Deliver forever in a daemon thread (``serve``); kicks in this process wake it."""
    key = _key(deliverer.engine)
    worker = _Worker(deliverer, key, poll_seconds)
    with _lock:
        _workers[key] = worker
    worker.start()
    return worker


def stop_all(timeout: float = 30.0) -> None:
    """Stop and wait for this process's delivery threads (tests, shutdown)."""
    with _lock:
        workers = list(_workers.values())
    for worker in workers:
        worker.stopping.set()
        worker.wake.set()
    for worker in workers:
        worker.join(timeout)
