"""The assistant example with a story for the dashboard's LLM section.

:func:`assistant_story` copies ``examples/assistant``, points its provider at the stand-in
(:mod:`tests.support.llm_provider`: the suite's one stand-in, a real HTTP server), and
does what a team would: registers prompt v1 (the facts in the system prompt) and v2
(without them), labels v1 production, registers an LLM version on each, makes version 1
champion, writes the calls a gateway would have traced (two tenants, cache hits and
misses, priced), and runs the judge on the gold set for both versions (v2 regresses).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipyard.config import Config, load_config
from shipyard.llm.traces import Trace
from shipyard.llm.types import Cost, TokenUsage
from shipyard.logs.writer import PredictionLogWriter
from shipyard.project import Project
from shipyard.registry.aliases import move_alias
from tests.support import project_of
from tests.support.llm_provider import answer_of

__all__ = ["EXAMPLE", "PROMPT", "Story", "assistant_story", "write_calls"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "assistant"
PROMPT = "assistant-system"
MODEL = "assistant"


@dataclass(frozen=True)
class Story:
    """What :func:`assistant_story` did, for the tests to check the page against."""

    config: Config
    calls: int
    hits: int
    cost: float
    saved: float
    tokens: int


def assistant_story(root: Path, base_url: str) -> Story:
    """The assistant project at ``root`` with prompts, versions, traces and judge runs."""
    from shipyard.llm.evals import evaluate_llm
    from shipyard.llm.prompts import label_prompt, register_prompt
    from shipyard.llm.registry import register_llm
    from shipyard.registry.refs import ModelRef

    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".shipyard"))
    config = load_config(
        root / "shipyard.yaml",
        environ={},
        overrides={"llm.providers": [{"name": "standin", "base_url": base_url}]},
    )
    project = project_of(config)
    try:
        first = register_prompt(project, PROMPT, _text(root, "v1"), "v1: answers from the facts")
        label_prompt(project, PROMPT, "production", first.version, "first prompt")
        register_llm(project, provider="standin", model="stand-in-chat")
        second = register_prompt(project, PROMPT, _text(root, "v2"), "v2: friendlier, no facts")
        register_llm(project, provider="standin", model="stand-in-chat", prompt=f"{PROMPT}/2")
        move_alias(
            project.store, project.tracking.client, MODEL, "champion", "1",
            action="promote", reason="first version",
        )  # fmt: skip
        assert second.version == "2"
        story = write_calls(config, project)
        for version in ("1", "2"):
            evaluate_llm(project, ModelRef(MODEL, version=version))
        return story
    finally:
        project.close()


def _text(root: Path, name: str) -> str:
    return (root / "prompts" / f"{name}.txt").read_text(encoding="utf-8").strip()


def write_calls(config: Config, project: Project, *, minutes: float = 3.0) -> Story:
    """Twenty calls over the last ``minutes``, as the gateway traces them: tenants acme and
    globex, one in four answered by the cache, each miss priced. Each asks one of the gold
    set's first eight questions; the answer is the stand-in's to it with prompt v1, except
    for the semantic hits (calls 7 and 15), which the cache answered with the next
    question's answer (a wrong hit)."""
    now = datetime.now(UTC)
    gold = [json.loads(line) for line in (EXAMPLE / "gold.jsonl").read_text().splitlines()]
    template = (EXAMPLE / "prompts" / "v1.txt").read_text(encoding="utf-8").strip()
    calls = hits = tokens = 0
    cost = saved = 0.0
    with PredictionLogWriter(config.resolve(config.serving.logs), kind="traces") as writer:
        for i in range(20):
            at = now - timedelta(minutes=minutes) + timedelta(seconds=i * minutes * 3)
            tenant = "acme" if i % 3 else "globex"
            version = "2" if i % 5 == 4 else "1"
            trace = Trace(
                request_id=f"call-{i}", model=MODEL, version=version, tenant=tenant,
                prompt=f"{PROMPT}/{version}", clock=_ticks(at),
            )  # fmt: skip
            usage = TokenUsage(40 + i, 20 + i, 8 if i % 2 else 0)
            hit = i % 4 == 3
            semantic = hit and i % 8 != 3
            item, answered = gold[i % 8], gold[(i + 1) % 8 if semantic else i % 8]
            messages = [
                {
                    "role": "system",
                    "content": template.replace("{{facts}}", answered["variables"]["facts"]),
                },
                {"role": "user", "content": answered["input"]},
            ]
            with trace.span("gateway", "CHAIN") as root:
                root.set(input=item["input"], output=answer_of(messages))
                with trace.span("cache", "RETRIEVER") as lookup:
                    lookup.set(cache=("semantic" if semantic else "exact") if hit else "miss")
                    if hit:
                        lookup.saved(Cost(0.001, "USD", "computed", 1))
                if not hit:
                    with trace.span("provider.call", "LLM") as call:
                        call.set(provider="standin", provider_model="stand-in-chat")
                        call.usage(usage, Cost(0.002, "USD", "computed", 1))
            for record in trace.records():
                writer.log(record)
            calls += 1
            hits += hit
            if hit:
                saved += 0.001
            else:
                cost += 0.002
                tokens += usage.total_tokens
    return Story(config, calls, hits, cost, saved, tokens)


def _ticks(start: datetime) -> Callable[[], float]:
    """A clock from ``start`` on, a millisecond a reading (a span's start and end)."""
    moments = (start.timestamp() + k * 0.001 for k in range(1_000))
    return lambda: next(moments)
