"""``credit-group link/unlink/limits/openwebui-groups``: Open WebUI group links, rate-limit
overrides and team budgets of credit groups (added to the ``credit-group`` command)."""

from __future__ import annotations

import click

from ..errors import InvalidInputError, NotFoundError
from ..storage import group_limits
from ..storage.group_links import link_group, unlink_group
from ..storage.openwebui_groups import list_openwebui_groups
from ._app import NEGATIVE_ARGS, get_app, handles, json_option
from ._output import emit_json, emit_table

CLEAR = "none"


class LimitValue(click.ParamType):
    """A whole number, or ``none`` to clear the limit."""

    name = "N|none"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.lower() == CLEAR:
            return CLEAR
        if not text.lstrip("-").isdigit():
            self.fail(f"{text!r} is not a whole number or 'none'", param, ctx)
        return int(text)


def _change(value: int | str | None) -> int | None | group_limits.Unchanged:
    """Not given: unchanged; ``none``: cleared."""
    if value is None:
        return group_limits.UNCHANGED
    return None if value == CLEAR else int(value)


@click.command()
@click.argument("name")
@click.option("--openwebui-group", "openwebui_group", required=True, metavar="GROUP",
              help="The Open WebUI group's id or name.")
@handles(NotFoundError, InvalidInputError)
def link(name: str, openwebui_group: str) -> None:
    """Link credit group NAME to an Open WebUI group: its members become members."""
    with get_app().session() as s:
        found = link_group(s, name, openwebui_group)
    click.echo(f"Linked credit group {name!r} to Open WebUI group {found.name!r} "
               f"({found.id}).")


@click.command()
@click.argument("name")
@handles(NotFoundError)
def unlink(name: str) -> None:
    """Remove credit group NAME's link to an Open WebUI group."""
    with get_app().session() as s:
        unlink_group(s, name)
    click.echo(f"Unlinked credit group {name!r}.")


@click.command(context_settings=NEGATIVE_ARGS)
@click.argument("name")
@click.option("--requests-per-minute", type=LimitValue(),
              help="Members' requests per minute (overrides the default), or none.")
@click.option("--tokens-per-minute", type=LimitValue(),
              help="Members' tokens per minute (overrides the default), or none.")
@click.option("--total-budget", type=LimitValue(),
              help="Credits per window for all members together (a team budget), or none.")
@handles(NotFoundError, InvalidInputError)
def limits(name: str, requests_per_minute: int | str | None, tokens_per_minute: int | str | None,
           total_budget: int | str | None) -> None:
    """Set credit group NAME's rate-limit overrides and team budget (none clears one)."""
    with get_app().session() as s:
        group = group_limits.set_group_limits(
            s, name, requests_per_minute=_change(requests_per_minute),
            tokens_per_minute=_change(tokens_per_minute),
            total_credit_limit=_change(total_budget))
    click.echo(f"Credit group {group.name!r}: requests per minute "
               f"{group.requests_per_minute or 'default'}, tokens per minute "
               f"{group.tokens_per_minute or 'default'}, team budget "
               f"{'none' if group.total_credit_limit is None else group.total_credit_limit}.")


@click.command(name="openwebui-groups")
@json_option
@handles()
def openwebui_groups(as_json: bool) -> None:
    """List Open WebUI's groups (to link credit groups to)."""
    with get_app().session() as s:
        found = list_openwebui_groups(s)
    items = [{"id": g.id, "name": g.name, "members": g.members} for g in found]
    if as_json:
        emit_json(items)
        return
    emit_table(["id", "name", "members"], [[i["id"], i["name"], i["members"]] for i in items],
               empty="No Open WebUI groups (or no group tables in this database).")


COMMANDS = (link, unlink, limits, openwebui_groups)
