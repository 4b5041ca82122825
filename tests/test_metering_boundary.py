"""The metering shared by pipes and gateway knows nothing of Open WebUI or HTTP servers."""

import subprocess
import sys


def test_metering_imports_neither_open_webui_glue_nor_a_web_framework():
    code = (
        "import sys, openwebui_token_tracking.metering\n"
        "bad = [m for m in sys.modules if m.startswith(('openwebui_token_tracking.openwebui',"
        " 'openwebui_token_tracking.gateway', 'openwebui_token_tracking.service', 'fastapi',"
        " 'starlette', 'open_webui'))]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "", f"metering pulled in {out.stdout.strip()}"
