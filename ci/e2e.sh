#!/usr/bin/env bash
# End-to-end tests in a real Open WebUI 0.12.4 (tests/e2e): installs Open WebUI into its
# own venv if needed (ci/install_openwebui.sh, reused between runs), then runs the e2e
# tests with this repository's test Python.
#
#   OWUI_VENV              Open WebUI venv (default: $HOME/.cache/owui-token-tracking/owui-venv)
#   PYTHON                 Python with our package and test deps (default: python on PATH,
#                          or /work/venv/bin/python when it exists)
#   TT_TEST_POSTGRES_URL   also run on PostgreSQL (a fresh database is created and dropped)
#   TT_TEST_BACKENDS       explicit list, e.g. "sqlite" or "sqlite,postgresql"
# Extra arguments go to pytest.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OWUI_VENV="${OWUI_VENV:-$HOME/.cache/owui-token-tracking/owui-venv}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x /work/venv/bin/python ]]; then PYTHON=/work/venv/bin/python; else PYTHON=python; fi
fi

"$REPO/ci/install_openwebui.sh" >/dev/null

cd "$REPO"
exec "$PYTHON" -m pytest -m e2e tests/e2e -p no:cacheprovider "$@"
