"""``sponsored``: allowances with models, total and daily limits, optional expiry."""

from __future__ import annotations

import pytest
from cli_support import Run, run_fixture, snapshot  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine

CREATE = ["sponsored", "create", "--name", "Lab", "--sponsor-id", "u-admin", "-m", "gpt-4o",
          "-m", "claude-sonnet-4-5", "--total-limit", "10000", "--daily-limit", "100"]


def test_sponsored_lifecycle(engine: Engine, run: Run) -> None:
    result = run(*CREATE, "--expires", "2027-01-31")
    assert result.code == 0, result.err
    got = run("sponsored", "get", "--name", "Lab", "--json").json()
    assert got["models"] == ["claude-sonnet-4-5", "gpt-4o"]
    assert (got["total_credit_limit"], got["daily_credit_limit"]) == (10000, 100)
    assert got["expires_at"] == "2027-02-01T00:00:00+00:00"  # end of the given day, UTC
    assert got["spent"] == "0" and got["expired"] is False
    by_id = run("sponsored", "get", "--id", got["id"], "--json").json()
    assert by_id["name"] == "Lab"

    assert run("sponsored", "update", "--name", "Lab", "--new-name", "Lab 2", "-m", "o3",
               "--total-limit", "500", "--no-daily-limit", "--no-expiry").code == 0
    listed = run("sponsored", "list", "--json").json()
    assert len(listed) == 1
    item = listed[0]
    assert (item["name"], item["models"], item["total_credit_limit"]) == ("Lab 2", ["o3"], 500)
    assert item["daily_credit_limit"] is None and item["expires_at"] is None
    assert "Lab 2" in run("sponsored", "list").out
    assert run("sponsored", "list", "--sponsor-id", "someone-else", "--json").json() == []

    assert run("sponsored", "delete", "--id", item["id"]).code == 0
    assert run("sponsored", "list", "--json").json() == []


def test_expiry_instant_and_expired_flag(engine: Engine, run: Run) -> None:
    assert run(*CREATE, "--expires", "2020-05-01T10:30:00+02:00").code == 0
    got = run("sponsored", "get", "--name", "Lab", "--json").json()
    assert got["expires_at"] == "2020-05-01T08:30:00+00:00" and got["expired"] is True
    assert "(expired)" in run("sponsored", "list").out


@pytest.mark.parametrize(("args", "code", "message"), [
    (CREATE, 1, "already exists"),
    (["sponsored", "create", "--name", "X", "-m", "a", "--total-limit", "-1"], 1,
     "total credit limit must not be negative"),
    (["sponsored", "create", "--name", "X", "-m", "a", "-t", "5", "-d", "-3"], 1,
     "daily credit limit must not be negative"),
    (["sponsored", "create", "--name", "X", "-m", "a", "-t", "lots"], 2, "not a valid integer"),
    (["sponsored", "create", "--name", "X", "-t", "5"], 2, "Missing option '-m' / '--model'"),
    (["sponsored", "create", "--name", "X", "-m", " ", "-t", "5"], 1, "at least one model"),
    (["sponsored", "create", "--name", "a---b", "-m", "a", "-t", "5"], 1, "'---'"),
    (["sponsored", "create", "--name", "X", "-m", "a", "-t", "5", "--expires", "soon"], 2,
     "not a date"),
    (["sponsored", "get", "--name", "Nope"], 1, "does not exist"),
    (["sponsored", "get", "--id", "not-a-uuid"], 1, "not a sponsored allowance id"),
    (["sponsored", "get"], 2, "give --name or --id"),
    (["sponsored", "update", "--name", "Lab"], 2, "nothing to update"),
    (["sponsored", "update", "--name", "Lab", "-t", "-9"], 1, "must not be negative"),
    (["sponsored", "update", "--name", "Nope", "-t", "9"], 1, "does not exist"),
    (["sponsored", "update", "--name", "Lab", "-d", "5", "--no-daily-limit"], 2, "exclude"),
    (["sponsored", "delete", "--name", "Nope"], 1, "does not exist"),
])
def test_sponsored_errors_write_nothing(engine: Engine, run: Run, args: list[str], code: int,
                                        message: str) -> None:
    assert run(*CREATE).code == 0
    before = snapshot(engine)
    result = run(*args)
    assert result.code == code, result.err
    assert message in (result.error if code == 1 else result.err)
    assert snapshot(engine) == before
    got = run("sponsored", "get", "--name", "Lab", "--json").json()
    assert (got["total_credit_limit"], got["daily_credit_limit"]) == (10000, 100)


def test_rename_to_taken_name_is_refused(engine: Engine, run: Run) -> None:
    assert run(*CREATE).code == 0
    assert run("sponsored", "create", "--name", "Other", "-m", "a", "-t", "1").code == 0
    result = run("sponsored", "update", "--name", "Other", "--new-name", "Lab")
    assert result.code == 1 and "already exists" in result.error
    assert {a["name"] for a in run("sponsored", "list", "--json").json()} == {"Lab", "Other"}
