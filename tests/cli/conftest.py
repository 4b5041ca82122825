"""Run the CLI through ``main(argv)`` against the test database, capturing its output."""

from __future__ import annotations

import pytest
from cli_support import Result, Run

from openwebui_token_tracking.cli import main


@pytest.fixture
def run(db_url: str, capsys: pytest.CaptureFixture[str]) -> Run:
    """``run("pricing", "list")`` runs ``main(["--database-url", db_url, ...])``."""

    def _run(*args: str, url: str | None = db_url) -> Result:
        capsys.readouterr()
        argv = ["--database-url", url, *args] if url is not None else list(args)
        code = main(argv)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return _run
