"""``cap``: spend caps per budget window on a model or a provider, base or per group."""

from __future__ import annotations

import click

from ..errors import InvalidInputError, NotFoundError
from ..storage import caps
from ._app import NEGATIVE_ARGS, Group, get_app, handles, json_option
from ._output import emit_json, emit_table


@click.group(name="cap", cls=Group)
def cap() -> None:
    """Cap the credits a user spends per window on a model or provider."""


def _target(model: str | None, provider: str | None) -> tuple[str, str]:
    if (model is None) == (provider is None):
        raise click.UsageError("give exactly one of --model and --provider")
    return ("model", model) if model is not None else ("provider", provider or "")


target_options = [
    click.option("--model", help="A model id (under any provider)."),
    click.option("--provider", help="A provider (all of its models)."),
    click.option("--group", "group", metavar="CREDIT_GROUP",
                 help="The credit group whose members it caps (default: everyone's base "
                      "cap; a group's cap replaces it for its members)."),
]


def _with_targets(func):  # type: ignore[no-untyped-def]
    for option in reversed(target_options):
        func = option(func)
    return func


@cap.command(name="set", context_settings=NEGATIVE_ARGS)
@click.argument("credits", type=int)
@_with_targets
@handles(NotFoundError, InvalidInputError)
def set_(credits: int, model: str | None, provider: str | None, group: str | None) -> None:
    """Cap spend at CREDITS per window on --model or --provider."""
    kind, target = _target(model, provider)
    with get_app().session() as s:
        found = caps.set_cap(s, kind=kind, target=target, credit_limit=credits, group=group)
    whose = f"credit group {found.group!r}" if found.group else "everyone (base)"
    click.echo(f"Capped {kind} {found.target!r} at {credits} credits per window for {whose}.")


@cap.command()
@_with_targets
@handles(NotFoundError, InvalidInputError)
def remove(model: str | None, provider: str | None, group: str | None) -> None:
    """Remove the cap on --model or --provider (of the base, or of --group)."""
    kind, target = _target(model, provider)
    with get_app().session() as s:
        caps.remove_cap(s, kind=kind, target=target, group=group)
    click.echo(f"Removed the cap on {kind} {target!r}.")


@cap.command(name="list")
@click.option("--group", "group", metavar="CREDIT_GROUP", help="Only this group's caps.")
@json_option
@handles(NotFoundError)
def list_(group: str | None, as_json: bool) -> None:
    """List spend caps (credits per window)."""
    with get_app().session() as s:
        found = caps.list_caps(s, group)
    items = [{"group": c.group, "kind": c.kind, "target": c.target,
              "credit_limit": c.credit_limit} for c in found]
    if as_json:
        emit_json(items)
        return
    emit_table(["applies to", "kind", "target", "credits per window"],
               [[i["group"] or "(base)", i["kind"], i["target"], i["credit_limit"]]
                for i in items], empty="No spend caps.")
