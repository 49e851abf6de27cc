"""The semantic cache: exact then semantic layers, the literal guard, namespaces, scopes,
TTL, invalidation, eviction, bypass and thread safety (WordLlama embeddings, offline)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from shipyard.config.llm import CacheSettings
from shipyard.llm.cache import SemanticCache, bypassed, cache_query, cache_scope
from shipyard.llm.embedders import WordLlamaEmbedder
from shipyard.models.llm import LLMSpec

THRESHOLD = 0.72  # the measured default (benchmarks/llm_cache.py)
EMBEDDER = WordLlamaEmbedder()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class CountingEmbedder:
    """WordLlama, counting the texts it was asked to embed."""

    nested = True

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return EMBEDDER.embed(texts)


def cache_of(clock: Clock | None = None, **fields: object) -> SemanticCache:
    settings = CacheSettings.model_validate({"threshold": THRESHOLD} | fields)
    return SemanticCache(settings, EMBEDDER, clock or Clock())


def test_the_same_prompt_is_an_exact_hit_and_a_paraphrase_a_semantic_one() -> None:
    cache = cache_of()
    answer = {"choices": [{"message": {"content": "Settings > Security > Reset"}}]}
    cache.store("acme", "s1", "How do I reset my online banking password?", answer)

    exact = cache.lookup("acme", "s1", "How do I reset my online banking password?")
    assert exact is not None and (exact.layer, exact.similarity) == ("exact", 1.0)
    assert exact.answer == answer and exact.age_seconds == 0.0
    spaced = cache.lookup("acme", "s1", "  How do I reset my online  banking password? ")
    assert spaced is not None and spaced.layer == "exact"

    close = cache.lookup("acme", "s1", "How can I change my online banking password?")
    assert close is not None and close.layer == "semantic" and close.answer == answer
    assert THRESHOLD <= close.similarity < 1.0
    assert cache.lookup("acme", "s1", "What is the capital of Australia?") is None
    assert cache.lookup("acme", "s1", "x", semantic=False) is None


@pytest.mark.parametrize(
    "near_miss",
    [
        "Transfer $1000 to Alice",
        "Transfer $100 to Bob",
        "Transfer €100 to Alice",
        "Don't transfer $100 to Alice",
        "Transfer $100 to Alice tomorrow",
    ],
)
def test_the_literal_guard_refuses_what_the_threshold_would_let_through(near_miss: str) -> None:
    guarded, unguarded = cache_of(threshold=0.5), cache_of(threshold=0.5)
    unguarded._guard = False  # the baseline the benchmark measures
    for cache in (guarded, unguarded):
        cache.store("acme", "s1", "Transfer $100 to Alice", {"id": "100-alice"})
    assert guarded.lookup("acme", "s1", near_miss) is None
    assert unguarded.lookup("acme", "s1", near_miss) is not None
    paraphrase = guarded.lookup("acme", "s1", "Please send 100 dollars to Alice")
    assert paraphrase is not None and paraphrase.answer == {"id": "100-alice"}


def test_configured_terms_must_match() -> None:
    cache = cache_of(threshold=0.5, literal_terms=["Zorvex", "Plenamine"])
    cache.store("acme", "s1", "What is the dose of zorvex for adults?", {"drug": "zorvex"})
    assert cache.lookup("acme", "s1", "What is the dose of plenamine for adults?") is None
    hit = cache.lookup("acme", "s1", "Adult dose of Zorvex?")
    assert hit is not None and hit.answer == {"drug": "zorvex"}


def test_tenants_and_scopes_never_share_answers() -> None:
    cache = cache_of()
    cache.store("acme", "s1", "Cancel my subscription", {"tenant": "acme"})
    assert cache.lookup("globex", "s1", "Cancel my subscription") is None
    assert cache.lookup("acme", "s2", "Cancel my subscription") is None
    cache.store("globex", "s1", "Cancel my subscription", {"tenant": "globex"})
    hit = cache.lookup("globex", "s1", "Cancel my subscription")
    assert hit is not None and hit.answer == {"tenant": "globex"}
    assert len(cache) == 2


def test_the_scope_covers_version_prompt_context_and_params() -> None:
    spec = LLMSpec(provider="p", model="m", prompt="support", prompt_version="1",
                   template="You help {{customer}}.")  # fmt: skip
    messages = [
        {"role": "system", "content": "You help Acme."},
        {"role": "user", "content": "Where is my order?"},
    ]
    base = cache_scope("assistant", "3", spec, messages, {"temperature": 0})
    assert base == cache_scope("assistant", "3", spec, [dict(m) for m in messages],
                               {"temperature": 0})  # fmt: skip
    # The last user message is the query, not the scope.
    other_question = [messages[0], {"role": "user", "content": "Cancel my order"}]
    assert cache_scope("assistant", "3", spec, other_question, {"temperature": 0}) == base
    changed = [
        cache_scope("assistant", "4", spec, messages, {"temperature": 0}),
        cache_scope(
            "assistant",
            "3",
            LLMSpec(**{**spec.to_dict(), "prompt_version": "2"}),
            messages,
            {"temperature": 0},
        ),
        cache_scope(
            "assistant",
            "3",
            spec,
            [{"role": "system", "content": "You help Globex."}, messages[1]],
            {"temperature": 0},
        ),
        cache_scope("assistant", "3", spec, messages, {"temperature": 0.7}),
        cache_scope("support-bot", "3", spec, messages, {"temperature": 0}),
    ]
    assert len({base, *changed}) == 6


def test_the_query_is_the_last_user_text() -> None:
    assert cache_query([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                        {"role": "user", "content": "c"}]) == "c"  # fmt: skip
    assert cache_query([{"role": "system", "content": "s"}]) is None
    assert cache_query([{"role": "user", "content": [{"type": "text", "text": "x"}]}]) is None
    assert cache_query([{"role": "user", "content": "  "}]) is None


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = cache_of(clock, ttl_seconds=60)
    cache.store("acme", "s1", "How do I take a screenshot on Windows?", {"n": 1})
    clock.now += 59
    hit = cache.lookup("acme", "s1", "What's the way to screenshot on Windows?")
    assert hit is not None and hit.age_seconds == 59
    clock.now += 1
    assert cache.lookup("acme", "s1", "What's the way to screenshot on Windows?") is None
    assert cache.lookup("acme", "s1", "How do I take a screenshot on Windows?") is None
    assert len(cache) == 0


def test_invalidate_by_scope_namespace_or_all() -> None:
    cache = cache_of()
    for tenant in ("acme", "globex"):
        for scope in ("assistant/1", "assistant/2"):
            cache.store(tenant, scope, "Why is the sky blue?", {"where": f"{tenant} {scope}"})
    assert cache.invalidate(scope="assistant/1") == 2
    assert cache.lookup("acme", "assistant/1", "Why is the sky blue?") is None
    assert cache.lookup("acme", "assistant/2", "What makes the sky look blue?") is not None
    assert cache.invalidate(namespace="globex") == 1
    assert cache.invalidate() == 1
    assert len(cache) == 0 and cache.invalidate() == 0


def test_the_oldest_entries_go_first_and_the_rest_stay_findable() -> None:
    cache = cache_of(max_entries=3)
    prompts = [
        "How do I boil an egg?",
        "Why is the sky blue?",
        "How do I unclog a kitchen sink?",
        "What is an index fund?",
    ]
    for number, prompt in enumerate(prompts):
        cache.store("acme", "s1", prompt, {"n": number})
    assert len(cache) == 3
    assert cache.lookup("acme", "s1", prompts[0]) is None
    found = {
        "What makes the sky look blue?": 1,
        "how can I unclog my kitchen sink": 2,
        "Can you explain what an index fund is?": 3,
    }
    for paraphrase, number in found.items():
        hit = cache.lookup("acme", "s1", paraphrase)
        assert hit is not None and hit.answer == {"n": number}, paraphrase
    cache.store("acme", "s1", prompts[1], {"n": "new"})  # a new answer replaces the old
    assert len(cache) == 3
    assert cache.lookup("acme", "s1", "What makes the sky look blue?").answer == {"n": "new"}  # type: ignore[union-attr]


def test_a_miss_then_store_embeds_the_prompt_once() -> None:
    embedder = CountingEmbedder()
    cache = SemanticCache(CacheSettings(threshold=THRESHOLD), embedder)
    cache.store("acme", "s1", "Why is the sky blue?", {"n": 1})
    assert cache.lookup("acme", "s1", "Why is the sunset red?") is None
    cache.store("acme", "s1", "Why is the sunset red?", {"n": 2})
    assert embedder.texts == ["Why is the sky blue?", "Why is the sunset red?"]
    # A prompt whose literals match nothing stored is not even embedded.
    assert cache.lookup("acme", "s1", "Why is the sky blue in Paris?") is None
    assert len(embedder.texts) == 2


def test_a_disabled_cache_neither_answers_nor_stores() -> None:
    cache = cache_of(enabled=False)
    cache.store("acme", "s1", "Why is the sky blue?", {"n": 1})
    assert len(cache) == 0 and cache.lookup("acme", "s1", "Why is the sky blue?") is None


def test_the_configured_default_is_the_measured_threshold() -> None:
    assert CacheSettings().threshold == THRESHOLD


@pytest.mark.parametrize(
    ("headers", "skip"),
    [
        ({}, False),
        ({"X-Shipyard-Cache": "bypass"}, True),
        ({"x-shipyard-cache": "BYPASS"}, True),
        ({"X-Shipyard-Cache": "use"}, False),
        ({"Cache-Control": "no-cache"}, True),
        ({"cache-control": "max-age=0, no-store"}, True),
        ({"Cache-Control": "max-age=60"}, False),
    ],
)
def test_bypass_reads_the_configured_header_and_cache_control(
    headers: dict[str, str], skip: bool
) -> None:
    assert bypassed(headers, CacheSettings()) is skip
    custom = CacheSettings(bypass_header="X-No-Cache")
    assert bypassed({"X-No-Cache": "bypass"}, custom) is True


def test_threads_storing_and_looking_up_at_once_leave_a_consistent_cache() -> None:
    cache = cache_of(max_entries=150)
    topics = ["sky", "egg", "sink", "fund", "visa", "flu", "tax", "dog"]
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            start.wait()
            for round_ in range(40):
                text = f"tell me about the {topics[worker]} again and again {'more ' * round_}"
                cache.store(f"tenant{worker % 2}", "s1", text, {"w": worker, "r": round_})
                hit = cache.lookup(f"tenant{worker % 2}", "s1", text)
                assert hit is not None and hit.layer == "exact"
                cache.lookup(f"tenant{worker % 2}", "s1", f"about the {topics[worker]}")
                if round_ % 10 == 9:
                    cache.invalidate(namespace=f"tenant{(worker + 1) % 2}", scope="none")
        except BaseException as error:  # reported below, in the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) == 150
    kept = list(cache._entries.values())
    for entry in kept:  # every row still points at its own vector
        block = cache._buckets[entry.bucket]
        assert block.ids[entry.row] == entry.ident
    assert sum(len(block) for block in cache._buckets.values()) == 150
