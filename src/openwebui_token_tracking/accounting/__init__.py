"""The pure accounting core: usage, prices, charges, budget windows, admission.

No I/O lives here: no SQLAlchemy, no httpx, no environment, no clock. Callers pass
aware UTC instants and get exact results (integer micro-credits, ``Decimal`` credits).
"""

from .budget import (
    TOTAL,
    Admission,
    Period,
    Window,
    admission_decision,
    window_for,
)
from .money import MICRO, credits_to_micro, micro_to_credits
from .pricing import Charge, Price, charge, is_free
from .usage import Usage

__all__ = [
    "MICRO",
    "TOTAL",
    "Admission",
    "Charge",
    "Period",
    "Price",
    "Usage",
    "Window",
    "admission_decision",
    "charge",
    "credits_to_micro",
    "is_free",
    "micro_to_credits",
    "window_for",
]
