"""Request dependencies: the service state, the caller, admin-only and CSRF guards.

Browser sessions carry the token in an HttpOnly, ``SameSite=Strict`` cookie. A mutating
request authenticated by that cookie must also come from our own origin (when the
browser sends ``Origin``) and carry the CSRF token of the session (a form field
``csrf_token`` or header ``X-CSRF-Token``): an HMAC of the session token under a secret
held by this process. Requests with an ``Authorization`` header cannot be forged
cross-site, so they need no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..accountant import Accountant
from ..errors import (
    AlreadyExistsError,
    DatabaseError,
    InvalidInputError,
    NotFoundError,
    TokenTrackingError,
)
from .auth import Authenticator, AuthError, Principal

T = TypeVar("T")
COOKIE = "tt_token"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass
class ServiceState:
    accountant: Accountant
    auth: Authenticator
    templates: Jinja2Templates
    csrf_secret: bytes
    secure_cookies: bool = False

    def now(self) -> datetime:
        return self.accountant.clock()

    def run(self, work: Callable[[Session], T]) -> T:
        """One transaction (commit on success, rollback on any error)."""
        return self.accountant.run(work)

    def csrf_for(self, token: str) -> str:
        return hmac.new(self.csrf_secret, token.encode(), hashlib.sha256).hexdigest()[:40]


def state(request: Request) -> ServiceState:
    return request.app.state.tt  # type: ignore[no-any-return]


def current_principal(request: Request) -> Principal:
    """The authenticated caller, or ``AuthError`` (401)."""
    st = state(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("send the token as 'Authorization: Bearer <token>'")
        return st.auth.authenticate(token, "header", st.now())
    cookie = request.cookies.get(COOKIE)
    if cookie:
        return st.auth.authenticate(cookie, "cookie", st.now())
    raise AuthError("sign in first: send 'Authorization: Bearer <Open WebUI token or API "
                    "key>' or use the login page")


def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise AuthError("only Open WebUI admins may do this", 403)
    return principal


def check_origin(request: Request) -> None:
    """Refuse a cross-site browser request (``Origin`` of another host)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc != host:
        raise AuthError("cross-site request refused (Origin does not match this site)", 403)


async def require_admin_mutation(
        request: Request, principal: Annotated[Principal, Depends(require_admin)]) -> Principal:
    """Admin only; cookie sessions must also pass the Origin and CSRF token checks."""
    return await require_mutation(request, principal)


async def require_mutation(
        request: Request, principal: Annotated[Principal, Depends(current_principal)]
) -> Principal:
    """Any signed-in user; cookie sessions must pass the Origin and CSRF token checks."""
    if principal.via == "header":
        return principal
    check_origin(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    expected = state(request).csrf_for(request.cookies.get(COOKIE, ""))
    if not sent or not hmac.compare_digest(sent, expected):
        raise AuthError("the form is stale or was not sent from this site: reload the page "
                        "and try again", 403)
    return principal


def visible_user(principal: Principal, user_id: str | None) -> str | None:
    """The user whose data the caller may see: admins anyone (None: all), users themselves."""
    if principal.is_admin:
        return user_id
    if user_id is not None and user_id != principal.user_id:
        raise AuthError("you may only see your own usage", 403)
    return principal.user_id


Caller = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require_admin)]
AdminWrite = Annotated[Principal, Depends(require_admin_mutation)]
Write = Annotated[Principal, Depends(require_mutation)]
State = Annotated[ServiceState, Depends(state)]


def status_of(exc: TokenTrackingError) -> int:
    """The HTTP status of a domain error."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, AlreadyExistsError):
        return 409
    if isinstance(exc, InvalidInputError):
        return 422
    if isinstance(exc, DatabaseError):
        # a unique constraint the storage check missed (e.g. non-ASCII case folding)
        return 409 if isinstance(exc.__cause__, IntegrityError) else 503
    return 400
