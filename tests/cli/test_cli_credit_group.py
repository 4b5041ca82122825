"""``credit-group``: create/get/list/update/delete and members."""

from __future__ import annotations

import pytest
from cli_support import Run, run_fixture, snapshot  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine


def test_group_lifecycle(engine: Engine, run: Run) -> None:
    assert run("credit-group", "create", "Physics", "500", "Dept. of physics").code == 0
    assert run("credit-group", "create", "chem", "100").code == 0
    got = run("credit-group", "get", "physics", "--json").json()
    assert (got["name"], got["max_credit"], got["description"], got["members"]) == (
        "Physics", 500, "Dept. of physics", 0)
    assert [g["name"] for g in run("credit-group", "list", "--json").json()] == ["Physics",
                                                                              "chem"]
    assert "Dept. of physics" in run("credit-group", "list").out

    assert run("credit-group", "update", "Physics", "750").code == 0
    assert run("credit-group", "update", "Physics", "--new-name", "Phys",
               "--description", "renamed").code == 0
    got = run("credit-group", "get", "Phys", "--json").json()
    assert (got["max_credit"], got["description"]) == (750, "renamed")

    assert run("credit-group", "add-user", "u-alice", "Phys").code == 0
    assert run("credit-group", "add-user", "u-bob", "Phys").code == 0
    members = run("credit-group", "list-users", "Phys", "--json").json()
    assert [(m["id"], m["name"]) for m in members] == [("u-alice", "Alice"), ("u-bob", "Bob")]
    assert run("credit-group", "remove-user", "u-bob", "Phys").code == 0
    assert [m["id"] for m in run("credit-group", "list-users", "Phys", "--json").json()] == [
        "u-alice"]

    refused = run("credit-group", "delete", "Phys")
    assert refused.code == 1 and "use force" in refused.error
    assert run("credit-group", "get", "Phys").code == 0
    assert run("credit-group", "delete", "Phys", "--force").code == 0
    assert run("credit-group", "get", "Phys").code == 1


@pytest.mark.parametrize(("args", "code", "message"), [
    (["create", "Physics", "5"], 1, "already exists"),
    (["create", "PHYSICS", "5"], 1, "already exists"),
    (["create", "New", "-5"], 1, "must not be negative"),
    (["update", "Physics", "-5"], 1, "must not be negative"),
    (["create", "New", "many"], 2, "not a valid integer"),
    (["create", "  ", "5"], 1, "must not be empty"),
    (["update", "Physics", "--allowance", "-1"], 1, "must not be negative"),
    (["update", "Nope", "5"], 1, "credit group 'Nope' does not exist"),
    (["update", "Physics"], 1, "give at least one of"),
    (["get", "Nope"], 1, "does not exist"),
    (["delete", "Nope"], 1, "does not exist"),
    (["add-user", "u-ghost", "Physics"], 1, "does not exist in Open WebUI's user table"),
    (["add-user", "u-alice", "Nope"], 1, "credit group 'Nope' does not exist"),
    (["remove-user", "u-bob", "Physics"], 1, "is not a member"),
    (["list-users", "Nope"], 1, "does not exist"),
])
def test_group_errors_write_nothing(engine: Engine, run: Run, args: list[str], code: int,
                                    message: str) -> None:
    assert run("credit-group", "create", "Physics", "500").code == 0
    before = snapshot(engine)
    result = run("credit-group", *args)
    assert result.code == code, result.err
    assert message in (result.error if code == 1 else result.err)
    assert snapshot(engine) == before
    assert run("credit-group", "get", "Physics", "--json").json()["max_credit"] == 500
