"""LLM-as-judge: score an answer against a reference, 1-5 per rubric criterion.

The judge is a chat model reached through the provider pool like any version
(:meth:`ProviderPool.complete`). Its prompt is fixed and plain, so any model can follow it
and the provider stand-in can answer it by rule::

    system:  You are a strict grader ... (the reply format)
    user:    RUBRIC: <what a good answer does>      (when the gold item says)
             REFERENCE:
             <reference answer and facts, one line>
             ANSWER:
             <the answer to grade, one line>
             CRITERIA: correctness, helpfulness

The reply is JSON ``{"scores": {criterion: 1-5}, "hallucination": bool, "reason": "..."}``
(a fenced code block around it is accepted). A reply that is not that - bad JSON, a
criterion missing or off the 1-5 scale - or a provider error is a recorded *failure* of
that item, never a crash; failures are counted and left out of the means.

Guardrail hits are not the judge's: they are the configured regular expressions
(``llm.judge.guardrail_terms``) found in the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.errors import ConfigError, ShipyardError
from shipyard.jsonable import Record
from shipyard.models.llm import ChatCall, LLMSpec

if TYPE_CHECKING:
    from shipyard.config.llm import JudgeSettings, LlmSettings

__all__ = ["SYSTEM", "Guardrails", "Judge", "Verdict", "judge_messages", "parse_verdict"]

SYSTEM = (
    "You are a strict grader. Compare the ANSWER with the REFERENCE and score it from 1 "
    "(worst) to 5 (best) on each criterion listed after CRITERIA. Set hallucination to "
    "true when the answer states a fact or number the reference does not support. Reply "
    'with JSON only: {"scores": {"<criterion>": <1-5>, ...}, "hallucination": <true|false>, '
    '"reason": "<one sentence>"}'
)
_FENCED = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.DOTALL)


@dataclass(frozen=True)
class Verdict(Record):
    """The judge's verdict on one answer; ``error`` set (and no scores) when it failed."""

    scores: dict[str, int] = field(default_factory=dict)
    hallucination: bool = False
    reason: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the judge gave a usable verdict."""
        return self.error is None

    @property
    def score(self) -> float | None:
        """The mean over the criteria (None on a failure)."""
        return sum(self.scores.values()) / len(self.scores) if self.scores else None


def _line(text: str) -> str:
    """One line: the judge prompt's fields are separated by newlines."""
    return " ".join(str(text).split())


def judge_messages(
    reference: str, answer: str, criteria: Sequence[str], guidance: str = ""
) -> list[dict[str, str]]:
    """The judge's chat messages for one answer (the REFERENCE/ANSWER/CRITERIA format)."""
    rubric = f"RUBRIC: {_line(guidance)}\n" if guidance.strip() else ""
    user = (
        f"{rubric}REFERENCE:\n{_line(reference)}\nANSWER:\n{_line(answer)}\n"
        f"CRITERIA: {', '.join(criteria)}\n"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_verdict(text: str, criteria: Sequence[str]) -> Verdict:
    """Read the judge's reply; a Verdict with ``error`` when it is not a valid verdict."""
    body = text.strip()
    fenced = _FENCED.search(body)
    if fenced:
        body = fenced.group(1)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Verdict(error=f"the judge's reply is not JSON: {_line(text)[:120]!r}")
    if not isinstance(data, dict) or not isinstance(data.get("scores"), dict):
        return Verdict(error="the judge's reply has no 'scores' object")
    scores: dict[str, int] = {}
    for criterion in criteria:
        value = data["scores"].get(criterion)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Verdict(error=f"the judge gave no score for '{criterion}'")
        if value != int(value) or not 1 <= value <= 5:
            return Verdict(error=f"the judge's score for '{criterion}' is {value}, not 1-5")
        scores[criterion] = int(value)
    hallucination = data.get("hallucination", False)
    if not isinstance(hallucination, bool):
        return Verdict(error="the judge's 'hallucination' is not true or false")
    return Verdict(scores, hallucination, str(data.get("reason") or "")[:500])


class Guardrails:
    """The configured guardrail expressions; :meth:`hits` names those an answer matches."""

    def __init__(self, terms: Sequence[str]) -> None:
        self.patterns: list[re.Pattern[str]] = []
        for number, term in enumerate(terms):
            try:
                self.patterns.append(re.compile(term, re.IGNORECASE))
            except re.error as exc:
                raise ConfigError(
                    f"llm.judge.guardrail_terms[{number}] {term!r} is not a regular "
                    f"expression: {exc}.",
                    hint="Fix the pattern (Python re syntax).",
                ) from None

    def hits(self, text: str) -> list[str]:
        """The patterns ``text`` matches (their source text)."""
        return [p.pattern for p in self.patterns if p.search(text or "")]


class Judge:
    """Scores answers through a chat call (the provider pool's ``complete``)."""

    def __init__(self, chat: ChatCall, spec: LLMSpec, criteria: Sequence[str]) -> None:
        if not criteria:
            raise ConfigError("The judge has no criteria.", hint="Set llm.judge.rubric.")
        self.chat, self.spec, self.criteria = chat, spec, tuple(criteria)

    @classmethod
    def of_settings(cls, chat: ChatCall, settings: LlmSettings) -> Judge:
        """The judge ``llm.judge`` describes, called through ``chat``."""
        return cls(chat, judge_spec(settings), settings.judge.rubric)

    @property
    def name(self) -> str:
        """``provider/model`` of the judge (stored with every run)."""
        return f"{self.spec.provider}/{self.spec.model}"

    def verdict(
        self, reference: str, answer: str, criteria: Sequence[str] = (), guidance: str = ""
    ) -> Verdict:
        """The judge's verdict on ``answer``; a failed Verdict on any provider or reply fault."""
        wanted = tuple(criteria) or self.criteria
        messages: list[dict[str, Any]] = list(judge_messages(reference, answer, wanted, guidance))
        try:
            reply = self.chat(self.spec, messages, dict(self.spec.params))
        except ShipyardError as error:  # a provider 4xx/5xx/timeout: this item failed
            return Verdict(error=f"the judge's provider failed: {error.message}")
        return parse_verdict(reply, wanted)


def judge_spec(settings: LlmSettings) -> LLMSpec:
    """The judge as an :class:`LLMSpec`: its provider (default the first), model, temperature 0."""
    judge: JudgeSettings = settings.judge
    provider = judge.provider or (settings.providers[0].name if settings.providers else None)
    if provider is None:
        raise ConfigError(
            "No provider for the judge.",
            hint="Add llm.providers (or set llm.judge.provider) in shipyard.yaml.",
        )
    if settings.providers and provider not in {p.name for p in settings.providers}:
        raise ConfigError(
            f"llm.judge.provider {provider!r} is not one of llm.providers.",
            hint="Name a provider listed under llm.providers.",
        )
    return LLMSpec(provider=provider, model=judge.model, params={"temperature": 0})
