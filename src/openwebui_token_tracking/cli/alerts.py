"""``alerts``: the history of budget alerts, delivering queued ones, a test event."""

from __future__ import annotations

from datetime import datetime

import click
from sqlalchemy.engine import Engine

from ..accounting.money import micro_to_credits
from ..alerts.deliverer import AlertDeliverer
from ..errors import AlertDeliveryError, InvalidInputError
from ..storage import alerts as alert_store
from ..storage.alerts import EMAIL, WEBHOOK, AlertRecord
from ._app import Group, Instant, get_app, handles, json_option
from ._output import emit_json, emit_table


@click.group(name="alerts", cls=Group)
def alerts() -> None:
    """Budget alerts: thresholds crossed, their webhook and e-mail deliveries."""


def _engine() -> Engine:
    """The engine of a database that has our current tables (else a one-line error)."""
    app = get_app()
    app.require_database()
    engine = app.engine()
    app.require_schema(engine)
    return engine


def _deliveries(record: AlertRecord) -> str:
    return ", ".join(f"{d.channel}: {d.status}"
                     + (f" ({d.attempts} attempts)" if d.status != "delivered" and d.attempts
                        else "") for d in record.deliveries) or "-"


def _as_json(record: AlertRecord) -> dict[str, object]:
    return {"id": record.event_key, "created_at": record.created_at, "scope": record.scope,
            "subject": record.subject, "threshold_percent": record.threshold,
            "limit": micro_to_credits(record.limit_micro),
            "spent": micro_to_credits(record.spent_micro), "user_id": record.user_id,
            "allowance_id": record.allowance_id, "payload": record.payload,
            "deliveries": record.deliveries}


@alerts.command(name="list")
@click.option("--since", type=Instant(), help="Only alerts from this date or instant on.")
@click.option("--until", type=Instant(end_of_day=True), help="Only alerts before this.")
@click.option("--scope", help="Only this scope (user, sponsor_user, sponsor_total, ...).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@handles(InvalidInputError)
def list_(since: datetime | None, until: datetime | None, scope: str | None, limit: int,
          as_json: bool) -> None:
    """Alerts fired, newest first, with their delivery state."""
    with get_app().session() as s:
        records = alert_store.list_alerts(s, since=since, until=until, scope=scope,
                                          limit=limit)
    if as_json:
        emit_json([_as_json(r) for r in records])
        return
    emit_table(["when", "scope", "who", "threshold", "spent", "limit", "deliveries"],
               [[r.created_at, r.scope, alert_store.who(r), f"{r.threshold}%",
                 micro_to_credits(r.spent_micro), micro_to_credits(r.limit_micro),
                 _deliveries(r)] for r in records], empty="(no alerts)")


@alerts.command()
@json_option
@handles(AlertDeliveryError)
def deliver(as_json: bool) -> int:
    """Send every queued alert that is due (once; run it from cron, or let `serve` do it).

    Exits 1 when an attempt failed (it is retried later with backoff).
    """
    report = AlertDeliverer(_engine()).deliver_due()
    if as_json:
        emit_json(report)
    else:
        click.echo(f"delivered {report.delivered}, failed {report.failed} (will retry), "
                   f"gave up {report.gave_up}")
        for error in report.errors:
            click.echo(f"  {error}", err=True)
    return 1 if report.failed or report.gave_up else 0


@alerts.command()
@click.option("--channel", "channels", multiple=True, type=click.Choice([WEBHOOK, EMAIL]),
              help="Only this channel (repeatable; default: every configured one).")
@handles(AlertDeliveryError)
def test(channels: tuple[str, ...]) -> int:
    """Send a test event now to the configured webhook and e-mail recipients."""
    results = AlertDeliverer(_engine()).send_test(list(channels) or None)
    for channel, error in results.items():
        click.echo(f"{channel}: {'delivered' if error is None else 'failed: ' + error}")
    return 1 if any(e is not None for e in results.values()) else 0
