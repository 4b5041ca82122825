"""Budget alerts: delivery of the threshold crossings the ledger records.

Detection lives where the money is written (``storage.alerts``, in the charge's
transaction); this package sends what it queued: a signed webhook (``webhook``) and
e-mail over SMTP (``mail``), by an :class:`AlertDeliverer`.
"""

from .deliverer import AlertDeliverer, DeliveryReport

__all__ = ["AlertDeliverer", "DeliveryReport"]
