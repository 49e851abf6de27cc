"""The semantic cache: an exact-hash layer, then an embedding layer behind a literal guard.

A cached answer is keyed by ``(namespace, scope, query)``:

- ``namespace`` is the tenant: one tenant's answers never reach another;
- ``scope`` is :func:`cache_scope`: the model and version, the :attr:`LLMSpec.digest`
  (provider, model, prompt version, template, parameters) and a hash of the context
  (every rendered message but the last user one, and the request's parameters), so a
  new model or prompt version never answers from an old one's entries;
- ``query`` is the last user message (:func:`cache_query`).

:meth:`SemanticCache.lookup` first tries the exact hash of the three (layer
``exact``). Otherwise it embeds the query and compares it, by cosine similarity, only
with prompts of the same namespace, scope *and* literals (:func:`~shipyard.llm.literals.
literals`: numbers, amounts, dates, names, negation, configured terms) — so "transfer
$100" never answers "transfer $1000" however close their vectors. The most similar one
at or above ``llm.cache.threshold`` answers (layer ``semantic``). Entries expire after
``ttl_seconds``; past ``max_entries`` the oldest go first. A request can skip the cache
(:func:`bypassed`: the bypass header or ``Cache-Control: no-cache``).

Thread-safe: one lock guards the tables; embedding happens outside it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shipyard.jsonable import Record, canonical_json
from shipyard.llm.cache_index import VectorBlock
from shipyard.llm.literals import literals

if TYPE_CHECKING:
    from shipyard.config.llm import CacheSettings
    from shipyard.llm.embedders import Embedder
    from shipyard.models.llm import LLMSpec

__all__ = ["CacheHit", "SemanticCache", "bypassed", "cache_query", "cache_scope"]

_RECENT = 1024  # vectors of recent lookups, reused by the store() that follows a miss


@dataclass(frozen=True)
class CacheHit(Record):
    """A cached answer: which layer found it, how similar its prompt was, how old it is."""

    answer: dict[str, Any]
    layer: Literal["exact", "semantic"]
    similarity: float
    age_seconds: float
    query: str = ""


@dataclass
class _Entry:
    ident: int
    key: str
    namespace: str
    scope: str
    query: str
    answer: dict[str, Any]
    created: float
    bucket: tuple[str, str, frozenset[str]]
    row: int = -1


class SemanticCache:
    """Answers a prompt from a cached one that is the same, or a guarded paraphrase."""

    def __init__(
        self,
        settings: CacheSettings,
        embedder: Embedder,
        clock: Callable[[], float] = time.time,
        *,
        literal_guard: bool = True,
    ) -> None:
        """``literal_guard=False`` drops the guard: only for measuring what it is worth."""
        self.settings = settings
        self.embedder = embedder
        self.clock = clock
        self._terms = tuple(settings.literal_terms)
        self._guard = literal_guard
        self._lock = threading.Lock()
        self._exact: dict[str, _Entry] = {}
        self._entries: OrderedDict[int, _Entry] = OrderedDict()  # oldest first
        self._buckets: dict[tuple[str, str, frozenset[str]], VectorBlock] = {}
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._next = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(
        self, namespace: str, scope: str, query: str, *, semantic: bool = True
    ) -> CacheHit | None:
        """The cached answer for ``query``, or None (``semantic=False``: exact layer only)."""
        if not self.settings.enabled:
            return None
        now, key = self.clock(), _key(namespace, scope, query)
        with self._lock:
            entry = self._exact.get(key)
            if entry is not None:
                if self._fresh(entry, now):
                    return self._hit(entry, "exact", 1.0, now)
                self._drop(entry)
        if not semantic:
            return None
        bucket = self._bucket(namespace, scope, query)
        with self._lock:
            if not self._buckets.get(bucket):
                return None  # nothing with these literals: not even worth embedding
        vector = self._vector(query)
        with self._lock:
            block = self._buckets.get(bucket)
            if block is None:
                return None
            stale = []
            found: CacheHit | None = None
            for row, similarity in block.nearest(vector, self.settings.threshold):
                entry = self._entries[block.ids[row]]
                if not self._fresh(entry, now):
                    stale.append(entry)
                    continue
                found = self._hit(entry, "semantic", similarity, now)
                break
            for entry in stale:
                self._drop(entry)
            return found

    def store(self, namespace: str, scope: str, query: str, answer: dict[str, Any]) -> None:
        """Cache ``answer`` for ``query`` (replacing an earlier answer to the same text)."""
        if not self.settings.enabled:
            return
        vector = self._vector(query)
        bucket = self._bucket(namespace, scope, query)
        key = _key(namespace, scope, query)
        nested = bool(getattr(self.embedder, "nested", False))
        with self._lock:
            if key in self._exact:
                self._drop(self._exact[key])
            entry = _Entry(self._next, key, namespace, scope, query, answer, self.clock(), bucket)
            self._next += 1
            block = self._buckets.get(bucket)
            if block is None:
                block = self._buckets[bucket] = VectorBlock(len(vector), nested=nested)
            entry.row = block.add(vector, entry.ident)
            self._exact[key] = entry
            self._entries[entry.ident] = entry
            while len(self._entries) > self.settings.max_entries:
                self._drop(next(iter(self._entries.values())))

    def invalidate(self, scope: str | None = None, namespace: str | None = None) -> int:
        """Forget the entries of ``scope`` and/or ``namespace`` (all without either)."""
        with self._lock:
            gone = [
                entry
                for entry in self._entries.values()
                if (scope is None or entry.scope == scope)
                and (namespace is None or entry.namespace == namespace)
            ]
            for entry in gone:
                self._drop(entry)
            return len(gone)

    def _bucket(self, namespace: str, scope: str, query: str) -> tuple[str, str, frozenset[str]]:
        guard = literals(query, self._terms) if self._guard else frozenset()
        return (namespace, scope, guard)

    def _fresh(self, entry: _Entry, now: float) -> bool:
        return now - entry.created < self.settings.ttl_seconds

    def _hit(self, entry: _Entry, layer: Literal["exact", "semantic"], similarity: float,
             now: float) -> CacheHit:  # fmt: skip
        return CacheHit(entry.answer, layer, similarity, max(0.0, now - entry.created), entry.query)

    def _drop(self, entry: _Entry) -> None:
        if self._entries.pop(entry.ident, None) is None:
            return
        self._exact.pop(entry.key, None)
        block = self._buckets[entry.bucket]
        moved = block.remove(entry.row)
        if moved is not None:
            self._entries[moved].row = entry.row
        if not len(block):
            del self._buckets[entry.bucket]

    def _vector(self, query: str) -> np.ndarray:
        with self._lock:
            vector = self._recent.get(query)
            if vector is not None:
                self._recent.move_to_end(query)
                return vector
        vector = self.embedder.embed([query])[0]
        with self._lock:
            self._recent[query] = vector
            while len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        return vector


def _key(namespace: str, scope: str, query: str) -> str:
    text = "\x00".join((namespace, scope, " ".join(query.split())))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_query(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The last user message's text: what the cache compares (None: not cacheable)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) and content.strip() else None
    return None


def cache_scope(
    model: str,
    version: str,
    spec: LLMSpec,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
) -> str:
    """The cache scope of a request: model/version, the spec's digest and the context.

    The context is every rendered message but the last user one, and the request's
    parameters: two requests share cached answers only when all of it is equal.
    """
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    context = [dict(m) for i, m in enumerate(messages) if i != last]
    digest = hashlib.sha256(canonical_json({"context": context, "params": dict(params or {})}))
    return f"{model}/{version}/{spec.digest}/{digest.hexdigest()[:16]}"


def bypassed(headers: Mapping[str, str], settings: CacheSettings) -> bool:
    """Whether a request asks to skip the cache: the bypass header set to ``bypass``
    (or ``no-cache``/``off``), or ``Cache-Control: no-cache``/``no-store``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    mine = lowered.get(settings.bypass_header.lower(), "").strip().lower()
    control = lowered.get("cache-control", "").lower()
    return mine in {"bypass", "no-cache", "off"} or "no-cache" in control or "no-store" in control
