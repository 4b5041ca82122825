"""The gateway's stream chunks: a delta's chunk is the same JSON whatever the text."""

import json

from hypothesis import given
from hypothesis import strategies as st

from openwebui_token_tracking.gateway.wire import Chunks
from openwebui_token_tracking.providers.protocol import Delta


@given(text=st.text(), reasoning=st.booleans())
def test_a_delta_chunk_is_the_chunk_of_its_text(text, reasoning):
    chunks = Chunks("gpt-4o-mini", id="chatcmpl-1", created=1)
    raw = chunks.delta(Delta(text, reasoning))
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n") and raw.count(b"\n") == 2
    key = "reasoning_content" if reasoning else "content"
    assert json.loads(raw[6:]) == {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {key: text}, "finish_reason": None}]}
