"""``/v1``: the OpenAI-compatible metered endpoint (``GET /v1/models``,
``POST /v1/chat/completions``). Every error is an OpenAI-style error body."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import TokenTrackingError
from ..service.auth import AuthError
from .errors import to_response
from .requests import parse_chat
from .service import Gateway

router = APIRouter(prefix="/v1", include_in_schema=False)


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


@router.get("/models")
async def list_models(request: Request) -> Response:
    gw = gateway(request)
    try:
        return await gw.models(await gw.caller(request.headers.get("authorization")))
    except (TokenTrackingError, AuthError) as exc:
        return to_response(exc)


@router.post("/chat/completions")
async def chat_completions(request: Request) -> Response:
    gw = gateway(request)
    try:
        caller = await gw.caller(request.headers.get("authorization"))
        return await gw.chat(caller, parse_chat(await request.body()))
    except (TokenTrackingError, AuthError) as exc:
        return to_response(exc)
