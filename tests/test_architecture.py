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
