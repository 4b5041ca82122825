"""The command line as a whole: exit codes, the database URL, errors, no password leaks."""

from __future__ import annotations

import pytest
from cli_support import Run, run_fixture  # noqa: F401 (fixture)
from sqlalchemy.engine import Engine

from openwebui_token_tracking.cli import main
from openwebui_token_tracking.storage import prices


def test_help_exits_zero(run: Run) -> None:
    result = run("--help", url=None)
    assert result.code == 0
    for group in ("init", "pricing", "credit-group", "sponsored", "usage", "balance"):
        assert group in result.out


def test_unknown_command_is_a_usage_error(run: Run) -> None:
    result = run("no-such-command")
    assert result.code == 2
    assert "No such command" in result.err


def test_database_url_from_environment(engine: Engine, db_url: str, run: Run,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert run("credit-group", "create", "env-group", "5", url=None).code == 0
    listed = run("credit-group", "list", "--json")  # through --database-url
    assert [g["name"] for g in listed.json()] == ["env-group"]


def test_per_command_database_url_as_in_0_1_10(engine: Engine, db_url: str, run: Run) -> None:
    result = run("settings", "set", "budget_period", "week", "--database-url", db_url,
                 url="sqlite:////nonexistent/dir/webui.db")
    assert result.code == 0, result.err
    assert run("settings", "get", "budget_period").out.strip() == "week"


def test_legacy_positional_database_url(engine: Engine, db_url: str, run: Run) -> None:
    assert run("credit-group", "create", "legacy", "10", "a group", db_url, url=None).code == 0
    assert run("credit-group", "list", db_url, "--json", url=None).json()[0]["name"] == "legacy"


def test_missing_sqlite_database_is_a_clear_error(run: Run, tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'nope' / 'webui.db'}"
    result = run("pricing", "list", url=url)
    assert result.code == 1
    assert "no database at" in result.error
    assert not (tmp_path / "nope").exists()


def test_unmigrated_database_asks_for_init(db_url: str, run: Run) -> None:
    if db_url.startswith("sqlite"):
        open(db_url.removeprefix("sqlite:///"), "wb").close()
    result = run("pricing", "list")
    assert result.code == 1
    assert "run `owui-token-tracking init`" in result.error


def test_password_never_printed(run: Run) -> None:
    url = "postgresql://admin:s3cr3t-pw@127.0.0.1:1/webui"
    result = run("pricing", "list", url=url)
    assert result.code == 1
    assert "s3cr3t-pw" not in result.out + result.err
    assert "***" in result.error
    assert len(result.err.strip().splitlines()) == 1


def test_bad_url_is_a_clear_error(run: Run) -> None:
    result = run("pricing", "list", url="mysql://u:hunter2@db/x")
    assert result.code == 1
    assert "unsupported database" in result.error
    assert "hunter2" not in result.err


def test_a_bug_shows_its_traceback(engine: Engine, db_url: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(prices, "list_prices", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["--database-url", db_url, "pricing", "list"])
