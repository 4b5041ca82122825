"""``credit-group``: groups whose allowance adds to each member's per-window allowance."""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import AlreadyExistsError, InvalidInputError, NotFoundError, UnknownUserError
from ..storage import group_links, groups
from ..storage.group_links import Link
from ..storage.schema import CreditGroup
from ..storage.users import get_user
from ._app import NEGATIVE_ARGS, Group, get_app, handles, json_option, legacy_url_argument
from ._output import emit_json, emit_table


@click.group(name="credit-group", cls=Group)
def credit_group() -> None:
    """Manage credit groups and their members."""


def _describe(session: Session, group: CreditGroup, links: dict[str, Link]) -> dict[str, Any]:
    link = links.get(group.name)
    return {"id": group.id, "name": group.name, "max_credit": group.max_credit,
            "description": group.description, "members": groups.member_count(session, group),
            "openwebui_group": None if link is None else {
                "id": link.openwebui_group_id, "name": link.name, "exists": not link.broken,
                "members": link.members},
            "requests_per_minute": group.requests_per_minute,
            "tokens_per_minute": group.tokens_per_minute,
            "total_credit_limit": group.total_credit_limit}


def _linked(item: dict[str, Any]) -> str:
    link = item["openwebui_group"]
    if link is None:
        return ""
    if not link["exists"]:
        return f"{link['id']} (DELETED in Open WebUI: grants nothing)"
    return f"{link['name']} ({link['members']} members)"


def _show(items: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(items)
        return
    emit_table(["name", "allowance", "members", "linked Open WebUI group", "req/min",
                "tokens/min", "team budget", "description"],
               [[i["name"], i["max_credit"], i["members"], _linked(i),
                 i["requests_per_minute"], i["tokens_per_minute"], i["total_credit_limit"],
                 i["description"]] for i in items],
               empty="No credit groups.")


@credit_group.command(context_settings=NEGATIVE_ARGS)
@click.argument("name")
@click.argument("allowance", type=int)
@click.argument("description", required=False)
@legacy_url_argument
@handles(AlreadyExistsError, InvalidInputError)
def create(name: str, allowance: int, description: str | None) -> None:
    """Create group NAME adding ALLOWANCE credits per window to each member."""
    with get_app().session() as s:
        group = groups.create_group(s, name, allowance, description)
    click.echo(f"Created credit group {group.name!r} ({allowance} credits).")


@credit_group.command()
@click.argument("name")
@legacy_url_argument
@json_option
@handles(NotFoundError)
def get(name: str, as_json: bool) -> None:
    """Show credit group NAME."""
    with get_app().session() as s:
        item = _describe(s, groups.get_group(s, name), group_links.links(s))
    if as_json:
        emit_json(item)
    else:
        _show([item], False)


@credit_group.command(name="list")
@legacy_url_argument
@json_option
@handles()
def list_(as_json: bool) -> None:
    """List every credit group."""
    with get_app().session() as s:
        found = s.scalars(sa.select(CreditGroup).order_by(CreditGroup.name))
        links = group_links.links(s)
        items = [_describe(s, g, links) for g in found]
    _show(items, as_json)


@credit_group.command(context_settings=NEGATIVE_ARGS)
@click.argument("name")
@click.argument("allowance", type=int, required=False)
@click.option("--allowance", "allowance_option", type=int, help="New credit allowance.")
@click.option("--description", help="New description.")
@click.option("--new-name", help="Rename the group.")
@legacy_url_argument
@handles(NotFoundError, AlreadyExistsError, InvalidInputError)
def update(name: str, allowance: int | None, allowance_option: int | None,
           description: str | None, new_name: str | None) -> None:
    """Change credit group NAME: its ALLOWANCE, description or name."""
    if allowance is not None and allowance_option is not None:
        raise click.UsageError("give the allowance once (argument or --allowance)")
    with get_app().session() as s:
        group = groups.update_group(
            s, name, max_credit=allowance if allowance is not None else allowance_option,
            description=description, new_name=new_name)
    click.echo(f"Updated credit group {group.name!r}.")


@credit_group.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete even if the group has members.")
@legacy_url_argument
@handles(NotFoundError, InvalidInputError)
def delete(name: str, force: bool) -> None:
    """Delete credit group NAME (refused while it has members, unless --force)."""
    with get_app().session() as s:
        groups.delete_group(s, name, force=force)
    click.echo(f"Deleted credit group {name!r}.")


@credit_group.command(name="add-user")
@click.argument("user_id")
@click.argument("group_name", metavar="CREDIT_GROUP")
@legacy_url_argument
@handles(NotFoundError, UnknownUserError)
def add_user(user_id: str, group_name: str) -> None:
    """Add Open WebUI user USER_ID to CREDIT_GROUP."""
    with get_app().session() as s:
        groups.add_member(s, group_name, user_id)
    click.echo(f"Added user {user_id!r} to credit group {group_name!r}.")


@credit_group.command(name="remove-user")
@click.argument("user_id")
@click.argument("group_name", metavar="CREDIT_GROUP")
@legacy_url_argument
@handles(NotFoundError)
def remove_user(user_id: str, group_name: str) -> None:
    """Remove user USER_ID from CREDIT_GROUP."""
    with get_app().session() as s:
        groups.remove_member(s, group_name, user_id)
    click.echo(f"Removed user {user_id!r} from credit group {group_name!r}.")


@credit_group.command(name="list-users")
@click.argument("name")
@legacy_url_argument
@json_option
@handles(NotFoundError)
def list_users(name: str, as_json: bool) -> None:
    """List the members of credit group NAME (direct, and through its Open WebUI link)."""
    with get_app().session() as s:
        group = groups.get_group(s, name)
        direct = groups.member_ids(s, group)
        linked = group_links.linked_member_ids(s, group)
        members: list[dict[str, Any]] = []
        for user_id in sorted(set(direct) | set(linked)):
            found = get_user(s, user_id) or {}
            via = [w for w, ids in (("direct", direct), ("Open WebUI group", linked))
                   if user_id in ids]
            members.append({"id": user_id, "name": found.get("name"),
                            "email": found.get("email"), "via": via})
    if as_json:
        emit_json(members)
        return
    emit_table(["id", "name", "email", "member via"],
               [[m["id"], m["name"], m["email"], ", ".join(m["via"])] for m in members],
               empty=f"Credit group {group.name!r} has no members.")
