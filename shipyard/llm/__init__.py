"""LLM workloads: the OpenAI-compatible gateway, providers, prompts, semantic cache, caps,
traces, cost and judges.

An LLM version lives in the same registry as a classical model (the ``shipyard_llm``
flavour, :mod:`shipyard.models.llm`) and is promoted, rolled out and rolled back the
same way; ``shipyard serve`` answers it on ``/v1/chat/completions`` and
``/v1/embeddings``.
"""

from shipyard.llm.types import Completion, Cost, TokenUsage

__all__ = ["Completion", "Cost", "TokenUsage"]
