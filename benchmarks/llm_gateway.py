"""The LLM gateway's overhead: `shipyard serve` (task llm) against calling the provider directly.

    python benchmarks/llm_gateway.py                   # 5 rounds of 200 calls per variant
    python benchmarks/llm_gateway.py --smoke           # 2 rounds of 20 (what the test runs)
    python benchmarks/llm_gateway.py --json gw.json --markdown gw.md

Four processes on 127.0.0.1, each on its own port: the deterministic provider stand-in
(``python -m shipyard.demo.provider``: answers are a pure function of the request, in
well under a millisecond), a copy of ``examples/assistant`` served by ``shipyard serve``
(prompt v1 registered, one LLM version, champion), and two named baselines: bare
pass-through proxies (Starlette on uvicorn, forwarding with one keep-alive
``httpx.AsyncClient``, the client Shipyard's provider pool uses, or one
``aiohttp.ClientSession``), what a Python gateway costs before it does anything. The
client (this process, one keep-alive ``httpx.Client``) sends one call at a time, the same
question every time:

- ``direct``: the rendered messages straight to the stand-in;
- ``proxy`` and ``proxy, aiohttp``: the same body through each pass-through proxy;
- ``gateway``: ``model: assistant`` with the template's variables, with
  ``X-Shipyard-Cache: bypass`` (every call goes to the provider: routing, rendering,
  caps, the provider pool, guardrails, tracing and cost all run);
- ``gateway, cache hit``: the same call without the bypass header (the exact layer
  answers; no provider call).

Each round runs every variant in turn (so the machine's drift falls on all alike).
Latency is the client's wall time per call; streaming time-to-first-token is the time
until the first chunk holding content. Overhead = the gateway's p50 minus the direct
p50 (targets: ≤ 1 ms for whole answers and for the first token). Prints one table of
p50 / p99 per variant and the ratios against ``direct`` and ``proxy`` (httpx); the exit status
is 0 either way: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "assistant"
QUESTION = "I lost my debit card, what should I do?"
FACTS = "Freeze the card in the app under Cards, then order a replacement."
TARGET_MS = 1.0
PROXY = """
import sys, httpx, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = sys.argv[2]
client = httpx.AsyncClient(base_url=UPSTREAM, timeout=30)

async def chat(request):
    body = await request.body()
    if b'"stream":true' in body.replace(b" ", b""):
        upstream = client.build_request("POST", "/chat/completions", content=body,
                                        headers={"content-type": "application/json"})
        answer = await client.send(upstream, stream=True)
        return StreamingResponse(answer.aiter_raw(), media_type="text/event-stream")
    answer = await client.post("/chat/completions", content=body,
                               headers={"content-type": "application/json"})
    return Response(answer.content, status_code=answer.status_code,
                    media_type="application/json")

app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

