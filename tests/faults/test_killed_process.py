"""A process killed (SIGKILL) mid-stream: its reservation outlives it, expires, and is
charged at its estimate; a late settlement of the same request charges nothing more."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from fault_support import MODEL, Answer, FakeUpstream, counters, ledger, micro, reservations

from openwebui_token_tracking.accountant import Accountant
from openwebui_token_tracking.accounting.usage import Usage

PIPE_PROCESS = Path(__file__).with_name("pipe_process.py")


def test_killed_mid_stream_is_charged_its_estimate_once(db_url, priced):
    upstream = FakeUpstream(Answer(chunks=400, interval_s=0.05))  # a 20 s answer
    child = subprocess.Popen([sys.executable, str(PIPE_PROCESS), db_url, upstream.base_url,
                              "m-killed"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        pieces = [json.loads(child.stdout.readline()) for _ in range(3)]
        assert "".join(pieces).strip().startswith("word")  # it was streaming ...
        os.kill(child.pid, signal.SIGKILL)  # ... when it was killed: no finally ran
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        if child.stdout is not None:
            child.stdout.close()
        upstream.close()
    assert child.returncode == -signal.SIGKILL
    [held] = reservations(priced)
    assert ledger(priced) == []
    assert held.estimate_micro == micro(12, 1024)  # prompt estimate + default output
    assert counters(priced)["user:u-alice"] == (0, held.estimate_micro)

    # The next admission after the reservation expired (another user, an hour later)
    # charges it at its estimate, flagged as such.
    later = Accountant(priced, clock=lambda: held.expires_at + timedelta(seconds=1))
    other = later.admit(user_id="u-bob", provider="openai", model_id=MODEL,
                        estimate=Usage(input_tokens=10, output_tokens=10))
    later.release(other.reservation_id)
    [row] = ledger(priced)
    assert (row.status, row.message_id, row.charged_micro) == (
        "estimated", "m-killed", held.estimate_micro)
    assert (row.input_tokens, row.output_tokens) == (12, 1024)

    # The dead process's settlement arriving late (from a queue, a retry) finds nothing.
    assert later.settle(held.id, Usage(input_tokens=8, output_tokens=3)) is None
    assert [r.id for r in ledger(priced)] == [row.id]
    assert counters(priced)["user:u-alice"] == (held.estimate_micro, 0)
    assert reservations(priced) == []
