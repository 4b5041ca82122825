"""``settings``: base allowance, window period and time zone, contact text, credits per USD."""

from __future__ import annotations

import click

from ..errors import InvalidInputError
from ..storage import settings_store
from ..storage.settings_store import SPECS
from ._app import NEGATIVE_ARGS, Group, get_app, handles, json_option
from ._output import emit_json, emit_table


@click.group(name="settings", cls=Group)
def settings() -> None:
    """Read and change the global settings."""


def _known(key: str) -> str:
    if key not in SPECS:
        raise InvalidInputError(
            f"unknown setting {key!r}; known settings: {', '.join(sorted(SPECS))}")
    return key


@settings.command(name="list")
@json_option
@handles()
def list_(as_json: bool) -> None:
    """Every setting with its value (or default, when not set) and meaning."""
    with get_app().session() as s:
        stored = settings_store.read_all(s)
    items = [{"key": spec.key,
              "value": settings_store.shown_value(spec.key, stored.get(spec.key, spec.default)),
              "is_default": spec.key not in stored, "description": spec.description}
             for spec in SPECS.values()]
    if as_json:
        emit_json(items)
        return
    emit_table(["key", "value", "description"],
               [[i["key"], f"{i['value']}{' (default)' if i['is_default'] else ''}",
                 i["description"]] for i in items])


@settings.command()
@click.argument("key")
@json_option
@handles(InvalidInputError)
def get(key: str, as_json: bool) -> None:
    """Print the value of setting KEY (its default when not set; secrets masked)."""
    _known(key)
    with get_app().session() as s:
        stored = settings_store.read_all(s)
    value = settings_store.shown_value(key, stored.get(key, SPECS[key].default))
    if as_json:
        emit_json({"key": key, "value": value, "is_default": key not in stored})
    else:
        click.echo(value)


@settings.command(name="set", context_settings=NEGATIVE_ARGS)
@click.argument("key")
@click.argument("value")
@handles(InvalidInputError)
def set_(key: str, value: str) -> None:
    """Set KEY to VALUE (checked: numbers, period day/week/month, IANA time zone)."""
    _known(key)
    with get_app().session() as s:
        settings_store.set_value(s, key, value)
        stored = settings_store.read_all(s)[key]
    click.echo(f"{key} = {settings_store.shown_value(key, stored)}")
