"""0.1.10's import paths and an admin's two-line Function code keep working."""

from __future__ import annotations

import subprocess
import sys

import pytest

import openwebui_token_tracking.pipes as pipes
from openwebui_token_tracking.openwebui.pipe import TrackedPipe


@pytest.mark.parametrize(("module", "name"), [
    ("openai", "OpenAITrackedPipe"), ("anthropic", "AnthropicTrackedPipe"),
    ("google_genai", "GoogleTrackedPipe"), ("mistral", "MistralTrackedPipe"),
])
def test_two_line_function_code(module, name):
    code = f"from openwebui_token_tracking.pipes.{module} import {name}\nPipe = {name}\n"
    namespace: dict[str, object] = {}
    exec(compile(code, "<function>", "exec"), namespace)  # what Open WebUI does
    pipe = namespace["Pipe"]()
    assert isinstance(pipe, TrackedPipe) and pipe.type == "manifold"
    assert callable(pipe.pipes) and callable(pipe.pipe)


def test_compat_exports():
    assert sorted(pipes.__all__) == pipes.__all__ == [
        "AnthropicTrackedPipe", "BaseTrackedPipe", "GoogleTrackedPipe",
        "MistralTrackedPipe", "OpenAITrackedPipe"]
    from openwebui_token_tracking.pipes.base_tracked_pipe import (
        BaseTrackedPipe,
        RequestError,
        TokenLimitExceededError,
    )
    assert BaseTrackedPipe is TrackedPipe
    assert issubclass(RequestError, Exception) and issubclass(TokenLimitExceededError,
                                                              Exception)
    from openwebui_token_tracking.actions.credit_balance import CreditBalance
    from openwebui_token_tracking.filters.usage_filter import Filter
    assert callable(CreditBalance().action) and callable(Filter().outlet)


def test_providers_do_not_depend_on_the_database_layer():
    code = ("import sys, openwebui_token_tracking.providers\n"
            "assert 'sqlalchemy' not in sys.modules, 'providers imported sqlalchemy'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
