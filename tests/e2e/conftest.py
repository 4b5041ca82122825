"""End-to-end fixtures: a real Open WebUI 0.12 with a tracked pipe installed as a Function.

Selection: these tests run only when asked for by marker (``pytest -m e2e tests/e2e``,
as ``ci/e2e.sh`` does). A plain ``pytest`` run deselects them (reported as deselected,
never skipped). When they are selected and Open WebUI's venv is missing they fail with
the command that installs it.

Backends: SQLite always; PostgreSQL too when ``TT_TEST_POSTGRES_URL`` is set (or as
``TT_TEST_BACKENDS`` says), each in a fresh database dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from openwebui_token_tracking.storage.engine import dispose_engines

from .deployment import PASSWORD, PIPE_MODEL, Deployment, init_token_tracking, install_pipe
from .fake_openai import FakeOpenAI
from .openwebui_api import OpenWebUIClient
from .openwebui_server import (
    OpenWebUI,
    OpenWebUIUnavailable,
    openwebui_venv,
    postgres_database,
    running_openwebui,
)

PG_URL = os.environ.get("TT_TEST_POSTGRES_URL", "")
REPORT_KEY = pytest.StashKey[list[str]]()
SERVERS_KEY = pytest.StashKey[list[OpenWebUI]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect e2e tests unless the marker expression names them (``-m e2e``)."""
    if "e2e" in (config.getoption("markexpr") or ""):
        return
    e2e = [item for item in items if item.get_closest_marker("e2e")]
    if e2e:
        config.hook.pytest_deselected(items=e2e)
        items[:] = [item for item in items if not item.get_closest_marker("e2e")]


def _backends() -> list[str]:
    configured = os.environ.get("TT_TEST_BACKENDS")
    if configured:
        return [b.strip() for b in configured.split(",") if b.strip()]
    return ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def owui_venv() -> Path:
    problem = ""
    try:
        return openwebui_venv()
    except OpenWebUIUnavailable as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture(scope="session", params=_backends())
def deployment(request: pytest.FixtureRequest, owui_venv: Path, fake_provider: FakeOpenAI,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    backend = str(request.param)
    workdir = tmp_path_factory.mktemp(f"owui-{backend}")
    with ExitStack() as stack:
        database_url = None
        if backend == "postgresql":
            if not PG_URL:
                pytest.fail("the postgresql backend needs TT_TEST_POSTGRES_URL", pytrace=False)
            database_url = stack.enter_context(postgres_database(PG_URL))
        server = stack.enter_context(running_openwebui(owui_venv, workdir, database_url))
        servers = request.config.stash.setdefault(SERVERS_KEY, [])
        servers.append(server)
        stack.callback(servers.remove, server)
        api = OpenWebUIClient(server.base_url)
        stack.callback(api.close)
        stack.callback(dispose_engines)
        admin = api.signup("Ada Admin", "admin@e2e.test", PASSWORD)
        assert admin.role == "admin", "the first signup must become the admin"
        accountant = init_token_tracking(server.database_url)
        install_pipe(api, admin, fake_provider.base_url, server.database_url)
        assert PIPE_MODEL in api.model_ids(admin), "pipes() must list the priced model"
        api.create_model(admin, PIPE_MODEL, "Fake GPT (tracked)")
        deployment = Deployment(backend, server, api, admin, accountant, fake_provider)
        yield deployment
        rss = server.rss_mib()
        request.config.stash.setdefault(REPORT_KEY, []).append(
            f"Open WebUI on {backend}: healthy after {server.startup_seconds:.1f} s"
            + (f", RSS {rss:.0f} MiB" if rss else ""))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(REPORT_KEY, [])
    for line in lines:
        terminalreporter.write_line(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    """Attach the tail of Open WebUI's log to a failing e2e test (or its setup)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and item.get_closest_marker("e2e"):
        for server in item.config.stash.get(SERVERS_KEY, []):
            report.sections.append((f"Open WebUI log tail ({server.base_url})",
                                    server.log_tail()))
