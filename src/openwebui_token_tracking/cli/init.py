"""``init``: migrate, then add what is missing; never overwrite what an admin changed."""

from __future__ import annotations

from typing import IO

import click
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from ..accountant import utcnow
from ..errors import InvalidInputError
from ..storage import settings_store
from ..storage.schema import ModelPricing
from ._app import get_app, handles
from ._price_file import PriceRecord
from .database import run_migrations
from .pricing import read_records, write_records
from .pricing_sync import apply_changes, deleted_models, plan


class SettingRecord(BaseModel):
    """One entry of 0.1.10's ``settings.json``."""

    model_config = ConfigDict(extra="forbid")

    setting_key: str
    setting_value: str
    description: str | None = None


def read_settings(file: IO[bytes]) -> list[SettingRecord]:
    source = getattr(file, "name", "<stdin>")
    try:
        records = TypeAdapter(list[SettingRecord]).validate_json(file.read())
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InvalidInputError(f"{source}: {err['msg']} at "
                                f"{'/'.join(str(p) for p in err['loc']) or 'top level'}") from exc
    for record in records:
        record.setting_value = settings_store.validate_setting(record.setting_key,
                                                               record.setting_value)
    return records


def store_missing_settings(session: Session, records: list[SettingRecord]) -> list[str]:
    stored = settings_store.read_all(session)
    added = []
    for record in records:
        if record.setting_key not in stored:
            settings_store.set_value(session, record.setting_key, record.setting_value)
            added.append(record.setting_key)
    return added


def load_default_prices(session: Session, from_file: list[PriceRecord] | None) -> int:
    """Price the models never priced: from the file, else from genai-prices.

    A model an admin priced or deleted is left as it is.
    """
    now = utcnow()
    if from_file is not None:
        deleted = deleted_models(session)
        records = [r for r in from_file
                   if session.get(ModelPricing, r.key) is None and r.key not in deleted]
        return write_records(session, records, now=now, source="manual",
                             label="Adding default prices")["added"]
    return apply_changes(session, plan(session, now, None, only_new=True), now)


@click.command()
@click.option("--model-json", type=click.File("rb"),
              help="Default prices from this file (0.1.10 format) instead of genai-prices.")
@click.option("--settings-json", type=click.File("rb"),
              help="Initial settings from this file (0.1.10 format), where not set yet.")
@handles(InvalidInputError)
def init(model_json: IO[bytes] | None, settings_json: IO[bytes] | None) -> None:
    """Migrate, add default prices and settings. Safe at every start.

    Only missing things are added: a price or setting an admin changed is never
    overwritten (use `pricing sync` to refresh prices).
    """
    settings_records = read_settings(settings_json) if settings_json is not None else []
    price_records = read_records(model_json) if model_json is not None else None
    before, after = run_migrations()
    click.echo(f"Schema at revision {after}" +
               (f" (migrated from {before or 'empty'})." if before != after else "."))
    with get_app().session() as s:
        added_settings = store_missing_settings(s, settings_records)
        added_settings += settings_store.ensure_defaults(s)
        added_prices = load_default_prices(s, price_records)
    click.echo(f"Added {len(added_settings)} setting(s)"
               f"{' (' + ', '.join(added_settings) + ')' if added_settings else ''} "
               f"and {added_prices} model price(s); existing values were kept.")
