"""Charge across an alert threshold, say so, then wait to be killed with SIGKILL.

``before-delivery``: the charge is committed by the storage API (no deliverer runs).
``during-delivery``: the charge goes through ``Accountant``, whose delivery thread is
sending when the test kills the process (the receiver holds the request).
"""

import sys
import time
from datetime import UTC, datetime

from openwebui_token_tracking import Accountant, Usage
from openwebui_token_tracking.accountant import transaction
from openwebui_token_tracking.storage import ledger

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NINE_CREDITS = Usage(output_tokens=9000)


def main(url: str, mode: str) -> None:
    if mode == "before-delivery":
        with transaction(url) as s:
            adm = ledger.reserve(s, user_id="u-alice", provider="openai", model_id="gpt",
                                 estimate=NINE_CREDITS, now=NOW)
            ledger.settle(s, adm.reservation_id, NINE_CREDITS, now=NOW)
    else:
        acct = Accountant(url, clock=lambda: NOW)
        adm = acct.admit(user_id="u-alice", provider="openai", model_id="gpt",
                         estimate=NINE_CREDITS)
        acct.settle(adm.reservation_id, NINE_CREDITS, price=adm.price)
    sys.stdout.write("charged\n")
    sys.stdout.flush()
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
