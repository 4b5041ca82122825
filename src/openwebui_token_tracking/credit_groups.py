"""0.1.10's credit group functions, as thin wrappers over ``storage.groups``.

Errors come from one tree: missing things raise ``NotFoundError`` (a ``KeyError`` as in
0.1.10), bad values ``InvalidInputError`` (a ``ValueError``); nothing is half-written.
"""

from __future__ import annotations

from typing import Any

from .accountant import transaction
from .storage import groups, users


def create_credit_group(credit_group_name: str, credit_allowance: int, description: str,
                        database_url: str | None = None) -> None:
    with transaction(database_url) as s:
        groups.create_group(s, credit_group_name, credit_allowance, description)


def get_credit_group(credit_group_name: str, database_url: str | None = None) -> dict[str, Any]:
    with transaction(database_url) as s:
        g = groups.get_group(s, credit_group_name)
        return {"id": str(g.id), "name": g.name, "max_credit": g.max_credit,
                "description": g.description}


def list_credit_groups(database_url: str | None = None) -> list[dict[str, Any]]:
    with transaction(database_url) as s:
        return [
            {"id": str(g.id), "name": g.name, "description": g.description,
             "max_credit": g.max_credit, "user_count": groups.member_count(s, g)}
            for g in groups.list_groups(s)
        ]


def update_credit_group(credit_group_name: str, new_credit_allowance: int | None = None,
                        new_description: str | None = None, new_name: str | None = None,
                        database_url: str | None = None) -> None:
    with transaction(database_url) as s:
        groups.update_group(s, credit_group_name, max_credit=new_credit_allowance,
                            description=new_description, new_name=new_name)


def upsert_credit_group(credit_group_name: str, credit_allowance: int, description: str,
                        database_url: str | None = None) -> bool:
    """Create the group or update it; True if it was created."""
    with transaction(database_url) as s:
        if groups.find_group(s, credit_group_name) is None:
            groups.create_group(s, credit_group_name, credit_allowance, description)
            return True
        groups.update_group(s, credit_group_name, max_credit=credit_allowance,
                            description=description)
        return False


def delete_credit_group(credit_group_name: str, database_url: str | None = None,
                        force: bool = False) -> None:
    with transaction(database_url) as s:
        groups.delete_group(s, credit_group_name, force=force)


def add_user(user_id: str, credit_group_name: str, database_url: str | None = None) -> None:
    with transaction(database_url) as s:
        groups.add_member(s, credit_group_name, user_id)


def remove_user(user_id: str, credit_group_name: str, database_url: str | None = None) -> None:
    with transaction(database_url) as s:
        groups.remove_member(s, credit_group_name, user_id)


def list_users(credit_group_name: str, database_url: str | None = None) -> list[dict[str, Any]]:
    """Members with their credit groups (0.1.10's shape); ids not in Open WebUI are kept."""
    with transaction(database_url) as s:
        group = groups.get_group(s, credit_group_name)
        result = []
        for user_id in groups.member_ids(s, group):
            user = users.get_user(s, user_id) or {"id": user_id, "name": None, "email": None}
            result.append({**user, "credit_groups": [
                {"id": str(g.id), "name": g.name, "max_credit": g.max_credit,
                 "description": g.description} for g in groups.groups_of(s, user_id)]})
        return result
