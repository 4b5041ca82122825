#!/usr/bin/env bash
# Install a real Open WebUI 0.12.4 into its own venv, outside the repository, for the
# end-to-end tests (tests/e2e). Idempotent: a complete venv (marker file) is reused.
#
#   OWUI_VENV       venv path (default: $HOME/.cache/owui-token-tracking/owui-venv)
#   OWUI_PYTHON     interpreter to create it with (default: python3.11, else python3)
#   OWUI_VERSION    Open WebUI release (default: 0.12.4)
#
# torch is installed first, pinned to the CPU wheel: otherwise pip resolves open-webui's
# torch requirement to the CUDA build and downloads several GB of nvidia-* wheels.
# Our package goes in editable, so a Function's `from openwebui_token_tracking...` imports
# the working tree inside Open WebUI's process. Prints the venv path as its last line.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OWUI_VENV="${OWUI_VENV:-$HOME/.cache/owui-token-tracking/owui-venv}"
OWUI_VERSION="${OWUI_VERSION:-0.12.4}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
if [[ -z "${OWUI_PYTHON:-}" ]]; then
    OWUI_PYTHON="$(command -v python3.11 || command -v python3)"
fi
MARKER="$OWUI_VENV/.owui-token-tracking-complete"
WANT="open-webui==$OWUI_VERSION torch==$TORCH_VERSION repo=$REPO"

log() { echo "install_openwebui: $*" >&2; }

if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$WANT" ]] \
        && "$OWUI_VENV/bin/python" -c "import open_webui, openwebui_token_tracking" 2>/dev/null; then
    log "reusing $OWUI_VENV ($WANT)"
    echo "$OWUI_VENV"
    exit 0
fi

rm -f "$MARKER"
if [[ ! -x "$OWUI_VENV/bin/python" ]]; then
    log "creating venv $OWUI_VENV with $OWUI_PYTHON"
    mkdir -p "$(dirname "$OWUI_VENV")"
    "$OWUI_PYTHON" -m venv "$OWUI_VENV"
fi
pip_install() {
    # pip.conf here lists file:// indexes that do not all exist; drop that noise only.
    local rc=0
    "$OWUI_VENV/bin/python" -m pip --quiet --disable-pip-version-check install "$@" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2 || rc=$?
    return $rc
}

versions() {
    "$OWUI_VENV/bin/python" -c 'import importlib.metadata as m
def v(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return "-"
print(v("open-webui"), v("torch"), v("psycopg2-binary"))'
}

start=$SECONDS
if [[ "$(versions)" == "$OWUI_VERSION $TORCH_VERSION"*" "[0-9]* ]]; then
    log "open-webui $OWUI_VERSION and torch $TORCH_VERSION already installed"
else
    log "pip install torch==$TORCH_VERSION (CPU wheel)"
    pip_install "torch==$TORCH_VERSION"
    log "pip install open-webui==$OWUI_VERSION (a few minutes, ~3 GB)"
    pip_install "open-webui[postgres]==$OWUI_VERSION" "torch==$TORCH_VERSION"
fi
log "pip install -e $REPO[postgres]"
pip_install -e "$REPO[postgres]" "torch==$TORCH_VERSION"

installed="$(versions)"
log "installed open-webui/torch/psycopg2: $installed in $((SECONDS - start)) s"
if [[ "$installed" != "$OWUI_VERSION $TORCH_VERSION"* ]]; then
    log "error: expected open-webui $OWUI_VERSION with torch $TORCH_VERSION, got $installed"
    exit 1
fi
echo "$WANT" > "$MARKER"
echo "$OWUI_VENV"
