"""Who is calling: Open WebUI tokens, API keys and a static admin token.

A caller presents a token as ``Authorization: Bearer <token>`` or in the HttpOnly
``tt_token`` cookie the login form sets. It is accepted when it is

- the static admin token (``admin_token``), compared in constant time;
- an Open WebUI session JWT (HS256, signed with ``WEBUI_SECRET_KEY``, claim ``id``,
  optional ``exp``) when the signing secret is configured;
- an Open WebUI API key (``sk-...``) found in Open WebUI 0.12's ``api_key`` table of
  the shared database (unexpired, API keys not turned off in its ``config`` table);
- anything Open WebUI itself accepts (a JWT or an ``sk-...`` API key): asked of
  ``GET {openwebui_url}/api/v1/auths/`` when the instance URL is configured (and, for
  keys, when the database has no ``api_key`` table).

The role is then read from Open WebUI's ``user`` table in the shared database, so a
token signed for another instance's user grants nothing here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..storage.key_budgets import key_id
from ..storage.openwebui_access import api_keys_enabled, key_owner
from ..storage.openwebui_tables import user_table

logger = logging.getLogger(__name__)

ADMIN, USER = "admin", "user"
STATIC_ADMIN_ID = "static-admin"
REMOTE_CACHE_SECONDS = 60.0


class AuthError(Exception):
    """The caller is not authenticated (401) or not allowed (403)."""

    def __init__(self, message: str, status_code: int = 401) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; ``via`` says whether the token came in a header or cookie."""

    user_id: str
    name: str
    role: str
    via: Literal["header", "cookie"]
    api_key_id: str | None = None
    """Non-secret id of the API key the caller signed in with (``key_budgets.key_id``)."""

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    def may_see(self, user_id: str) -> bool:
        return self.is_admin or user_id == self.user_id


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_openwebui_jwt(token: str, secret: str, now: datetime) -> str:
    """The user id in an Open WebUI session token, after checking signature and expiry."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("token is not an Open WebUI session token")
    try:
        header = json.loads(_b64url(parts[0]))
        payload = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise AuthError("token is malformed") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise AuthError("token is not signed with HS256 as Open WebUI signs its tokens")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(),
                        hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise AuthError("token signature is invalid (wrong WEBUI_SECRET_KEY?)")
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise AuthError("token has no user id claim")
    exp = payload.get("exp")
    if exp is not None and (not isinstance(exp, int | float) or now.timestamp() >= exp):
        raise AuthError("token has expired; sign in to Open WebUI again")
    return str(payload["id"])


def encode_openwebui_jwt(claims: dict[str, Any], secret: str) -> str:
    """An HS256 token as Open WebUI makes it (for tests and local tooling)."""
    def enc(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = enc(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{enc(sig)}"


class Authenticator:
    """Turns a presented token into a ``Principal`` or raises ``AuthError``."""

    def __init__(self, engine: Engine, *, admin_token: str | None = None,
                 openwebui_url: str | None = None, openwebui_secret: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.engine = engine
        self.admin_token = admin_token or None
        self.openwebui_url = (openwebui_url or "").rstrip("/") or None
        self.openwebui_secret = openwebui_secret or None
        self._transport = transport
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._key_table: bool | None = None
        """Whether Open WebUI's ``api_key`` table is readable (None: not tried yet)."""

    @property
    def configured(self) -> bool:
        return bool(self.admin_token or self.openwebui_url or self.openwebui_secret)

    def authenticate(self, token: str, via: Literal["header", "cookie"],
                     now: datetime) -> Principal:
        token = token.strip()
        if not token:
            raise AuthError("no token given")
        if self.admin_token and hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return Principal(STATIC_ADMIN_ID, "static admin token", ADMIN, via)
        if token.startswith("sk-"):
            user_id = self._local_key(token, now) or self._user_id(token, now)
            return replace(self._principal_for(user_id, via), api_key_id=key_id(token))
        user_id = self._user_id(token, now)
        return self._principal_for(user_id, via)

    def _local_key(self, token: str, now: datetime) -> str | None:
        """The key's owner from Open WebUI's tables; None when they cannot be read."""
        if self._key_table is False:
            return None
        try:
            with Session(self.engine) as session:
                owner = key_owner(session, token, now)
                enabled = api_keys_enabled(session) if owner is not None else True
        except SQLAlchemyError:
            logger.info("Open WebUI's api_key table is not readable here; API keys are "
                        "checked with OPENWEBUI_URL if it is set")
            self._key_table = False
            return None
        self._key_table = True
        if owner is None:
            raise AuthError("API key not accepted (not an Open WebUI API key)")
        if owner.expired:
            raise AuthError("API key has expired; create a new one in Open WebUI")
        if not enabled:
            raise AuthError("API keys are turned off in Open WebUI", 403)
        return owner.user_id

    def _user_id(self, token: str, now: datetime) -> str:
        if self.openwebui_secret and token.count(".") == 2:
            return decode_openwebui_jwt(token, self.openwebui_secret, now)
        if self.openwebui_url:
            return self._ask_openwebui(token)
        if not self.configured:
            raise AuthError("sign-in is not configured: start the service with an admin "
                            "token, WEBUI_SECRET_KEY or the Open WebUI URL")
        raise AuthError("token not accepted")

    def _ask_openwebui(self, token: str) -> str:
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            with httpx.Client(transport=self._transport, timeout=5.0) as client:
                resp = client.get(f"{self.openwebui_url}/api/v1/auths/",
                                  headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            logger.warning("Open WebUI at %s unreachable: %s", self.openwebui_url, exc)
            raise AuthError("Open WebUI could not be reached to check the token", 503) from exc
        if resp.status_code in (401, 403):
            raise AuthError("Open WebUI did not accept the token")
        try:
            user_id = resp.json()["id"] if resp.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            user_id = None
        if not isinstance(user_id, str):
            raise AuthError(f"Open WebUI answered {resp.status_code} without a user", 503)
        with self._lock:
            self._cache[key] = (time.monotonic() + REMOTE_CACHE_SECONDS, user_id)
        return user_id

    def _principal_for(self, user_id: str, via: Literal["header", "cookie"]) -> Principal:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    sa.select(user_table.c.name, user_table.c.role)
                    .where(user_table.c.id == user_id)).first()
        except SQLAlchemyError as exc:
            raise AuthError("Open WebUI's user table cannot be read in this database; "
                            "point DATABASE_URL at Open WebUI's database", 503) from exc
        if row is None:
            raise AuthError(f"user {user_id!r} is not in Open WebUI's user table of this "
                            "database (is DATABASE_URL Open WebUI's database?)")
        role = row.role if row.role in (ADMIN, USER) else None
        if role is None:
            raise AuthError(f"account {user_id!r} has role {row.role!r}; "
                            "an admin must approve it in Open WebUI", 403)
        return Principal(user_id, row.name or user_id, role, via)
