"""The ``llm`` section: providers, the prompt, the semantic cache, caps, prices and judges.

Used when ``model.task`` is ``llm``: the registered model is then an LLM version (a
provider, a model name, a prompt version and parameters) served by the OpenAI-compatible
gateway of ``shipyard serve``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shipyard.config._section import Section

__all__ = [
    "CacheSettings",
    "CapPolicySettings",
    "CapSettings",
    "JudgeSettings",
    "LlmBands",
    "LlmSettings",
    "ProviderSettings",
]


class ProviderSettings(Section):
    """One OpenAI-compatible provider: where it is, and where its key comes from."""

    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Provider name.")
    base_url: str = Field(
        ...,
        description="Base URL of its OpenAI-compatible API, e.g. https://api.openai.com/v1 "
        "(requests go to <base_url>/chat/completions and <base_url>/embeddings).",
    )
    api_key_env: str | None = Field(
        None,
        description="Environment variable holding the API key (read by shipyard serve, never "
        "logged). Leave empty for a provider without a key.",
    )
    api_key_file: str | None = Field(
        None,
        description="A file holding the key, e.g. a mounted Kubernetes secret "
        "(/var/run/secrets/…), instead of an environment variable.",
    )
    timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="How long one provider call may take (504 after)."
    )
    max_retries: int = Field(
        2, ge=0, le=10, description="Retries on 429, 5xx and timeouts before falling back."
    )
    backoff_seconds: float = Field(
        0.2, ge=0, le=60, description="First retry delay; doubles per retry, with jitter."
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Model names this provider knows under another name (ours: theirs).",
    )


class CacheSettings(Section):
    """The semantic cache: an exact-hash layer, then an embedding layer with a literal guard."""

    enabled: bool = Field(True, description="Answer repeated and paraphrased prompts from cache.")
    threshold: float = Field(
        0.72,
        gt=0,
        le=1,
        description="Cosine similarity a cached prompt must reach to answer a new one.",
    )
    ttl_seconds: float = Field(86400.0, gt=0, description="How long a cached answer may be served.")
    max_entries: int = Field(
        100_000, ge=1, description="Entries kept per worker; the oldest go first."
    )
    embedder: str = Field(
        "wordllama",
        description="wordllama (offline, weights ship in the package) or provider:<model> to "
        "embed through the provider's /v1/embeddings.",
    )
    literal_terms: list[str] = Field(
        default_factory=list,
        description="Words that must match exactly for a semantic hit, beside numbers, "
        "amounts, dates and named entities (e.g. drug names).",
    )
    bypass_header: str = Field(
        "X-Shipyard-Cache",
        description="A request with this header set to 'bypass' (or Cache-Control: no-cache) "
        "is neither answered from nor stored in the cache.",
    )


class CapPolicySettings(Section):
    """A stored cap: at most ``quota`` requests or cents per ``window_seconds`` for a tenant."""

    tenant: str = Field("*", description="Tenant it applies to; * for every tenant.")
    quota: float = Field(..., gt=0, description="Requests, or cents, allowed per window.")
    unit: Literal["request", "cents"] = Field("request", description="What the quota counts.")
    window_seconds: int = Field(3600, ge=1, description="Length of the window.")


class CapSettings(Section):
    """Per-tenant caps, enforced in process and in the control-plane database."""

    policies: list[CapPolicySettings] = Field(
        default_factory=list, description="Caps as code, checked into shipyard.yaml."
    )
    tenant_header: str = Field(
        "X-Shipyard-Tenant",
        description="Header naming the tenant when the token has no tenant grant.",
    )
    policy_header: str = Field(
        "Shipyard-RateLimit-Policy",
        description="Header taking a Helicone-style policy '<quota>;w=<seconds>;u=request|"
        "cents;s=user' that may only tighten the stored caps. "
        "Helicone-RateLimit-Policy is read too.",
    )
    default_tenant: str = Field("default", description="Tenant of a request that names none.")
    sync_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often each worker adds its in-process counts to the database.",
    )
    on_unreadable: Literal["deny", "default"] = Field(
        "default",
        description="When the database cannot be read: 'default' applies fallback_quota "
        "(reported in readiness and metrics), 'deny' refuses. Never fails open.",
    )
    fallback_quota: float = Field(
        60.0, gt=0, description="Requests per minute per tenant while caps cannot be read."
    )


class LlmBands(Section):
    """The inspect, retrain and pause bands of the three LLM signals (DESIGN defaults)."""

    judge_drop: tuple[float, float, float] = Field(
        (0.2, 0.4, 0.7), description="Fall of the mean judge score (1-5) below the gold baseline."
    )
    guardrail_rise: tuple[float, float, float] = Field(
        (0.3, 0.6, 1.0),
        description="Relative rise of the guardrail hit rate, week on week (0.3 = +30 %).",
    )
    hallucination_rise: tuple[float, float, float] = Field(
        (0.01, 0.03, 0.05),
        description="Rise of the hallucination rate over the baseline, in points (0.01 = 1 pp).",
    )
    kappa_drop: float = Field(
        0.15,
        ge=0,
        le=2,
        description="Fall in the judge's Cohen's kappa that counts as judge drift.",
    )


class JudgeSettings(Section):
    """LLM-as-judge evaluations over the gold set and a sample of production completions."""

    provider: str | None = Field(
        None, description="Provider of the judge model (default: the first provider)."
    )
    model: str = Field("judge", description="The judge model's name at that provider.")
    gold: str | None = Field(
        None,
        description="Gold prompt set: a JSONL or Parquet file of inputs, reference answers "
        "or facts, and rubric (relative to the project). Versioned by content digest.",
    )
    rubric: list[str] = Field(
        default_factory=lambda: ["correctness", "helpfulness"],
        description="Criteria the judge scores 1-5.",
    )
    schedule: str = Field(
        "0 2 * * *", description="Cron schedule of the agent's evaluation run (nightly)."
    )
    sample: int = Field(
        200, ge=0, description="Production completions sampled per run (0: gold set only)."
    )
    min_score: float = Field(
        3.5, ge=1, le=5, description="Mean judge score a candidate needs to be promoted."
    )
    bootstrap: int = Field(
        1000, ge=100, le=100_000, description="Bootstrap resamples of the kappa interval."
    )
    guardrail_terms: list[str] = Field(
        default_factory=list,
        description="Regular expressions that count as a guardrail hit in a completion.",
    )


class LlmSettings(Section):
    """How LLM versions are served, cached, capped, priced and judged."""

    providers: list[ProviderSettings] = Field(
        default_factory=list,
        description="OpenAI-compatible providers, in fallback order: a 429, 5xx or timeout "
        "from one (after its retries) goes to the next.",
    )
    prompt: str | None = Field(
        None, description="Name of the prompt in the prompt registry this model uses."
    )
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="Currency of prices.")
    prices: str | None = Field(
        None,
        description="Price table to import on start: LiteLLM's "
        "model_prices_and_context_window.json or Shipyard's own (relative to the project).",
    )
    cache: CacheSettings = Field(default_factory=CacheSettings)  # type: ignore[arg-type]
    caps: CapSettings = Field(default_factory=CapSettings)  # type: ignore[arg-type]
    judge: JudgeSettings = Field(default_factory=JudgeSettings)  # type: ignore[arg-type]
    bands: LlmBands = Field(default_factory=LlmBands)  # type: ignore[arg-type]
    traces: bool = Field(True, description="Record a trace of spans for every call.")

    @model_validator(mode="after")
    def _unique_providers(self) -> LlmSettings:
        names = [provider.name for provider in self.providers]
        if len(names) != len(set(names)):
            raise ValueError(f"two providers share a name: {names}")
        return self