AIO_PROXY = """
import sys, aiohttp, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = sys.argv[2]
JSON = {"content-type": "application/json"}
session = None


async def chat(request):
    global session
    if session is None:
        session = aiohttp.ClientSession()
    body = await request.body()
    if b'"stream":true' in body.replace(b" ", b""):
        async def chunks():
            async with session.post(UPSTREAM + "/chat/completions", data=body, headers=JSON) as up:
                async for chunk in up.content.iter_any():
                    yield chunk
        return StreamingResponse(chunks(), media_type="text/event-stream")
    async with session.post(UPSTREAM + "/chat/completions", data=body, headers=JSON) as up:
        return Response(await up.read(), status_code=up.status, media_type="application/json")

app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
PROXIES = {"proxy": PROXY, "proxy, aiohttp": AIO_PROXY}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} stopped during start-up")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} was not ready within {timeout:g} s")


def start(command: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def project(folder: Path, base_url: str) -> None:
    """The assistant example at ``folder``, its provider the stand-in, version 1 champion."""
    from shipyard.config import load_config
    from shipyard.llm.prompts import label_prompt, register_prompt
    from shipyard.llm.registry import register_llm
    from shipyard.project import Principal, Project
    from shipyard.registry.aliases import move_alias

    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".shipyard"))
    config_file = folder / "shipyard.yaml"
    text = config_file.read_text(encoding="utf-8").replace("http://127.0.0.1:8089/v1", base_url)
    # Caps are checked and charged on every call, as in production, but never reached.
    text = text.replace("quota: 600\n", "quota: 1000000000\n")
    config_file.write_text(text, encoding="utf-8")
    admin = Project(load_config(config_file, environ={}), Principal("bench", "test"))
    try:
        template = (folder / "prompts" / "v1.txt").read_text(encoding="utf-8").strip()
        first = register_prompt(admin, "assistant-system", template, "v1")
        label_prompt(admin, "assistant-system", "production", first.version, "benchmark")
        version = register_llm(admin, provider="standin", model="stand-in-chat").version
        move_alias(
            admin.store, admin.tracking.client, "assistant", "champion", version,
            action="promote", reason="benchmark",
        )  # fmt: skip
    finally:
        admin.close()


def bodies(template: str) -> dict[str, tuple[str, dict[str, Any], dict[str, str]]]:
    """Per variant: the path under the base URL, the body, the headers."""
    system = template.replace("{{facts}}", FACTS)
    rendered = {
        "model": "stand-in-chat",
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": QUESTION},
        ],
    }
    ours = {
        "model": "assistant",
        "messages": [{"role": "user", "content": QUESTION}],
        "variables": {"facts": FACTS},
    }
    return {
        "direct": ("direct", rendered, {}),
        "proxy": ("proxy", rendered, {}),
        "proxy, aiohttp": ("proxy, aiohttp", rendered, {}),
        "gateway": ("gateway", ours, {"X-Shipyard-Cache": "bypass"}),
        "gateway, cache hit": ("gateway", ours, {}),
    }


def timed_call(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]
) -> float:
    start = time.perf_counter()
    answer = client.post(url, json=body, headers=headers)
    elapsed = time.perf_counter() - start
    if answer.status_code != 200:
        raise SystemExit(f"{url}: {answer.status_code} {answer.text[:300]}")
    return elapsed * 1000.0


def timed_first_token(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]
) -> float:
    start = time.perf_counter()
    first = None
    with client.stream("POST", url, json={**body, "stream": True}, headers=headers) as answer:
        if answer.status_code != 200:
            raise SystemExit(f"{url}: {answer.status_code} {answer.read()[:300]!r}")
        for line in answer.iter_lines():
            if first is None and '"content"' in line:
                first = time.perf_counter()
    if first is None:
        raise SystemExit(f"{url}: no content chunk in the stream")
    return (first - start) * 1000.0


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    urls: dict[str, str], variants: dict[str, Any], rounds: int, calls: int,
    run: Callable[[httpx.Client, str, dict[str, Any], dict[str, str]], float],
) -> dict[str, list[float]]:  # fmt: skip
    found: dict[str, list[float]] = {name: [] for name in variants}
    with httpx.Client(timeout=30) as client:
        for target, body, headers in variants.values():  # warm every path up
            for _ in range(10):
                run(client, urls[target], body, headers)
        for _ in range(rounds):
            for name, (target, body, headers) in variants.items():
                found[name].extend(run(client, urls[target], body, headers) for _ in range(calls))
    return found


def table(whole: dict[str, list[float]], first: dict[str, list[float]]) -> list[dict[str, Any]]:
    rows = []
    for kind, found in (("whole answer", whole), ("first token (stream)", first)):
        direct = statistics.median(found["direct"])
        proxy = statistics.median(found["proxy"])
        for name, values in found.items():
            p50 = statistics.median(values)
            rows.append(
                {
                    "measure": kind,
                    "variant": name,
                    "calls": len(values),
                    "p50_ms": round(p50, 3),
                    "p99_ms": round(quantile(values, 0.99), 3),
                    "overhead_p50_ms": round(p50 - direct, 3),
                    "vs_direct": round(p50 / direct, 2),
                    "vs_proxy": round(p50 / proxy, 2),
                }
            )
    return rows


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for kind, label in (
        ("whole answer", "p50 overhead"),
        ("first token (stream)", "TTFT overhead"),
    ):
        row = next(r for r in rows if r["measure"] == kind and r["variant"] == "gateway")
        found.append(
            {
                "target": f"gateway {label} ≤ {TARGET_MS:g} ms",
                "measured": f"{row['overhead_p50_ms']:.3f} ms",
                "met": row["overhead_p50_ms"] <= TARGET_MS,
            }
        )
    return found


def markdown(rows: list[dict[str, Any]], goals: list[dict[str, Any]], title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| measure | variant | calls | p50 ms | p99 ms | overhead p50 ms | × direct | × proxy |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['measure']} | {r['variant']} | {r['calls']} | {r['p50_ms']:.3f} | "
            f"{r['p99_ms']:.3f} | {r['overhead_p50_ms']:.3f} | {r['vs_direct']:.2f} | "
            f"{r['vs_proxy']:.2f} |"
        )
    lines += ["", "| target | measured | ok |", "|---|---|---|"]
    for goal in goals:
        lines.append(
            f"| {goal['target']} | {goal['measured']} | {'ok' if goal['met'] else 'MISS'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="calls per variant per round")
    parser.add_argument("--smoke", action="store_true", help="2 rounds of 20 calls")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    rounds, calls = (2, 20) if args.smoke else (args.rounds, args.calls)
    work = Path(tempfile.mkdtemp(prefix="llm-gateway-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        ports = {name: free_port() for name in ("direct", *PROXIES, "gateway")}
        base = f"http://127.0.0.1:{ports['direct']}/v1"
        stand_in = start(
            [sys.executable, "-m", "shipyard.demo.provider", "--port", str(ports["direct"])],
            work, work / "stand-in.log",
        )  # fmt: skip
        processes.append(stand_in)
        wait_ready(f"{base}/models", stand_in, "the stand-in")
        proxies = {}
        for n, (name, source) in enumerate(PROXIES.items()):
            (work / f"proxy{n}.py").write_text(source, encoding="utf-8")
            proxies[name] = start(
                [sys.executable, str(work / f"proxy{n}.py"), str(ports[name]), base],
                work, work / f"proxy{n}.log",
            )  # fmt: skip
            processes.append(proxies[name])
        folder = work / "assistant"
        project(folder, base)
        serve = ["serve", "assistant", "--port", str(ports["gateway"])]
        gateway = start([sys.executable, "-m", "shipyard", *serve], folder, work / "gateway.log")
        processes.append(gateway)
        wait_ready(f"http://127.0.0.1:{ports['gateway']}/v2/health/ready", gateway, "the gateway")
        urls = {"direct": f"{base}/chat/completions"}
        for name, process in proxies.items():
            urls[name] = f"http://127.0.0.1:{ports[name]}/v1/chat/completions"
            wait_ready(urls[name], process, f"the {name}")
        urls["gateway"] = f"http://127.0.0.1:{ports['gateway']}/v1/chat/completions"
        template = (folder / "prompts" / "v1.txt").read_text(encoding="utf-8").strip()
        variants = bodies(template)
        whole = measure(urls, variants, rounds, calls, timed_call)
        streamed = {k: v for k, v in variants.items() if k != "gateway, cache hit"}
        first = measure(urls, streamed, rounds, calls, timed_first_token)
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(work, ignore_errors=True)
    rows = table(whole, first)
    goals = targets(rows)
    load = os.getloadavg()[0]
    title = (
        f"LLM gateway overhead ({rounds} rounds × {calls} calls per variant, one at a time; "
        f"{os.cpu_count()} cores, load {load:.1f})"
    )
    text = markdown(rows, goals, title)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "targets": goals, "title": title}, indent=2))
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
