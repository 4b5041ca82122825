"""Which sponsored allowance a request spends, from the workspace model it names.

Open WebUI passes the chosen model's record in ``__metadata__["model"]``; for a
workspace model, ``info`` is the ``model`` table row: ``id``, ``user_id`` (its
creator), ``base_model_id``, ``params`` and ``meta``. These come from Open WebUI's
database, not from the chat request, so a user cannot forge them in the request body.

An admin binds a workspace model to an allowance by putting the allowance id (or
name) under ``token_tracking_allowance`` in the model's ``params`` (an "advanced
parameter", also accepted inside ``params.custom_params``) or ``meta``. 0.1.10's
convention, a workspace model id ``<allowance name>---<anything>``, still works.

Because users may be allowed to create workspace models themselves, a binding only
counts when the model's creator is an admin or the allowance's sponsor.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import InvalidInputError, NotFoundError
from ..storage import sponsors
from ..storage.openwebui_tables import user_table
from ..storage.schema import SponsoredAllowance

BINDING_KEY = "token_tracking_allowance"
LEGACY_SEPARATOR = "---"


@dataclass(frozen=True)
class AllowanceBinding:
    """A workspace model's claim to spend an allowance (``reference``: id or name)."""

    reference: str
    workspace_model_id: str
    owner_id: str | None
    legacy: bool = False


def _lookup(*sources: Any) -> str | None:
    for source in sources:
        if not isinstance(source, Mapping):
            continue
        for container in (source, source.get("custom_params")):
            if isinstance(container, Mapping):
                value = container.get(BINDING_KEY)
                if isinstance(value, str | uuid.UUID) and str(value).strip():
                    return str(value).strip()
    return None


def binding_from_metadata(metadata: Mapping[str, Any] | None) -> AllowanceBinding | None:
    """The binding of the workspace model in Open WebUI's ``__metadata__``, if any."""
    model = (metadata or {}).get("model") or {}
    info = model.get("info") if isinstance(model, Mapping) else None
    if not isinstance(info, Mapping) or not info.get("base_model_id"):
        return None
    model_id = str(info.get("id") or model.get("id") or "")
    owner = info.get("user_id")
    owner = str(owner) if owner else None
    reference = _lookup(info.get("params"), info.get("meta"))
    if reference:
        return AllowanceBinding(reference, model_id, owner)
    if LEGACY_SEPARATOR in model_id:
        name = model_id.split(LEGACY_SEPARATOR, 1)[0]
        if name:
            return AllowanceBinding(name, model_id, owner, legacy=True)
    return None


def _find(session: Session, reference: str) -> SponsoredAllowance | None:
    try:
        allowance_id = uuid.UUID(reference)
    except ValueError:
        return sponsors.find_allowance(session, name=reference)
    return sponsors.find_allowance(session, allowance_id=allowance_id)


def resolve_binding(session: Session, binding: AllowanceBinding) -> SponsoredAllowance:
    """The bound allowance, after checking the binding was made by someone entitled."""
    allowance = _find(session, binding.reference)
    if allowance is None:
        raise NotFoundError(
            f"workspace model {binding.workspace_model_id!r} spends sponsored allowance "
            f"{binding.reference!r}, which does not exist; ask an admin to fix the model")
    role = None
    if binding.owner_id:
        role = session.scalar(sa.select(user_table.c.role)
                              .where(user_table.c.id == binding.owner_id))
    if role != "admin" and (binding.owner_id is None
                            or binding.owner_id != allowance.sponsor_id):
        raise InvalidInputError(
            f"workspace model {binding.workspace_model_id!r} may not spend sponsored "
            f"allowance {allowance.name!r}: only a model created by an admin or by the "
            "allowance's sponsor can; ask an admin to recreate the model")
    return allowance
