"""``/v1``: the OpenAI-compatible metered endpoint (``GET /v1/models``,
``POST /v1/chat/completions``). Every error is an OpenAI-style error body.

Plain Starlette routes (no FastAPI dependency resolution or response model on the hot
path); they are not part of the service's OpenAPI document (OpenAI's API is the spec).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import TokenTrackingError
from ..service.auth import AuthError
from .errors import to_response
from .requests import parse_chat, read_body
from .service import Gateway


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


async def list_models(request: Request) -> Response:
    gw = gateway(request)
    try:
        return await gw.models(await gw.caller(request.headers.get("authorization")))
    except (TokenTrackingError, AuthError) as exc:
        return to_response(exc)


async def chat_completions(request: Request) -> Response:
    gw = gateway(request)
    try:
        caller = await gw.caller(request.headers.get("authorization"))
        body = await read_body(request.headers.get("content-length"), request.stream())
        return await gw.chat(caller, parse_chat(body))
    except (TokenTrackingError, AuthError) as exc:
        return to_response(exc)


routes = [Route("/v1/models", list_models, methods=["GET"]),
          Route("/v1/chat/completions", chat_completions, methods=["POST"])]
