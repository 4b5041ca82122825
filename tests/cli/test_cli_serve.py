"""``owui-token-tracking serve --demo`` on a fresh machine: the README's main job."""

import os
import re
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_demo_on_embedded_sqlite(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",
                                                            "TOKEN_TRACKING_ADMIN_TOKEN")}
    env["DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "openwebui_token_tracking.cli", "serve", "--demo",
         "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        token_line = proc.stdout.readline() if proc.stdout else ""
        match = re.match(r"Demo admin token: (\S+)", token_line)
        assert match, token_line
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "service did not become healthy"
            assert proc.poll() is None, "service exited"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        summary = httpx.get(f"http://127.0.0.1:{port}/api/v1/usage/summary",
                            headers=headers).json()
        assert summary["total"]["requests"] > 0  # the demo ledger is there
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/usage/summary").status_code == 401
        assert (tmp_path / "data" / "webui.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def test_serve_keeps_what_startup_built_out_of_full_collections(tmp_path, monkeypatch):
    """A full garbage collection walks every tracked object; the service freezes the
    ones startup made (modules, price data, the app) so its passes stay short."""
    import gc

    import uvicorn

    from openwebui_token_tracking.service import server

    seen: dict[str, int] = {}
    monkeypatch.setattr(uvicorn, "run",
                        lambda app, **_: seen.update(frozen=gc.get_freeze_count()))
    gc.unfreeze()
    try:
        server.serve(database_url=f"sqlite:///{tmp_path / 'webui.db'}")
    finally:
        gc.unfreeze()
    assert seen["frozen"] > 10_000
