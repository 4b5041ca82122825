"""Which models the gateway serves, and where a requested model goes.

A model is served when it is priced for a provider that has an upstream. A request
names it by its id (``gpt-4o``), or ``<provider>/<id>`` when several upstreams price
the same id (the first in configuration order owns the bare id). A workspace model of
Open WebUI bound to a sponsored allowance (see ``openwebui.sponsorship``: only a model
created by an admin or by the allowance's sponsor counts) is served under its own id:
its base model runs, the allowance pays. Its other settings (system prompt, ...) are
Open WebUI's chat features and are not applied here.

The catalogue is read at most every ``ttl`` seconds (prices and workspace models change
rarely; admission re-checks the price in force anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ..errors import TokenTrackingError, UnknownModelError
from ..openwebui.sponsorship import AllowanceBinding, binding_from_metadata, resolve_binding
from ..storage import openwebui_access as owui
from ..storage.ledger import check_allowance_usable
from ..storage.openwebui_access import optional_read
from ..storage.prices import list_prices
from .config import Upstream


@dataclass(frozen=True)
class Target:
    """Where one requested model goes."""

    upstream: Upstream
    model_id: str
    """The provider's model id (what is priced and sent)."""
    binding: AllowanceBinding | None = None


@dataclass(frozen=True)
class Listed:
    id: str
    name: str
    owned_by: str
    target: Target
    workspace: owui.WorkspaceModel | None = None


@dataclass(frozen=True)
class Snapshot:
    models: dict[str, Listed]
    """Every servable model by the id it is listed under (workspace models included)."""
    aliases: dict[str, Listed]
    """``<provider>/<id>`` of every priced model."""
    expires: float


def _binding(model: owui.WorkspaceModel) -> AllowanceBinding | None:
    info = {"id": model.id, "user_id": model.owner_id, "base_model_id": model.base_model_id,
            "params": model.params, "meta": model.meta}
    return binding_from_metadata({"model": {"id": model.id, "info": info}})


def _base_id(base: str, aliases: dict[str, Listed], models: dict[str, Listed]
             ) -> Listed | None:
    """A workspace model's base: as stored, or without an Open WebUI function prefix."""
    found = models.get(base) or aliases.get(base)
    if found is None and "." in base:
        rest = base.partition(".")[2]
        found = models.get(rest) or aliases.get(rest)
    return found


class Catalog:
    def __init__(self, upstreams: list[Upstream], ttl: float = 10.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.upstreams = upstreams
        self.ttl = ttl
        self.monotonic = monotonic
        self._snapshot: Snapshot | None = None

    def cached(self) -> Snapshot | None:
        snap = self._snapshot
        return snap if snap is not None and snap.expires > self.monotonic() else None

    def snapshot(self, session: Session) -> Snapshot:
        snap = self.cached()
        if snap is None:
            snap = self._read(session)
            self._snapshot = snap
        return snap

    def _read(self, session: Session) -> Snapshot:
        models: dict[str, Listed] = {}
        aliases: dict[str, Listed] = {}
        for upstream in self.upstreams:
            for row in list_prices(session, provider=upstream.provider):
                alias = f"{upstream.provider}/{row.id}"
                listed = Listed(row.id if row.id not in models else alias, row.name or row.id,
                                upstream.provider, Target(upstream, row.id))
                models[listed.id] = aliases[alias] = listed
        workspace = optional_read(session, owui.workspace_models) if self.upstreams else None
        for wm in workspace or []:
            binding = _binding(wm)
            base = _base_id(wm.base_model_id, aliases, models)
            if binding is not None and base is not None:
                models[wm.id] = Listed(wm.id, wm.name, base.owned_by,
                                       Target(base.target.upstream, base.target.model_id,
                                              binding), wm)
        return Snapshot(models, aliases, self.monotonic() + self.ttl)

    def resolve(self, snapshot: Snapshot, model: str) -> Listed:
        """The served model named ``model``, or ``UnknownModelError`` (fail closed)."""
        found = snapshot.models.get(model) or snapshot.aliases.get(model)
        if found is None:
            providers = ", ".join(u.provider for u in self.upstreams) or "none"
            raise UnknownModelError(
                f"model {model!r} is not served here: it has no price, or its provider has "
                f"no upstream (configured: {providers}); GET /v1/models lists the models "
                "you can use")
        return found

    def usable(self, session: Session, listed: Listed, user_id: str, is_admin: bool,
               now: datetime) -> bool:
        """Whether the caller may use a workspace model and its allowance can pay now."""
        wm, binding = listed.workspace, listed.target.binding
        if wm is None or binding is None:
            return True
        try:
            allowance = resolve_binding(session, binding)
            check_allowance_usable(allowance, listed.target.model_id, now)
        except TokenTrackingError:
            return False
        return is_admin or wm.owner_id == user_id or bool(
            readable(session, user_id, [wm.id]))

    def listing(self, session: Session, user_id: str, is_admin: bool,
                now: datetime) -> list[Listed]:
        snap = self.snapshot(session)
        out = [m for m in snap.models.values()
               if self.usable(session, m, user_id, is_admin, now)]
        return sorted(out, key=lambda m: (m.workspace is None, m.id))


def readable(session: Session, user_id: str, model_ids: list[str]) -> set[str]:
    """Workspace models an access grant opens to the user (none without the table)."""
    return optional_read(session, lambda s: owui.readable_models(s, user_id, model_ids)
                         ) or set()
