"""What every command shares: the database, one transaction, expected errors, options."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from ..accountant import translate_db_errors
from ..errors import ConfigurationError, DatabaseError, TokenTrackingError
from ..storage import migrate
from ..storage.engine import default_database_url, get_engine, normalize_url, redact

F = TypeVar("F", bound=Callable[..., Any])

PROG = "owui-token-tracking"


class App:
    """The database the command works on; ``ctx.obj`` of every command."""

    def __init__(self, database_url: str | None = None) -> None:
        self.database_url = database_url

    @property
    def url(self) -> str:
        return self.database_url or default_database_url()

    def engine(self) -> Engine:
        return get_engine(self.url)

    def require_database(self) -> None:
        """An SQLite file must exist: only ``init`` and ``database migrate`` create one."""
        url = normalize_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            if not Path(url.database).expanduser().exists():
                raise ConfigurationError(
                    f"no database at {redact(url)}; check --database-url or DATABASE_URL")

    def require_schema(self, engine: Engine) -> None:
        """Refuse to work on a database without our (current) tables, with what to do."""
        where = redact(self.url)
        with translate_db_errors(self.url):
            current = migrate.current_revision(engine)
        if current is None:
            raise ConfigurationError(
                f"no token tracking tables in {where}; run `{PROG} init` first")
        if current != migrate.head_revision():
            raise ConfigurationError(
                f"token tracking tables in {where} are at revision {current}, not "
                f"{migrate.head_revision()}; run `{PROG} database migrate`")

    @contextmanager
    def session(self, *, migrated: bool = True) -> Iterator[Session]:
        """One transaction: committed if the block succeeds, else rolled back entirely."""
        if migrated:
            self.require_database()
        engine = self.engine()
        if migrated:
            self.require_schema(engine)
        with translate_db_errors(self.url), Session(engine, expire_on_commit=False) as s, \
                s.begin():
            yield s


def get_app() -> App:
    return click.get_current_context().ensure_object(App)


def _scrub(message: str, url: str | None) -> str:
    """One line, and never the database password, whatever produced the message."""
    line = " ".join(message.split())
    if url:
        try:
            password = make_url(url).password
        except Exception:  # noqa: BLE001 - an unparseable URL has no password to hide
            password = None
        if password:
            line = line.replace(str(password), "***")
    return line


def handles(*expected: type[TokenTrackingError]) -> Callable[[F], F]:
    """Turn the domain errors a command expects into a one-line error and exit code 1.

    Configuration and database errors are expected by every command. Anything else is
    a bug and keeps its traceback.
    """
    caught: tuple[type[Exception], ...] = (*expected, ConfigurationError, DatabaseError)

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except caught as exc:
                ctx = click.get_current_context(silent=True)
                app = ctx.find_object(App) if ctx else None
                raise click.ClickException(
                    _scrub(str(exc), app.database_url if app else None)) from exc
        return wrapper  # type: ignore[return-value]
    return decorate


# -- options ------------------------------------------------------------------------------

def _set_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(App).database_url = value


def _url_option() -> click.Option:
    """0.1.10 put ``--database-url`` on each command: still accepted there."""
    return click.Option(["--database-url", "database_url_option"], expose_value=False,
                        hidden=True, callback=_set_url,
                        help="Database URL (overrides the global one).")


def _add_url_option(command: click.Command) -> None:
    if not any("--database-url" in getattr(p, "opts", ()) for p in command.params):
        command.params.append(_url_option())


def legacy_url_argument(func: F) -> F:
    """0.1.10's trailing positional DATABASE_URL, optional (default: --database-url)."""
    return click.argument("database_url_arg", metavar="[DATABASE_URL]", required=False,
                          expose_value=False, callback=_set_url)(func)  # type: ignore


class Command(click.Command):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_url_option(self)


class Group(click.Group):
    """A command group whose commands all accept ``--database-url``."""

    command_class = Command
    group_class = type

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_url_option(self)


NEGATIVE_ARGS = {"ignore_unknown_options": True}
"""Context settings letting a positional value be negative (``-5``), so that it reaches
validation and gets its real error instead of "no such option"."""

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON (for scripts) instead of a table.")


# -- time ---------------------------------------------------------------------------------

class Instant(click.ParamType):
    """An aware UTC instant from ``YYYY-MM-DD`` (UTC midnight) or ISO 8601.

    A date-only value given where a range *ends* means the end of that day (exclusive
    next midnight), so ``--until 2026-11-30`` includes all of 30 November. An ISO time
    without an offset is UTC.
    """

    name = "instant"

    def __init__(self, *, end_of_day: bool = False) -> None:
        self.end_of_day = end_of_day

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                start = datetime.combine(day, time(0), tzinfo=UTC)
                return start + timedelta(days=1) if self.end_of_day else start
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is not a date (YYYY-MM-DD) or ISO 8601 instant", param, ctx)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
