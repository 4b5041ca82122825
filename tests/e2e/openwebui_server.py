"""A real Open WebUI process for the end-to-end tests, and its database.

Open WebUI runs from its own venv (``ci/install_openwebui.sh``), on 127.0.0.1 with no
network (offline mode, no Ollama/OpenAI connections, no local embedding model), with a
fresh ``DATA_DIR`` and either SQLite (``DATA_DIR/webui.db``) or a fresh PostgreSQL
database that is dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_VENV = Path.home() / ".cache" / "owui-token-tracking" / "owui-venv"
STARTUP_TIMEOUT_S = float(os.environ.get("OWUI_STARTUP_TIMEOUT", "120"))
MARKER = ".owui-token-tracking-complete"


class OpenWebUIUnavailable(RuntimeError):
    """The Open WebUI venv is missing or the server did not become healthy."""


def openwebui_venv() -> Path:
    """The venv made by ci/install_openwebui.sh; a clear error when it is missing."""
    venv = Path(os.environ.get("OWUI_VENV") or DEFAULT_VENV).expanduser()
    exe = venv / "bin" / "open-webui"
    if not exe.exists() or not (venv / MARKER).exists():
        raise OpenWebUIUnavailable(
            f"no complete Open WebUI venv at {venv} (missing {exe.name} or {MARKER}); "
            "run ci/install_openwebui.sh or ci/e2e.sh, or set OWUI_VENV")
    return venv


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A fresh database on the server of ``server_url``; dropped (forcibly) afterwards."""
    url = make_url(server_url)
    name = f"owui_e2e_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url.set(drivername="postgresql+psycopg"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(drivername="postgresql", database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass
class OpenWebUI:
    """A running Open WebUI: its URL, database URL and log file."""

    base_url: str
    database_url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    startup_seconds: float

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def rss_mib(self) -> float | None:
        """Resident memory of the server process (Linux /proc), for the report."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


def _environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH")}
    env.update({
        "DATA_DIR": str(data_dir),
        "WEBUI_SECRET_KEY": secrets.token_hex(16),
        "OFFLINE_MODE": "true",
        "HF_HUB_OFFLINE": "1",
        "RAG_EMBEDDING_ENGINE": "openai",
        "ENABLE_OLLAMA_API": "false",
        "ENABLE_OPENAI_API": "false",
        "ENABLE_VERSION_UPDATE_CHECK": "false",
        "ENABLE_SIGNUP": "true",
        "GLOBAL_LOG_LEVEL": "INFO",
        "DO_NOT_TRACK": "true",
        "ANONYMIZED_TELEMETRY": "false",
    })
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise OpenWebUIUnavailable(
                f"Open WebUI exited with code {process.returncode} during startup; "
                f"log tail:\n{_tail(log_path)}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise OpenWebUIUnavailable(
        f"Open WebUI was not healthy within {STARTUP_TIMEOUT_S:.0f} s; log tail:\n"
        f"{_tail(log_path)}")


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def running_openwebui(venv: Path, workdir: Path, database_url: str | None = None,
                      ) -> Iterator[OpenWebUI]:
    """Start ``open-webui serve`` and stop it (its whole process group) afterwards.

    ``database_url`` None means SQLite at ``DATA_DIR/webui.db``, as Open WebUI defaults.
    """
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = workdir / "open-webui.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "open-webui"), "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=workdir, env=_environment(data_dir, database_url), stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_healthy(base_url, process, log_path)
        yield OpenWebUI(
            base_url=base_url,
            database_url=database_url or f"sqlite:///{data_dir / 'webui.db'}",
            data_dir=data_dir, log_path=log_path, process=process,
            startup_seconds=time.monotonic() - started)
    finally:
        _stop(process)
