"""The cache's embedders: WordLlama from the installed package, offline; the provider's
``/v1/embeddings`` through the pool.

The provider embedder talks to the LLM provider stand-in (tests/support/llm_provider.py):
a real HTTP server on 127.0.0.1 whose embeddings are a pure function of the text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shipyard.config.llm import CacheSettings, LlmSettings
from shipyard.errors import ConfigError, ProviderError
from shipyard.llm.cache import SemanticCache
from shipyard.llm.embedders import (
    Embedder,
    ProviderEmbedder,
    WordLlamaEmbedder,
    embedder_of,
)
from shipyard.llm.providers import ProviderPool
from tests.support.llm_provider import embedding_of, provider_settings, stand_in


def test_wordllama_loads_from_the_package_without_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # any download would fail
    embedder = WordLlamaEmbedder()
    rows = embedder.embed(["transfer $100 to Alice", "what is the weather in Paris", ""])
    assert not np.isnan(rows).any() and not rows[2].any()  # an empty text: a zero row
    assert rows.shape == (3, 256) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows[:2], axis=1), 1.0, atol=1e-5)
    assert isinstance(embedder, Embedder)
    assert embedder.embed([]).shape == (0, 256)


def test_wordllama_puts_paraphrases_closer_than_other_topics() -> None:
    rows = WordLlamaEmbedder().embed(
        [
            "How do I cancel my subscription?",
            "How can I stop my subscription?",
            "What is the capital of Australia?",
        ]
    )
    assert rows[0] @ rows[1] > rows[0] @ rows[2] + 0.2


def test_the_provider_embedder_returns_the_providers_vectors(tmp_path: Path) -> None:
    """Against the stand-in provider: 16-dim SHA-256 vectors, one per text, in order."""
    with stand_in() as provider:
        settings = LlmSettings(providers=[provider_settings(provider)])
        pool = ProviderPool.of_settings(settings, {}, tmp_path)
        try:
            embedder = embedder_of(CacheSettings(embedder="provider:embed-small"), pool)
            assert isinstance(embedder, ProviderEmbedder)
            rows = embedder.embed(["first text", "second text"])
            assert rows.shape == (2, 16)
            assert np.allclose(rows[0], embedding_of("first text"), atol=1e-6)
            assert np.allclose(rows[1], embedding_of("second text"), atol=1e-6)
            body = provider.requests[-1]
            assert body["model"] == "embed-small" and body["input"] == ["first text", "second text"]

            cache = SemanticCache(CacheSettings(embedder="provider:embed-small"), embedder)
            cache.store("acme", "scope", "first text", {"answer": 1})
            hit = cache.lookup("acme", "scope", "first text")
            assert hit is not None and hit.answer == {"answer": 1}

            provider.fail("500", times=10)
            with pytest.raises(ProviderError):
                embedder.embed(["third text"])
        finally:
            pool.close()


def test_embedder_of_names_the_field_when_it_cannot_build_one() -> None:
    assert isinstance(embedder_of(CacheSettings()), WordLlamaEmbedder)
    with pytest.raises(ConfigError, match=r"llm\.cache\.embedder"):
        embedder_of(CacheSettings(embedder="glove"))
    with pytest.raises(ConfigError, match="no provider pool"):
        embedder_of(CacheSettings(embedder="provider:embed-small"))
    with pytest.raises(ConfigError, match=r"llm\.cache\.embedder"):
        embedder_of(CacheSettings(embedder="provider:"))


def test_a_missing_wordllama_is_a_config_error_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the llm extra the gateway refuses to start, saying what to install, instead
    of failing its first cache lookup."""
    import sys

    monkeypatch.setitem(sys.modules, "wordllama", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"shipyard-mlops\[llm\]"):
        embedder_of(CacheSettings())
