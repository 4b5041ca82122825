"""Overhead of the metered gateway (/v1) over calling the provider directly.

Starts, each in its own process, the fake OpenAI-compatible upstream of the tests
(``tests/gateway/fake_upstream.py``, replaying ``tests/fixtures/openai/stream_usage.sse``)
and the service with its gateway (uvicorn, on a fresh SQLite file or PostgreSQL schema);
then streams chat completions from this process, once straight to the upstream and once
through the gateway (same body, same fixture), and prints:

- TTFT: time from sending the request to the first chunk with answer text, p50/p95 of
  sequential requests, alternating direct and gateway, back to back or ``--gap-ms``
  apart (the gateway's part: caller lookup, catalogue, atomic admission, opening the
  upstream stream, re-encoding the chunks);
- throughput: streamed requests per second with ``--concurrency`` clients while the
  upstream paces its events ``--event-ms`` apart (a generating model), and the ratio
  gateway / direct: ``--rounds`` runs each way, back to back, and their median ratio.
  Every gateway request is admitted, relayed and settled in the ledger.

Usage::

    python bench/gateway_bench.py --backend sqlite --backend postgresql \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/test

Targets (issue 10): TTFT p50 overhead <= 3 ms, throughput >= 95% of direct.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from bench_support import DEFAULT_POSTGRES_URL, pct, scratch_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
sys.path.insert(0, str(ROOT / "tests"))

KEY = "sk-bench00000000000000000000000001"
BODY = {"model": "gpt-4o-mini", "stream": True, "max_tokens": 64,
        "messages": [{"role": "user", "content": "What is the capital of France?"}]}


# -- server processes ---------------------------------------------------------------------

def _run_upstream(port: int, event_ms: float) -> None:
    from fake_upstream import FakeUpstream, serving
    fake = FakeUpstream()
    fake.script.event_delay = event_ms / 1000
    with serving(fake, port):
        while True:
            time.sleep(3600)


def _run_gateway(port: int, url: str, upstream: str) -> None:
    import logging

    import uvicorn

    from openwebui_token_tracking.gateway.config import PROTOCOLS, Upstream
    from openwebui_token_tracking.providers.protocol import Connection
    from openwebui_token_tracking.service import create_app
    from openwebui_token_tracking.service.server import freeze_startup_objects
    logging.disable(logging.WARNING)
    ups = [Upstream("openai", PROTOCOLS["openai"],
                    Connection(base_url=f"{upstream}/openai/v1", api_key="upstream-key"))]
    app = create_app(url, upstreams=ups)
    freeze_startup_objects()  # as `serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def prepare(url: str) -> None:
    from datetime import UTC, datetime

    from gw_support import prepare as prepare_gateway_db

    from db_support import create_openwebui_users
    from openwebui_token_tracking.storage import migrate
    from openwebui_token_tracking.storage.engine import dispose_engines, get_engine
    from openwebui_token_tracking.storage.openwebui_access import api_key_table
    engine = get_engine(url)
    migrate.upgrade(engine)
    create_openwebui_users(engine)
    prepare_gateway_db(engine, allowance="1000000000")
    now = int(datetime.now(UTC).timestamp())
    with engine.begin() as conn:
        conn.execute(sa.insert(api_key_table).values(id="key_bench", user_id="u-bob",
                                                     key=KEY, created_at=now, updated_at=now))
    dispose_engines()


def start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args])


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


# -- measurements ---------------------------------------------------------------------------

def one(client: httpx.Client, url: str, headers: dict[str, str]) -> float:
    """Seconds to the first chunk with answer text; the stream is read to its end."""
    t0 = time.perf_counter()
    first = 0.0
    with client.stream("POST", url, json=BODY, headers=headers) as r:
        if r.status_code != 200:
            raise SystemExit(f"{url}: HTTP {r.status_code} {r.read()[:300]!r}")
        for line in r.iter_lines():
            if not first and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if (choices[0].get("delta") or {}).get("content"):
                    first = time.perf_counter() - t0
    return first


def ttft(direct: tuple[str, dict[str, str]], gateway: tuple[str, dict[str, str]], n: int,
         gap_s: float = 0.0) -> tuple[list[float], list[float]]:
    """TTFT in ms of ``n`` requests each way, alternating (direct, gateway, direct, ...)
    so that both see the same machine (load from other processes comes and goes); the
    gateway's charge of one request (written after its last byte) overlaps the next
    direct request, never the gateway's next one. ``gap_s``: idle time after each."""
    with httpx.Client(timeout=60) as d_client, httpx.Client(timeout=60) as g_client:
        for _ in range(20):  # warm-up: connections, caches
            one(d_client, *direct)
            one(g_client, *gateway)
        d, g = [], []
        for _ in range(n):
            d.append(one(d_client, *direct) * 1000)
            time.sleep(gap_s)
            g.append(one(g_client, *gateway) * 1000)
            time.sleep(gap_s)
        return d, g


