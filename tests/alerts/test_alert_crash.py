"""A process killed (SIGKILL) after charging loses no alert: the next deliverer sends it."""

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alert_support import NOW, SECRET, priced_accountant, receiver_fixture  # noqa: F401

from openwebui_token_tracking.alerts import AlertDeliverer, deliverer
from openwebui_token_tracking.alerts.webhook import verify
from openwebui_token_tracking.storage.schema import AlertDelivery, TokenUsageLog

SCRIPT = Path(__file__).with_name("killed_charger.py")


def charge_then_kill(db_url: str, mode: str, wait_until_sent=None) -> None:
    proc = subprocess.Popen([sys.executable, str(SCRIPT), db_url, mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = [None]
        reader = threading.Thread(target=lambda: line.__setitem__(0, proc.stdout.readline()))
        reader.start()
        reader.join(60)
        assert line[0] == "charged\n", proc.stderr.read() if proc.poll() is not None else ""
        if wait_until_sent is not None:
            wait_until_sent()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("mode", ["before-delivery", "during-delivery"])
def test_alert_of_a_killed_process_is_delivered_by_the_next_deliverer(
        engine, db_url, receiver, mode):
    acct = priced_accountant(engine, alert_webhook_url=receiver.url,
                             alert_webhook_secret=SECRET)
    if mode == "during-delivery":
        receiver.hold = threading.Event()  # the killed process's request never gets answered
    charge_then_kill(db_url, mode,
                     (lambda: receiver.wait_for(1)) if mode == "during-delivery" else None)
    assert acct.run(lambda s: s.scalar(sa.select(TokenUsageLog.charged_micro))) == 9_000_000
    [row] = acct.run(lambda s: list(s.scalars(sa.select(AlertDelivery))))
    assert (row.status, row.delivered_at) == ("pending", None)
    if receiver.hold is not None:
        receiver.hold.set()
    d = AlertDeliverer(engine)
    if mode == "during-delivery":  # its claim is a lease: taken over when it ends
        assert d.deliver_due(NOW).delivered == 0
        now = NOW + deliverer.LEASE
    else:
        now = NOW + timedelta(seconds=1)
    assert d.deliver_due(now).delivered == 1
    received = receiver.wait_for(2 if mode == "during-delivery" else 1)
    assert len({r.headers["Idempotency-Key"] for r in received}) == 1  # at least once
    assert all(verify(r.body, r.headers["X-Token-Tracking-Signature"], SECRET)
               for r in received)
    assert received[-1].json()["threshold_percent"] == 80
    [row] = acct.run(lambda s: list(s.scalars(sa.select(AlertDelivery))))
    assert row.status == "delivered"
