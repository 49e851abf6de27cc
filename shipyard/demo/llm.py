"""``shipyard demo --llm``: the LLM loop on the assistant example, offline, in about a minute.

1. A fresh copy of ``examples/assistant``; the provider is the deterministic stand-in
   (:class:`~shipyard.demo.provider.StandInProvider`, a real HTTP server on 127.0.0.1)
   and alerts go to the demo's stand-in pager.
2. Prompt v1 (the bank's facts in the system prompt) is registered and labelled
   ``production``; LLM version 1 pins it, is judged on the gold set (its judge
   scorecard) and promoted to champion.
3. ``shipyard serve assistant`` runs the OpenAI-compatible gateway; the real ``openai``
   client sends traffic for three tenants: repeated and paraphrased questions (the
   cache's exact and semantic layers), some streamed.
4. Prompt v2 (friendlier, without the facts) becomes version 2, canaried at 30 %.
5. The agent's judge run (:class:`shipyard.agent.llm_evals.LlmEvalWatch`, what its nightly
   schedule does, run now) scores the candidate on the gold set: the judge score falls
   past the pause band and hallucinations rise, so the roll-out is rolled back
   automatically, audited and paged.
6. The numbers the dashboard's LLM section shows (``shipyard ui`` → /models/assistant):
   tokens, cost per tenant, cache hits and savings, the judge runs against their bands.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from shipyard.demo.server_process import DemoServer
from shipyard.demo.workspace import _MARK
from shipyard.errors import DemoFailed
from shipyard.jsonable import Record, to_json
from shipyard.project import Principal, Project

if TYPE_CHECKING:
    from shipyard.demo.pager import PagerStandIn

__all__ = ["EXAMPLE", "LlmDemoOptions", "LlmDemoSummary", "run_llm_demo"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "assistant"
MODEL = "assistant"
PROMPT = "assistant-system"
DEMO_PRINCIPAL = Principal.service("shipyard-demo")


@dataclass(frozen=True)
class LlmDemoOptions:
    """Where and how much: the workspace folder, the calls before and during the canary."""

    folder: Path
    requests: int = 90  # calls to the champion alone
    canary_requests: int = 60  # calls while version 2 is canaried
    canary_share: float = 30.0  # per cent of calls the candidate answers
    principal: Principal = DEMO_PRINCIPAL


@dataclass
class LlmDemoSummary(Record):
    """What the demo did and measured (printed, and saved beside the workspace)."""

    workspace: str
    elapsed_seconds: float = 0.0
    champion_score: float | None = None
    candidate_score: float | None = None
    candidate_hallucination_rate: float | None = None
    judge_actions: list[str] = field(default_factory=list)
    rolled_back: bool = False
    champion_after: str | None = None
    calls: int = 0
    candidate_calls: int = 0
    failed_calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    saved: float = 0.0
    currency: str = "USD"
    cache_hits: int = 0
    cache_lookups: int = 0
    paged: str | None = None
    dashboard_url: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The loop closed: the regression rolled back, calls answered, cache used."""
        return self.rolled_back and self.failed_calls == 0 and self.cache_hits > 0


