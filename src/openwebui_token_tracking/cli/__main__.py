"""``python -m openwebui_token_tracking.cli``."""

from . import run

run()