def throughput(url: str, headers: dict[str, str], total: int, concurrency: int) -> float:
    counter = iter(range(total))
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                one(client, url, headers)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total / (time.perf_counter() - t0)


def bench(backend: str, url: str, args: argparse.Namespace) -> None:
    from fake_upstream import free_port
    prepare(url)
    up_port, gw_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    procs = [start(["_upstream", str(up_port), "0"])]
    try:
        procs.append(start(["_gateway", str(gw_port), url, upstream]))
        wait_ready(upstream + "/")
        wait_ready(f"http://127.0.0.1:{gw_port}/healthz")
        direct = (f"{upstream}/openai/v1/chat/completions", {"Authorization": "Bearer x"})
        gateway = (f"http://127.0.0.1:{gw_port}/v1/chat/completions",
                   {"Authorization": f"Bearer {KEY}"})
        d, g = ttft(direct, gateway, args.requests, args.gap_ms / 1000)
        print(f"{backend:<11} TTFT p50 direct {pct(d, 50):6.2f} ms  gateway {pct(g, 50):6.2f} ms  "
              f"overhead {pct(g, 50) - pct(d, 50):5.2f} ms   (p95 {pct(d, 95):.2f} / "
              f"{pct(g, 95):.2f} ms, n={args.requests}, {args.gap_ms:g} ms apart)", flush=True)
        procs[0].terminate()
        procs[0].wait()
        procs[0] = start(["_upstream", str(up_port), str(args.event_ms)])
        wait_ready(upstream + "/")
        ratios = []
        for rnd in range(1, args.rounds + 1):  # direct then gateway, back to back
            d_rps = throughput(*direct, args.total, args.concurrency)
            g_rps = throughput(*gateway, args.total, args.concurrency)
            ratios.append(100 * g_rps / d_rps)
            print(f"{backend:<11} throughput round {rnd}: direct {d_rps:6.1f} req/s  gateway "
                  f"{g_rps:6.1f} req/s = {ratios[-1]:5.1f}%", flush=True)
        print(f"{backend:<11} throughput gateway/direct median {pct(ratios, 50):5.1f}%   "
              f"({args.concurrency} clients, {args.total} streams per run, upstream events "
              f"{args.event_ms} ms apart, {args.rounds} rounds)", flush=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_upstream":
        _run_upstream(int(sys.argv[2]), float(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_gateway":
        _run_gateway(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    ap.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    ap.add_argument("--requests", type=int, default=300, help="sequential TTFT requests")
    ap.add_argument("--total", type=int, default=400, help="streams in the throughput run")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--event-ms", type=float, default=10.0)
    ap.add_argument("--gap-ms", type=float, default=0.0,
                    help="idle time between TTFT requests (a VM's wake-ups from idle add "
                         "to every thread hop)")
    ap.add_argument("--rounds", type=int, default=3, help="throughput runs each way")
    args = ap.parse_args()
    for backend in args.backend or ["sqlite"]:
        with scratch_database(backend, args.postgres_url) as url:
            bench(backend, url, args)


if __name__ == "__main__":
    main()