def run_llm_demo(options: LlmDemoOptions, console: Console | None = None) -> LlmDemoSummary:
    """Run the LLM loop in ``options.folder`` (which must not exist yet)."""
    from shipyard.demo.pager import PagerStandIn
    from shipyard.demo.provider import StandInProvider

    out = console or Console()
    started = time.monotonic()
    folder = options.folder.resolve()
    summary = LlmDemoSummary(workspace=str(folder))
    with StandInProvider() as provider, PagerStandIn() as pager:
        _title(out, "The LLM loop: prompt v1 in production, v2 canaried, judged, rolled back")
        _workspace(folder, provider.base_url, pager.url)
        project = Project(_config(folder), options.principal)
        try:
            _act_one(project, summary, out)
            gateway = _gateway(folder)
            try:
                gateway.start()
                _say(out, f"Gateway serving {MODEL} on {gateway.url}/v1 (OpenAI-compatible)")
                from shipyard.demo.llm_traffic import Conversations

                talk = Conversations(gateway.url)
                _say(out, f"Sending {options.requests} calls for tenants acme, globex and trial")
                talk.send(options.requests)
                _act_two(project, options, talk, summary, pager, out)
                talk.send(max(10, options.requests // 3))  # back on the champion alone
                summary.calls, summary.failed_calls = talk.sent, talk.failed
                summary.candidate_calls = talk.by_version.get("2", 0)
                if talk.errors:
                    summary.notes.append("failed calls: " + "; ".join(talk.errors[:3]))
            finally:
                gateway.stop()
            _costs(project, summary, out)
        finally:
            project.close()
    summary.elapsed_seconds = time.monotonic() - started
    ui = project.config.ui
    summary.dashboard_url = f"http://{ui.host}:{ui.port}/models/{MODEL}"
    _print_summary(summary, folder, out)
    (folder / ".shipyard" / "demo-llm-summary.json").write_text(
        to_json(summary.to_dict()) + "\n", encoding="utf-8"
    )
    return summary


# -- the workspace ----------------------------------------------------------------------


def _workspace(folder: Path, base_url: str, pager_url: str) -> None:
    """A copy of the example, pointed at the stand-in, paging the stand-in pager."""
    if not EXAMPLE.is_dir():
        raise DemoFailed(
            f"The assistant example is not at {EXAMPLE}.",
            hint="Run `shipyard demo --llm` from a source checkout of Shipyard.",
        )
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".shipyard", "README.md"))
    text = (folder / "shipyard.yaml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:8089/v1", base_url)
    text += (
        "\nserving:\n  # Traces reach the Parquet log within a second, for the judge's "
        "production sample.\n  log_roll_seconds: 1\n"
        "\nmonitoring:\n  routes:\n    # The demo's on-call pager: a local stand-in "
        "(shipyard.demo.pager).\n"
        f"    - kind: webhook\n      url: {pager_url}\n      min_level: retrain\n"
    )
    header = f"{_MARK} --llm: the assistant example on the stand-in provider\n"
    (folder / "shipyard.yaml").write_text(header + text, encoding="utf-8")


def _config(folder: Path) -> Any:
    from shipyard.config import load_config

    return load_config(folder / "shipyard.yaml", environ={})


def _prompt(project: Project, name: str) -> str:
    return (project.config.root / "prompts" / f"{name}.txt").read_text(encoding="utf-8").strip()


def _act_one(project: Project, summary: LlmDemoSummary, out: Console) -> None:
    from shipyard.governance.promotion import promote
    from shipyard.llm.evals import evaluate_llm
    from shipyard.llm.prices import import_configured_prices
    from shipyard.llm.prompts import label_prompt, register_prompt
    from shipyard.llm.registry import register_llm
    from shipyard.registry.refs import ModelRef

    prices = import_configured_prices(project)
    if prices is not None:
        _say(out, f"Price table v{prices.table_version} imported from prices.json (LiteLLM format)")
    first = register_prompt(project, PROMPT, _prompt(project, "v1"), "v1: answers from the facts")
    label_prompt(project, PROMPT, "production", first.version, "the first prompt")
    _say(out, f"Prompt {PROMPT}/{first.version} registered and labelled production")
    version = register_llm(project, provider="standin", model="stand-in-chat")
    run = evaluate_llm(project, ModelRef(MODEL, version=version.version))
    summary.champion_score = run.score
    kappa = "—" if run.kappa is None else f"{run.kappa:.2f}"
    _say(
        out,
        f"{MODEL}/{version.version} judged on the gold set: score {run.score:.2f} "
        f"(κ with people {kappa}), scorecard {'passed' if run.passed else 'FAILED'}",
    )
    promote(project, ModelRef(MODEL, version=version.version), to="champion", reason="v1 prompt")
    _say(out, f"{MODEL}/{version.version} is champion (prompt v1 in production)")


