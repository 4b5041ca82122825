"""The package's shape: a pure core, a curated public surface."""

import subprocess
import sys

import openwebui_token_tracking as tt


def test_accounting_core_is_pure():
    code = (
        "import sys, openwebui_token_tracking.accounting\n"
        "bad = [m for m in ('sqlalchemy', 'httpx', 'alembic', 'click', 'pydantic')"
        " if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    # Import the subpackage without running the package __init__'s heavier imports.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "", f"accounting pulled in {out.stdout.strip()}"


def test_public_surface_is_sorted_and_complete():
    assert tt.__all__ == sorted(set(tt.__all__))
    for name in tt.__all__:
        assert getattr(tt, name).__name__ == name
    namespace: dict[str, object] = {}
    exec("from openwebui_token_tracking import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(tt.__all__)


def test_errors_form_one_tree():
    for name in tt.__all__:
        obj = getattr(tt, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, tt.TokenTrackingError), name



_IMPORT_EACH = """
import os, sys
# Third-party packages first: each child below then imports only our modules.
for dep in ("sqlalchemy", "sqlalchemy.orm", "alembic", "click", "httpx", "pydantic",
            "fastapi", "starlette", "uvicorn", "jinja2", "genai_prices", "psycopg"):
    __import__(dep)
bad = []
for name in sys.argv[1:]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            __import__(name)
            message = b""
        except BaseException as exc:
            message = f"{name}: {type(exc).__name__}: {exc}".encode()
        os.write(w, message)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        message = f.read().decode()
    os.waitpid(pid, 0)
    if message:
        bad.append(message)
print("\\n".join(bad))
"""


def test_every_module_imports_on_its_own():
    """Each module can be the first of the package imported (no import cycle hidden by
    the order in which the package usually loads them), e.g. ``gateway.service`` in a
    script. Each import runs in a fresh child of an interpreter that has imported only
    third-party packages."""
    import pkgutil

    names = [m.name for m in pkgutil.walk_packages(tt.__path__, tt.__name__ + ".")
             if ".migrations." not in m.name and not m.name.endswith("__main__")]
    out = subprocess.run([sys.executable, "-c", _IMPORT_EACH, *names], capture_output=True,
                         text=True, check=True)
    assert len(names) > 50
    assert out.stdout.strip() == ""


_WITHOUT_POSTGRES = """
import sys
sys.modules["psycopg"] = None  # not installed: importing it raises ImportError
for name in sys.argv[2:]:
    __import__(name)
from openwebui_token_tracking.service import create_app
from openwebui_token_tracking.storage import migrate
from openwebui_token_tracking.storage.engine import get_engine
url = "sqlite:///" + sys.argv[1]
migrate.upgrade(get_engine(url))
create_app(url)
"""


def test_the_service_runs_on_sqlite_without_the_postgres_extra(tmp_path):
    """README's first command installs only ``[service]``: nothing on the SQLite path may
    import psycopg (PostgreSQL-only code imports it when it connects)."""
    import pkgutil

    names = [m.name for m in pkgutil.walk_packages(tt.__path__, tt.__name__ + ".")
             if ".migrations." not in m.name and not m.name.endswith("__main__")]
    out = subprocess.run([sys.executable, "-c", _WITHOUT_POSTGRES,
                          str(tmp_path / "webui.db"), *names], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
