"""The LLM demo's traffic: the real ``openai`` client asking the gateway the gold questions.

Three tenants (``acme``, ``globex``, ``trial``) ask the assistant example's questions with
their facts as template variables. Questions come back (the exact cache layer answers)
and are reworded (the semantic layer may); one call in five is streamed. Every answer's
``X-Model-Version`` and ``X-Cache`` headers are counted, so the demo knows when the
canary is live and when the rollback has reached the gateway.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from shipyard.errors import DemoFailed

__all__ = ["REWORDINGS", "TENANTS", "Conversations", "questions"]

TENANTS = ("acme", "globex", "trial")
REWORDINGS = ("{q}", "{q}", "Hello, {q}", "{q} Thanks.", "{q}")
"""How a question is asked: as written (repeats hit the exact layer), or reworded."""

_EXAMPLE_GOLD = Path(__file__).resolve().parents[2] / "examples" / "assistant" / "gold.jsonl"


def questions(path: Path = _EXAMPLE_GOLD) -> list[tuple[str, dict[str, Any]]]:
    """The gold set's (question, variables) pairs, in file order."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            pairs.append((str(item["input"]), dict(item.get("variables") or {})))
    return pairs


class Conversations:
    """Calls to the gateway at ``url`` through the ``openai`` client, counted as they go."""

    def __init__(self, url: str, *, gold: Path = _EXAMPLE_GOLD, timeout: float = 30.0) -> None:
        import openai

        self.client = openai.OpenAI(
            base_url=f"{url}/v1", api_key="demo", timeout=timeout, max_retries=0
        )
        self.pairs = questions(gold)
        self.sent = 0
        self.failed = 0
        self.errors: list[str] = []
        self.by_version: Counter[str] = Counter()
        self.by_cache: Counter[str] = Counter()
        self.last_version: str | None = None

    def send(self, count: int) -> None:
        """``count`` calls, one after the other."""
        for _ in range(count):
            self.call()

    def call(self) -> str | None:
        """One call (the next question, tenant and wording); the version that answered."""
        import openai

        n = self.sent
        question, variables = self.pairs[(n // 2) % len(self.pairs)]
        wording = REWORDINGS[n % len(REWORDINGS)].format(q=question)
        tenant = TENANTS[n % len(TENANTS)]
        request: dict[str, Any] = {
            "model": "assistant",
            "messages": [{"role": "user", "content": wording}],
            "extra_body": {"variables": variables},
            "extra_headers": {"X-Shipyard-Tenant": tenant},
        }
        self.sent += 1
        try:
            if n % 5 == 4:
                headers = self._streamed(request)
            else:
                raw = self.client.chat.completions.with_raw_response.create(**request)
                raw.parse()
                headers = raw.headers
        except openai.APIError as error:
            self.failed += 1
            self.errors.append(f"{type(error).__name__}: {error}")
            return None
        version = headers.get("x-model-version")
        self.last_version = version
        self.by_version[version or "?"] += 1
        self.by_cache[headers.get("x-cache") or "?"] += 1
        return version

    def _streamed(self, request: dict[str, Any]) -> Any:
        with self.client.chat.completions.with_streaming_response.create(
            stream=True, stream_options={"include_usage": True}, **request
        ) as response:
            for _chunk in response.parse():
                pass
            return response.headers

    def wait_for_version(self, version: str, timeout: float = 30.0) -> None:
        """Call until ``version`` answers one (the gateway serves a traffic change within
        its poll); a DemoFailed after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)  # a pace, not a wait: the gateway reloads within its poll
            if self.call() == version:
                return
        raise DemoFailed(f"assistant/{version} answered no call within {timeout:g} s.")

    def wait_for_only(self, version: str, run: int = 10, timeout: float = 30.0) -> None:
        """Call until ``run`` answers in a row come from ``version`` (after a rollback)."""
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            time.sleep(0.05)  # a pace, not a wait: the gateway reloads within its poll
            streak = streak + 1 if self.call() == version else 0
            if streak >= run:
                return
        raise DemoFailed(f"assistant/{version} did not answer alone within {timeout:g} s.")
