"""The real pipe in a process of its own, for the SIGKILL test.

``python pipe_process.py DATABASE_URL UPSTREAM_URL MESSAGE_ID`` streams one answer as
Open WebUI would and prints each piece on a line as it arrives, then ``DONE``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from openwebui_token_tracking.pipes.openai import OpenAITrackedPipe


async def main(database_url: str, upstream_url: str, message_id: str) -> None:
    pipe = OpenAITrackedPipe()
    pipe.valves = pipe.Valves(DATABASE_URL=database_url, API_KEY="sk-fake",
                              API_BASE_URL=upstream_url)
    answer = await pipe.pipe(
        {"model": "tt_openai.fake-gpt", "stream": True,
         "messages": [{"role": "user", "content": "What is the capital of France?"}]},
        __user__={"id": "u-alice", "name": "Alice", "role": "user"},
        __chat_id__="chat", __message_id__=message_id)
    assert not isinstance(answer, str | dict)
    async for piece in answer:
        if isinstance(piece, str):
            sys.stdout.write(json.dumps(piece) + "\n")
            sys.stdout.flush()
    sys.stdout.write("DONE\n")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
