"""Every failure of a gateway request as an OpenAI-style error response.

=====================================  ======  ===============================
what                                   status  ``error.code``
=====================================  ======  ===============================
bad JSON, missing field, bad value     400     ``invalid_json`` / ``invalid_value``
request body over 32 MiB               413     ``request_too_large``
no / unknown / expired token           401     ``invalid_api_key``
not allowed (workspace model, role)    403     ``permission_denied``
unpriced or unserved model             404     ``model_not_found``
model outside the allowance / expired  403     ``model_not_covered`` / ``allowance_expired``
credit limit (user, key, allowance)    429     ``credit_limit_exceeded``
rate limit (requests/tokens a minute)  429     ``rate_limit_exceeded``
provider refused the request           its own (400, 404, 413, 422, 429) or 502
provider unreachable, database down    502 / 503
=====================================  ======  ===============================

Credit refusals carry ``x-should-retry: false`` (the official clients then do not retry)
and the reset instant as ``error.reset_at``. Rate-limit refusals carry ``Retry-After``
(the HTTP date of the next minute) instead, so clients wait and retry by themselves.
"""

from __future__ import annotations

import logging
from email.utils import format_datetime

from fastapi.responses import JSONResponse

from ..errors import (
    AllowanceExpiredError,
    ConfigurationError,
    DatabaseError,
    InvalidInputError,
    ModelNotCoveredError,
    NotFoundError,
    ProviderError,
    RateLimitExceededError,
    TokenLimitExceededError,
    TokenTrackingError,
    UnknownModelError,
)
from ..service.auth import AuthError
from .wire import error_body

logger = logging.getLogger(__name__)
NO_RETRY = {"x-should-retry": "false"}
PASSED_ON = (400, 404, 413, 422, 429)
"""Provider statuses the caller can act on, passed through; others become 502."""


class BadRequest(InvalidInputError):
    """The request body is not a chat completion request we can serve."""

    def __init__(self, message: str, *, param: str | None = None,
                 code: str = "invalid_value", status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.code = code
        self.status = status


def error_response(status: int, message: str, kind: str, code: str | None = None,
                   param: str | None = None, headers: dict[str, str] | None = None,
                   **extra: object) -> JSONResponse:
    return JSONResponse(error_body(message, kind, code, param, **extra), status,
                        headers=headers)


def _refusal(exc: TokenLimitExceededError) -> JSONResponse:
    if isinstance(exc, AllowanceExpiredError):
        return error_response(403, str(exc), "permission_error", "allowance_expired",
                              headers=NO_RETRY)
    extra = {"reset_at": exc.reset_at.isoformat()} if exc.reset_at else {}
    if isinstance(exc, RateLimitExceededError):
        retry = {"Retry-After": format_datetime(exc.reset_at, usegmt=True)} \
            if exc.reset_at else {}
        return error_response(429, str(exc), "rate_limit_error", "rate_limit_exceeded",
                              headers=retry, reason=exc.reason, **extra)
    return error_response(429, str(exc), "insufficient_quota", "credit_limit_exceeded",
                          headers=NO_RETRY, reason=exc.reason, **extra)


def _provider(exc: ProviderError) -> JSONResponse:
    status = exc.status_code
    if status in PASSED_ON:
        assert status is not None
        kind = "rate_limit_error" if status == 429 else "invalid_request_error"
        return error_response(status, str(exc), kind, "upstream_error")
    return error_response(502, str(exc), "api_error", "upstream_error")


def to_response(exc: Exception) -> JSONResponse:
    """The response for an error of the domain tree or of authentication."""
    if isinstance(exc, AuthError):
        if exc.status_code == 401:
            return error_response(401, str(exc), "authentication_error", "invalid_api_key",
                                  headers={"WWW-Authenticate": "Bearer"})
        kind = "permission_error" if exc.status_code == 403 else "api_error"
        return error_response(exc.status_code, str(exc), kind)
    if isinstance(exc, BadRequest):
        return error_response(exc.status, str(exc), "invalid_request_error", exc.code,
                              exc.param)
    if isinstance(exc, TokenLimitExceededError):
        return _refusal(exc)
    if isinstance(exc, UnknownModelError):
        return error_response(404, str(exc), "invalid_request_error", "model_not_found",
                              "model")
    if isinstance(exc, ModelNotCoveredError):
        return error_response(403, str(exc), "permission_error", "model_not_covered",
                              "model")
    if isinstance(exc, NotFoundError):
        return error_response(404, str(exc), "invalid_request_error", "not_found")
    if isinstance(exc, InvalidInputError):
        return error_response(400, str(exc), "invalid_request_error", "invalid_value")
    if isinstance(exc, ProviderError):
        return _provider(exc)
    if isinstance(exc, DatabaseError | ConfigurationError):
        logger.error("gateway request failed: %s", exc)
        return error_response(503, str(exc), "api_error", "service_unavailable")
    assert isinstance(exc, TokenTrackingError)
    return error_response(400, str(exc), "invalid_request_error")
