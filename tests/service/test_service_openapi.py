"""The OpenAPI spec is valid, and a property-based run against it finds no 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy.engine import Engine
from svc_helpers import ADMIN_TOKEN, NOW, SECRET, jwt_for

from openwebui_token_tracking.service import create_app


def test_spec_is_valid_openapi(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.validate()
    paths = schema.raw_schema["paths"]
    assert "/api/v1/usage/ledger" in paths and "/api/v1/groups/{name}" in paths
    assert "/admin" not in paths  # HTML pages are not part of the API


@pytest.mark.parametrize("token", ["admin", "user"])
def test_fuzz_finds_no_server_error(seeded: Engine, db_url: str, token: str) -> None:
    app = create_app(db_url, admin_token=ADMIN_TOKEN, openwebui_secret=SECRET,
                     clock=lambda: NOW)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": "Bearer " + (ADMIN_TOKEN if token == "admin"
                                             else jwt_for("u-alice"))}
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} "
                                f"{case.body!r} -> {response.status_code} {response.text[:200]}")
            case.validate_response(response, checks=[not_a_server_error])

        run()
    assert calls > 100
    assert not failures, "\n".join(failures[:10])
