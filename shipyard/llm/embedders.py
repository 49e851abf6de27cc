"""Embedders of the semantic cache: texts in, L2-normalised float32 rows out.

- :class:`WordLlamaEmbedder` (the default, ``llm.cache.embedder: wordllama``): WordLlama's
  256-dimension static embeddings, whose weights ship inside the ``wordllama`` wheel (MIT
  licence), loaded with downloads disabled, so the cache works offline and embeds a
  prompt in well under a millisecond on a CPU.
- :class:`ProviderEmbedder` (``provider:<model>``): the provider's ``/v1/embeddings``
  through the gateway's provider pool (its keys, retries and fallback).

An embedder is anything with ``embed(texts) -> ndarray``; :func:`embedder_of` builds
the configured one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from shipyard.errors import ConfigError
from shipyard.llm.cache_index import one_blas_thread

if TYPE_CHECKING:
    from shipyard.config.llm import CacheSettings

__all__ = ["Embedder", "EmbeddingPool", "ProviderEmbedder", "WordLlamaEmbedder", "embedder_of"]


@runtime_checkable
class Embedder(Protocol):
    """Texts to vectors: one L2-normalised float32 row per text.

    ``remote`` says whether :meth:`embed` waits on the network (the gateway then runs the
    cache's lookups and stores off its event loop).
    """

    remote: bool

    def embed(self, texts: list[str]) -> np.ndarray:
        """An array of shape ``(len(texts), dimensions)``, rows of unit length."""
        ...


class EmbeddingPool(Protocol):
    """The part of the provider pool an embedder needs (``ProviderPool.embed_sync``)."""

    def embed_sync(
        self, texts: list[str], model: str, provider: str | None = None
    ) -> list[list[float]]:
        """One embedding (a list of floats) per text."""
        ...


def normalised(vectors: Any) -> np.ndarray:
    """Rows as contiguous float32 of unit length (a zero row stays zero)."""
    rows = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if rows.ndim != 2:
        raise ValueError(f"embeddings must be a 2-d array, got shape {rows.shape}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


class WordLlamaEmbedder:
    """WordLlama's static embeddings, loaded from the weights in the installed package.

    Matryoshka-trained: the first dimensions form a coarser embedding of their own,
    which the cache's index uses to shortlist candidates (``nested = True``).
    """

    nested = True
    remote = False

    def __init__(self, dimensions: int = 256) -> None:
        self.dimensions = dimensions
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                import wordllama

                self._model = wordllama.WordLlama.load(
                    dim=self.dimensions,
                    cache_dir=Path(wordllama.__file__).parent,
                    disable_download=True,
                )
            return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """WordLlama vectors of ``texts``, normalised."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        model = self._loaded()
        with one_blas_thread():
            return normalised(model.embed(list(texts), norm=False))


class ProviderEmbedder:
    """Embeddings from the provider's ``/v1/embeddings`` (``llm.cache.embedder:
    provider:<model>``), through the provider pool with its retries and fallback."""

    nested = False
    remote = True  # a blocking HTTP call per embedding

    def __init__(self, pool: EmbeddingPool, model: str, provider: str | None = None) -> None:
        self.pool = pool
        self.model = model
        self.provider = provider

    def embed(self, texts: list[str]) -> np.ndarray:
        """The provider's vectors of ``texts``, normalised."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        rows = self.pool.embed_sync(list(texts), self.model, self.provider)
        if len(rows) != len(texts):
            raise ValueError(
                f"the embeddings model {self.model!r} returned {len(rows)} vectors "
                f"for {len(texts)} texts"
            )
        return normalised(rows)

    def __repr__(self) -> str:
        return f"ProviderEmbedder(model={self.model!r}, provider={self.provider!r})"


def embedder_of(settings: CacheSettings, pool: EmbeddingPool | None = None) -> Embedder:
    """The embedder ``settings.embedder`` names: ``wordllama`` or ``provider:<model>``."""
    name = settings.embedder.strip()
    if name == "wordllama":
        try:
            import wordllama  # noqa: F401  -- checked at start, not at the first lookup
        except ImportError:
            raise ConfigError(
                "llm.cache.embedder is 'wordllama', which is not installed.",
                hint="pip install 'shipyard-mlops[llm]', or set llm.cache.embedder to "
                "provider:<model>, or llm.cache.enabled: false.",
            ) from None
        return WordLlamaEmbedder()
    if name.startswith("provider:") and name.removeprefix("provider:").strip():
        if pool is None:
            raise ConfigError(
                f"llm.cache.embedder is {name!r} but no provider pool was given; "
                "configure llm.providers or use 'wordllama'"
            )
        return ProviderEmbedder(pool, name.removeprefix("provider:").strip())
    raise ConfigError(f"llm.cache.embedder must be 'wordllama' or 'provider:<model>', not {name!r}")
