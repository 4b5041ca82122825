"""0.1.10's settings function, over ``storage.settings_store``."""

from __future__ import annotations

from .accountant import transaction
from .storage import settings_store


def init_base_settings(database_url: str | None = None,
                       settings: list[dict[str, str]] | None = None) -> None:
    """Store default settings where missing; never overwrite an admin's value.

    With ``settings`` (0.1.10's list of ``setting_key``/``setting_value`` dicts) those
    values are validated and stored as given (an explicit request to set them).
    """
    with transaction(database_url) as s:
        for item in settings or []:
            settings_store.set_value(s, item["setting_key"], str(item["setting_value"]))
        settings_store.ensure_defaults(s)
