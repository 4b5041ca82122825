"""The few Open WebUI 0.12 REST calls the end-to-end tests make, as an admin or a user.

Paths and payloads as Open WebUI 0.12.4 defines them (routers/auths.py, functions.py,
models.py and main.py's ``/api/chat/completions``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class OpenWebUIError(AssertionError):
    """Open WebUI answered a setup call with an unexpected status."""


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code != 200:
        raise OpenWebUIError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


@dataclass
class Account:
    id: str
    email: str
    token: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class OpenWebUIClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=TIMEOUT)

    def close(self) -> None:
        self.http.close()

    # -- accounts ------------------------------------------------------------------------

    def signup(self, name: str, email: str, password: str) -> Account:
        """``POST /api/v1/auths/signup``: the first account becomes the admin."""
        data = _check(self.http.post("/api/v1/auths/signup", json={
            "name": name, "email": email, "password": password}), "signup")
        return Account(data["id"], data["email"], data["token"], data["role"])

    def add_user(self, admin: Account, name: str, email: str, password: str,
                 role: str = "user") -> Account:
        """``POST /api/v1/auths/add`` (admin), then sign in as the new user."""
        _check(self.http.post("/api/v1/auths/add", headers=admin.headers, json={
            "name": name, "email": email, "password": password, "role": role}), "add user")
        data = _check(self.http.post("/api/v1/auths/signin", json={
            "email": email, "password": password}), "signin")
        return Account(data["id"], data["email"], data["token"], data["role"])

    def set_timezone(self, account: Account, timezone: str) -> None:
        _check(self.http.post("/api/v1/auths/update/timezone", headers=account.headers,
                              json={"timezone": timezone}), "update timezone")

    # -- functions -----------------------------------------------------------------------

    def create_function(self, admin: Account, function_id: str, name: str,
                        content: str) -> dict[str, Any]:
        data = _check(self.http.post("/api/v1/functions/create", headers=admin.headers, json={
            "id": function_id, "name": name, "content": content,
            "meta": {"description": "openwebui-token-tracking end-to-end test"}}),
            "create function")
        assert isinstance(data, dict)
        return data

    def toggle_function(self, admin: Account, function_id: str) -> bool:
        data = _check(self.http.post(f"/api/v1/functions/id/{function_id}/toggle",
                                     headers=admin.headers), "toggle function")
        return bool(data["is_active"])

    def update_valves(self, admin: Account, function_id: str,
                      valves: dict[str, Any]) -> dict[str, Any]:
        data = _check(self.http.post(f"/api/v1/functions/id/{function_id}/valves/update",
                                     headers=admin.headers, json=valves), "update valves")
        assert isinstance(data, dict)
        return data

    # -- models --------------------------------------------------------------------------

    def model_ids(self, account: Account) -> list[str]:
        """``GET /api/models``: the models this account may chat with (refreshes the cache)."""
        data = _check(self.http.get("/api/models", headers=account.headers), "list models")
        return [m["id"] for m in data["data"]]

    def create_model(self, admin: Account, model_id: str, name: str) -> dict[str, Any]:
        """A model entry for a pipe model, readable by every user (wildcard read grant)."""
        data = _check(self.http.post("/api/v1/models/create", headers=admin.headers, json={
            "id": model_id, "base_model_id": None, "name": name,
            "meta": {"description": "tracked pipe model (e2e)"}, "params": {},
            "access_grants": [{"principal_type": "user", "principal_id": "*",
                               "permission": "read"}]}), "create model")
        assert isinstance(data, dict)
        return data

    # -- chat ----------------------------------------------------------------------------

    def chat(self, account: Account, model: str, content: str, **extra: Any
             ) -> httpx.Response:
        """A non-streamed ``POST /api/chat/completions``."""
        return self.http.post("/api/chat/completions", headers=account.headers, json={
            "model": model, "stream": False,
            "messages": [{"role": "user", "content": content}], **extra})

    def chat_stream(self, account: Account, model: str, content: str, **extra: Any
                    ) -> tuple[httpx.Response, list[Any]]:
        """A streamed ``POST /api/chat/completions``: the response and its SSE payloads
        (parsed JSON, or the string ``"[DONE]"``)."""
        events: list[Any] = []
        with self.http.stream("POST", "/api/chat/completions", headers=account.headers,
                              json={"model": model, "stream": True,
                                    "messages": [{"role": "user", "content": content}],
                                    **extra}) as response:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[len("data:"):].strip()
                events.append(payload if payload == "[DONE]" else json.loads(payload))
        return response, events


def streamed_text(events: list[Any]) -> str:
    return "".join(
        (choice.get("delta") or {}).get("content") or ""
        for event in events if isinstance(event, dict)
        for choice in event.get("choices") or [])
