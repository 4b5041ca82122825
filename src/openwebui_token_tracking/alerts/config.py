"""Where alerts go, read from the settings at delivery time (a changed URL or SMTP
server applies to deliveries still pending)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..storage.openwebui_tables import user_table
from ..storage.settings_store import SPECS, read_all


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    starttls: bool
    username: str
    password: str
    sender: str

    def __repr__(self) -> str:  # never show the password in a log or traceback
        return f"SmtpConfig(host={self.host!r}, port={self.port}, starttls={self.starttls})"


@dataclass(frozen=True)
class AlertConfig:
    webhook_url: str
    webhook_secret: str
    smtp: SmtpConfig | None
    email_to: tuple[str, ...]
    """Addresses; ``admins`` stands for every Open WebUI admin's address."""
    email_sponsors: bool

    def __repr__(self) -> str:
        return (f"AlertConfig(webhook_url={self.webhook_url!r}, smtp={self.smtp!r}, "
                f"email_to={self.email_to!r})")


def alert_config(session: Session) -> AlertConfig:
    stored = read_all(session)

    def get(key: str) -> str:
        return stored.get(key, SPECS[key].default).strip()
    smtp = None
    if get("alert_smtp_host"):
        port = get("alert_smtp_port")
        smtp = SmtpConfig(get("alert_smtp_host"), int(port) if port.isdigit() else 587,
                          get("alert_smtp_starttls") != "false", get("alert_smtp_username"),
                          stored.get("alert_smtp_password", ""),
                          get("alert_email_from") or "token-tracking@localhost")
    return AlertConfig(
        webhook_url=get("alert_webhook_url"),
        webhook_secret=stored.get("alert_webhook_secret", ""),
        smtp=smtp,
        email_to=tuple(p.strip() for p in get("alert_email_to").split(",") if p.strip()),
        email_sponsors=get("alert_email_sponsors") != "false",
    )


def recipients(session: Session, config: AlertConfig, payload: dict[str, object]) -> list[str]:
    """The e-mail addresses of one alert: configured ones, admins, the sponsor."""
    found: list[str] = []
    for entry in config.email_to:
        if entry == "admins":
            found.extend(e for e in session.scalars(
                sa.select(user_table.c.email).where(user_table.c.role == "admin")
                .order_by(user_table.c.email)) if e)
        else:
            found.append(entry)
    subject = payload.get("subject")
    if config.email_sponsors and isinstance(subject, dict) and subject.get("sponsor_email"):
        found.append(str(subject["sponsor_email"]))
    return list(dict.fromkeys(found))