def _act_two(
    project: Project,
    options: LlmDemoOptions,
    talk: Any,
    summary: LlmDemoSummary,
    pager: PagerStandIn,
    out: Console,
) -> None:
    from shipyard.agent.llm_evals import LlmEvalWatch
    from shipyard.delivery.rollout import start_rollout
    from shipyard.llm.evals_store import latest_run
    from shipyard.llm.prompts import label_prompt, register_prompt
    from shipyard.llm.registry import register_llm
    from shipyard.registry.aliases import CHAMPION, current_alias

    _title(out, "A friendlier prompt, canaried")
    second = register_prompt(project, PROMPT, _prompt(project, "v2"), "v2: friendlier, no facts")
    label_prompt(project, PROMPT, "staging", second.version, "candidate for production")
    version = register_llm(
        project, provider="standin", model="stand-in-chat", prompt=f"{PROMPT}/{second.version}"
    ).version
    champion = current_alias(project.tracking.client, MODEL, CHAMPION)
    start_rollout(
        project.store, MODEL, version, champion=champion, strategy="canary",
        steps=(options.canary_share, 100.0), step_seconds=3600.0, min_requests=1000,
        context={"note": "prompt v2, canaried by the LLM demo"},
    )  # fmt: skip
    _say(out, f"{MODEL}/{version} (prompt v2) canaried at {options.canary_share:g} %")
    talk.wait_for_version(version)
    talk.send(options.canary_requests)
    _say(out, f"{talk.by_version.get(version, 0)} calls answered by {MODEL}/{version} so far")
    _title(out, "The agent's judge run (nightly by default; run now)")
    actions = LlmEvalWatch(project).run()
    summary.judge_actions = actions
    for line in actions:
        _say(out, line)
    candidate = latest_run(project.store, MODEL, version, "gold")
    if candidate is not None:
        summary.candidate_score = candidate.score
        summary.candidate_hallucination_rate = candidate.hallucination_rate
    summary.champion_after = current_alias(project.tracking.client, MODEL, CHAMPION)
    summary.rolled_back = any("rolled back" in line for line in actions)
    page = pager.wait_for(lambda body: str(body.get("version")) == version, timeout=10)
    if page is not None:
        from shipyard.demo.summary import page_summary

        summary.paged = page_summary(page)
        _say(out, f"pager: {summary.paged}")
    if summary.rolled_back:
        talk.wait_for_only(summary.champion_after or "1")


def _costs(project: Project, summary: LlmDemoSummary, out: Console) -> None:
    from shipyard.llm.costs import cost_total
    from shipyard.logs.root import project_log_root

    rows = cost_total(project_log_root(project.config), [MODEL])
    if not rows:
        summary.notes.append("no traced call in the trace log")
        return
    row = rows[0]
    summary.tokens = row.prompt_tokens + row.completion_tokens
    summary.cost, summary.saved, summary.currency = row.cost, row.saved, row.currency or "USD"
    summary.cache_hits, summary.cache_lookups = row.cache_hits, row.cache_lookups


# -- the gateway -------------------------------------------------------------------------


def _gateway(folder: Path) -> DemoServer:
    """``shipyard serve assistant`` as a child process (the OpenAI-compatible gateway)."""
    return DemoServer(folder, [MODEL], folder / ".shipyard" / "demo-gateway.log", "gateway")


# -- printing ----------------------------------------------------------------------------


def _print_summary(summary: LlmDemoSummary, folder: Path, out: Console) -> None:
    _title(out, "What happened")
    rate = summary.cache_hits / summary.cache_lookups if summary.cache_lookups else 0.0
    lines = [
        f"judge score: champion {_num(summary.champion_score)}, candidate (prompt v2) "
        f"{_num(summary.candidate_score)}; candidate hallucination rate "
        f"{_num(summary.candidate_hallucination_rate)}",
        "the candidate was "
        + ("[bold green]rolled back automatically[/]" if summary.rolled_back else "NOT rolled back")
        + f"; champion now {MODEL}/{summary.champion_after}",
        f"{summary.calls} calls ({summary.candidate_calls} answered by the candidate, "
        f"{summary.failed_calls} failed), {summary.tokens:,} tokens",
        f"cost {summary.cost:.4f} {summary.currency}, saved by the cache "
        f"{summary.saved:.4f} {summary.currency} ({summary.cache_hits} hits of "
        f"{summary.cache_lookups} lookups, {rate:.0%})",
        f"paged: {summary.paged or 'no page'}",
        f"took {summary.elapsed_seconds:.0f} s; workspace {folder}",
        f"see it: cd {folder} && shipyard ui, then {summary.dashboard_url}",
    ]
    for line in lines + summary.notes:
        out.print(f"  {line}")


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _title(out: Console, text: str) -> None:
    out.rule(f"[bold]{text}")


def _say(out: Console, text: str) -> None:
    out.print(f"[green]•[/] {text}")
