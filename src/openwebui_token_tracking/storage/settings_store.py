"""Settings: typed reads with documented defaults, validated writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..accounting.alerts import parse_thresholds
from ..accounting.budget import Period
from ..accounting.money import credits_to_micro
from ..errors import InvalidInputError, NotFoundError
from .schema import BaseSetting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingSpec:
    key: str
    default: str
    description: str


ALERT_SPECS = [
    SettingSpec("alert_thresholds", "80,100",
                "Percentages of a limit at which a budget alert fires once (empty: none)."),
    SettingSpec("alert_webhook_url", "",
                "URL that receives budget alerts as signed JSON POSTs (empty: no webhook)."),
    SettingSpec("alert_webhook_secret", "",
                "Shared secret of the webhook's HMAC-SHA256 signature header (secret)."),
    SettingSpec("alert_smtp_host", "", "SMTP server for alert e-mails (empty: no e-mail)."),
    SettingSpec("alert_smtp_port", "587", "Port of the SMTP server."),
    SettingSpec("alert_smtp_starttls", "true", "Upgrade the SMTP connection with STARTTLS."),
    SettingSpec("alert_smtp_username", "", "SMTP login (empty: no login)."),
    SettingSpec("alert_smtp_password", "", "SMTP password (secret)."),
    SettingSpec("alert_email_from", "token-tracking@localhost", "Sender of alert e-mails."),
    SettingSpec("alert_email_to", "admins",
                "Alert e-mail recipients, comma-separated; 'admins': Open WebUI's admins."),
    SettingSpec("alert_email_sponsors", "true",
                "Also e-mail an allowance's sponsor (Open WebUI user) about its alerts."),
]

SECRET_SETTINGS = frozenset({"alert_webhook_secret", "alert_smtp_password"})
"""Never printed: ``settings list/get`` and the API show ``MASK`` when they are set."""
MASK = "********"


def shown_value(key: str, value: str) -> str:
    """What a listing may show of a setting: secrets masked when set."""
    return MASK if key in SECRET_SETTINGS and value else value


def _validate_alert_setting(key: str, value: str) -> None:
    if key == "alert_thresholds":
        try:
            parse_thresholds(value)
        except ValueError as exc:
            raise InvalidInputError(f"{key}: {exc}, e.g. '80,100'") from exc
    elif key == "alert_webhook_url" and value and not value.startswith(("http://", "https://")):
        raise InvalidInputError(f"{key} must be an http:// or https:// URL, got {value!r}")
    elif key == "alert_smtp_port" and not (value.isdigit() and 1 <= int(value) <= 65535):
        raise InvalidInputError(f"{key} must be a port number (1-65535), got {value!r}")
    elif key in ("alert_smtp_starttls", "alert_email_sponsors") and value not in (
            "true", "false"):
        raise InvalidInputError(f"{key} must be true or false, got {value!r}")
    elif key in ("alert_email_to", "alert_email_from"):
        for part in (p.strip() for p in value.split(",")):
            if part and part != "admins" and "@" not in part:
                raise InvalidInputError(f"{key}: {part!r} is not an e-mail address")


SPECS: dict[str, SettingSpec] = {
    s.key: s
    for s in [
        SettingSpec("base_credit_allowance", "1000", "Baseline credit allowance for all users."),
        SettingSpec("budget_period", "day", "Allowance window: day, week or month."),
        SettingSpec("budget_timezone", "UTC", "IANA time zone of the window boundaries."),
        SettingSpec(
            "limit_contact_text",
            "Contact your administrator if you need more credits.",
            "Text shown to a user whose request is refused by a limit.",
        ),
        SettingSpec("credits_per_usd", "1000", "Credits that one US dollar buys (price import)."),
        SettingSpec(
            "reservation_ttl_seconds",
            "3600",
            "After this many seconds an unsettled reservation is charged at its estimate.",
        ),
        SettingSpec("requests_per_minute", "0",
                    "Requests per minute per user (0: no limit); credit groups may override."),
        SettingSpec("tokens_per_minute", "0",
                    "Tokens per minute per user (0: no limit); credit groups may override."),
        *ALERT_SPECS,
    ]
}


def validate_setting(key: str, value: str) -> str:
    """The canonical text of ``value`` for ``key``, or ``InvalidInputError``."""
    if key not in SPECS:
        raise InvalidInputError(
            f"unknown setting {key!r}; known settings: {', '.join(sorted(SPECS))}"
        )
    value = value.strip()
    if key in ("base_credit_allowance", "credits_per_usd"):
        try:
            micro = credits_to_micro(value)
        except ValueError as exc:
            raise InvalidInputError(f"{key} must be a number, got {value!r}") from exc
        if micro < 0 or (key == "credits_per_usd" and micro == 0):
            raise InvalidInputError(f"{key} must be positive, got {value!r}")
    elif key == "budget_period":
        try:
            Period(value)
        except ValueError as exc:
            raise InvalidInputError(
                f"budget_period must be day, week or month, got {value!r}"
            ) from exc
    elif key == "budget_timezone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidInputError(
                f"budget_timezone must be an IANA time zone like Europe/Berlin, got {value!r}"
            ) from exc
    elif key in WHOLE_NUMBERS:
        value = _whole_number(key, value)
    elif key.startswith("alert_"):
        _validate_alert_setting(key, value)
    return value


WHOLE_NUMBERS = {"reservation_ttl_seconds": "a positive whole number",
                 "requests_per_minute": "a whole number from 0 (no limit) to 10^12",
                 "tokens_per_minute": "a whole number from 0 (no limit) to 10^12"}


def _whole_number(key: str, value: str) -> str:
    minimum = 1 if key == "reservation_ttl_seconds" else 0
    if not value.isascii() or not value.isdigit() or len(value) > 13 or int(value) < minimum:
        raise InvalidInputError(f"{key} must be {WHOLE_NUMBERS[key]}, got {value!r}")
    return str(int(value))


_settings_table = cast(sa.Table, BaseSetting.__table__)
_ALL_SETTINGS = sa.select(_settings_table.c.setting_key, _settings_table.c.setting_value)
"""Core (not ORM) select: this runs before every request."""


def read_all(session: Session) -> dict[str, str]:
    """Every stored setting, unvalidated."""
    rows = session.execute(_ALL_SETTINGS)
    return {k: v for k, v in rows if v is not None}


def get_value(session: Session, key: str, stored: dict[str, str] | None = None,
              warn: bool = True) -> str:
    """A setting's value; a missing or invalid one falls back to its default, with a warning
    (unless ``warn`` is false: an upgrade reads settings before ``init`` stores them)."""
    spec = SPECS[key]
    if stored is None:
        raw = session.get(BaseSetting, key)
        value = raw.setting_value if raw is not None else None
    else:
        value = stored.get(key)
    if value is None:
        if warn:
            _warn_once(key, f"setting {key} is not set; using the default {spec.default!r}")
        return spec.default
    try:
        return validate_setting(key, value)
    except InvalidInputError as exc:
        if warn:
            _warn_once(key, f"{exc}; using the default {spec.default!r}")
        return spec.default


_warned: set[tuple[str, str]] = set()


def _warn_once(key: str, message: str) -> None:
    """Log a fallback to a default once per setting and message, not on every request."""
    if (key, message) not in _warned:
        _warned.add((key, message))
        logger.warning(message)


@dataclass(frozen=True)
class BudgetSettings:
    """The settings admission needs, parsed."""

    base_allowance_micro: int
    period: Period
    timezone: ZoneInfo
    contact_text: str
    reservation_ttl_seconds: int
    requests_per_minute: int | None = None
    """Default rate limits per user (None: off); credit groups may override them."""
    tokens_per_minute: int | None = None


def budget_settings(session: Session, warn: bool = True) -> BudgetSettings:
    return budget_settings_from(session, read_all(session), warn)


BUDGET_KEYS = ("base_credit_allowance", "budget_period", "budget_timezone",
               "limit_contact_text", "reservation_ttl_seconds", "requests_per_minute",
               "tokens_per_minute")
"""The settings ``BudgetSettings`` is made of (what admission and checks read)."""

_parsed: dict[frozenset[tuple[str, str]], BudgetSettings] = {}


def budget_settings_from(session: Session, stored: dict[str, str],
                         warn: bool = True) -> BudgetSettings:
    """``BudgetSettings`` from stored values already read (``read_all``; missing ones:
    defaults); the parsing of the same stored values is remembered (settings change
    rarely, requests read them often)."""
    if any(k not in stored for k in BUDGET_KEYS):  # a default applies: parse (warn once)
        return _parse(session, stored, warn)
    key = frozenset((k, stored[k]) for k in BUDGET_KEYS)
    found = _parsed.get(key)
    if found is None:
        if len(_parsed) > 64:
            _parsed.clear()
        found = _parsed[key] = _parse(session, stored, warn)
    return found


def _parse(session: Session, stored: dict[str, str], warn: bool) -> BudgetSettings:
    def value(key: str) -> str:
        return get_value(session, key, stored, warn)
    return BudgetSettings(
        base_allowance_micro=credits_to_micro(value("base_credit_allowance")),
        period=Period(value("budget_period")),
        timezone=ZoneInfo(value("budget_timezone")),
        contact_text=value("limit_contact_text"),
        reservation_ttl_seconds=int(value("reservation_ttl_seconds")),
        requests_per_minute=int(value("requests_per_minute")) or None,
        tokens_per_minute=int(value("tokens_per_minute")) or None,
    )


def credits_per_usd(session: Session) -> Decimal:
    return Decimal(get_value(session, "credits_per_usd"))


def set_value(session: Session, key: str, value: str) -> None:
    """Validate and store a setting (the caller commits)."""
    value = validate_setting(key, value)
    row = session.get(BaseSetting, key)
    if row is None:
        session.add(BaseSetting(setting_key=key, setting_value=value,
                                description=SPECS[key].description))
    else:
        row.setting_value = value
    session.flush()


def get_setting(session: Session, key: str) -> str:
    """A stored setting's raw value; ``NotFoundError`` when it is not stored."""
    if key not in SPECS:
        raise NotFoundError(f"unknown setting {key!r}; known: {', '.join(sorted(SPECS))}")
    row = session.get(BaseSetting, key)
    if row is None or row.setting_value is None:
        raise NotFoundError(f"setting {key!r} is not set (default: {SPECS[key].default!r})")
    return row.setting_value


def ensure_defaults(session: Session) -> list[str]:
    """Store the default of every missing setting; never overwrite one. Returns the keys added."""
    stored = read_all(session)
    added = []
    for spec in SPECS.values():
        if spec.key not in stored:
            session.add(BaseSetting(setting_key=spec.key, setting_value=spec.default,
                                    description=spec.description))
            added.append(spec.key)
    session.flush()
    return added
