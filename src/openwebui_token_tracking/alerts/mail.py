"""The e-mail channel: standard-library ``smtplib``, optional STARTTLS and login."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

from ..errors import AlertDeliveryError
from .config import SmtpConfig

TIMEOUT_SECONDS = 30.0
_SCOPES = {"user": "their allowance", "sponsor_user": "their sponsored limit",
           "sponsor_total": "the sponsored total", "group_total": "the group total"}


def _who(subject: dict[str, Any]) -> str:
    for key in ("user_name", "allowance_name", "group_name", "user_id", "id"):
        if subject.get(key):
            return str(subject[key])
    return "a budget"


def compose(payload: dict[str, Any], sender: str, to: list[str]) -> EmailMessage:
    """A plain-text message of one alert; its Message-ID derives from the event id, so a
    mail client can drop a duplicate of a retried delivery."""
    msg = EmailMessage()
    subject = payload.get("subject") or {}
    if payload.get("type") == "budget.threshold_crossed":
        what = _SCOPES.get(str(payload.get("scope")), str(payload.get("scope")))
        msg["Subject"] = (f"Budget alert: {_who(subject)} at "
                          f"{payload['threshold_percent']}% of {what}")
        lines = [msg["Subject"] + ".", "",
                 f"Spent: {payload['spent']} of {payload['limit']} credits "
                 f"({payload['remaining']} left).",
                 *(f"{k.replace('_', ' ')}: {v}" for k, v in subject.items() if v)]
        if payload.get("window"):
            lines.append(f"Window: {payload['window']['start']} to {payload['window']['end']}"
                         " (UTC)")
        lines.append(f"At: {payload['instant']}")
    else:
        msg["Subject"] = "Budget alert test from owui-token-tracking"
        lines = ["This is a test: budget alerts reach this address.",
                 f"At: {payload.get('instant')}"]
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Message-ID"] = f"<{payload['id']}@owui-token-tracking>"
    msg.set_content("\n".join(lines) + "\n")
    return msg


def send(config: SmtpConfig, message: EmailMessage,
         ssl_context: ssl.SSLContext | None = None) -> None:
    """Send one message; ``AlertDeliveryError`` on any SMTP or network failure."""
    try:
        with smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_SECONDS) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl_context or ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise AlertDeliveryError(f"e-mail via {config.host}:{config.port} failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
