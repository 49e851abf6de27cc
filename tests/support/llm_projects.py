"""LLM projects for the gateway tests: task llm, providers at the stand-in, versions registered.

The providers are the deterministic stand-in (:mod:`tests.support.llm_provider`), the
one stand-in of the suite; everything else is real: the project's SQLite database and
MLflow registry, prompts registered with ``register_prompt``, versions with
``register_llm``, champion moves with the audited alias moves, traffic with
``write_traffic``.

    with stand_in() as provider:
        llm = LlmProject.create(tmp_path, [provider])
        first = llm.register("You are terse.")
        llm.promote(first)
        with llm.gateway() as url: ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shipyard.config import Config
from shipyard.project import Project
from tests.support.llm_provider import StandInProvider
from tests.support.projects import load
from tests.support.servers import serve_in_thread

__all__ = ["LlmProject"]

NAME = "assistant"
PROMPT = "support"


@dataclass
class LlmProject:
    """A project whose model is an LLM, its providers the given stand-ins."""

    config: Config
    config_file: Path
    _project: Project | None = None

    @classmethod
    def create(
        cls,
        root: Path,
        providers: Sequence[StandInProvider],
        settings: Mapping[str, Any] | None = None,
    ) -> LlmProject:
        """A fresh project at ``root``; providers ``primary``, ``backup`` … in that order.

        ``settings`` are merged into shipyard.yaml (top-level sections, e.g. ``{"serving":
        {"auth": "required"}}``, ``{"llm": {"cache": {"enabled": True}}}``). The cache is off
        unless asked for (its embedder loads in a second or two).
        """
        names = ["primary", "backup", "third"]
        document: dict[str, Any] = {
            "project": "assistant-test",
            "model": {"name": NAME, "task": "llm", "owner": "tests"},
            "llm": {
                "prompt": PROMPT,
                "providers": [
                    {
                        "name": names[i],
                        "base_url": provider.base_url,
                        "timeout_seconds": 5.0,
                        "max_retries": 1,
                        "backoff_seconds": 0.0,
                    }
                    for i, provider in enumerate(providers)
                ],
                "cache": {"enabled": False},
            },
            "serving": {"poll_seconds": 0.1, "log_roll_seconds": 0.5},
        }
        for section, values in (settings or {}).items():
            document[section] = _merged(document.get(section), values)
        root.mkdir(parents=True, exist_ok=True)
        config_file = root / "shipyard.yaml"
        config_file.write_text(yaml.safe_dump(document, sort_keys=False))
        return cls(load(root), config_file)

    @property
    def name(self) -> str:
        """The served model's name."""
        return self.config.model.name

    def project(self) -> Project:
        """The project, acting as a trusted in-process admin (one per test project: one
        database engine, so no two of the helper's own connections wait on each other)."""
        from tests.support import project_of

        if self._project is None:
            self._project = project_of(self.config)
        return self._project

    def register(
        self,
        template: str | list[dict[str, str]],
        *,
        params: Mapping[str, Any] | None = None,
        model: str = "small",
        provider: str = "primary",
    ) -> str:
        """A new prompt version with ``template`` and an LLM version using it; its number."""
        from shipyard.llm.prompts import register_prompt
        from shipyard.llm.registry import register_llm

        project = self.project()
        prompt = register_prompt(project, PROMPT, template, "test")
        version = register_llm(
            project,
            provider=provider,
            model=model,
            prompt=f"{PROMPT}/{prompt.version}",
            params=params,
        )
        return version.version

    def promote(self, version: str, action: str = "promote") -> None:
        """Point champion at ``version`` (the audited alias move servers follow)."""
        from shipyard.registry.aliases import move_alias

        project = self.project()
        move_alias(project.store, project.client, self.name, "champion", version, action=action)

    def rollback(self) -> str:
        """What ``shipyard rollback`` does: champion back to the previous one; its version."""
        from shipyard.registry.aliases import rollback

        move = rollback(self.project().store, None, self.name, reason="test")
        assert move.to_version is not None
        return move.to_version

    def traffic(
        self,
        challengers: Mapping[str, float] | None = None,
        shadow: str | None = None,
        shadow_share: float = 1.0,
    ) -> int:
        """Store the traffic settings (challenger weights, a shadow); the new generation."""
        from shipyard.store.traffic import TrafficSettings, write_traffic

        settings = TrafficSettings(dict(challengers or {}), shadow, shadow_share)
        return write_traffic(self.project().store, self.name, settings, reason="test")

    def serve_spec(self, ref: str | None = None, *, log: bool = True) -> Any:
        """The :class:`ServeSpec` ``shipyard serve`` would build for ``ref`` (the model name)."""
        from shipyard.serving.server import ServeSpec

        return ServeSpec.of(self.config, ref or self.name, log_predictions=log)

    @contextmanager
    def gateway(
        self, ref: str | None = None, environ: Mapping[str, str] | None = None
    ) -> Iterator[tuple[str, Any]]:
        """The gateway ``shipyard serve`` builds, under uvicorn on 127.0.0.1: (base URL, server).

        The app's shutdown (watcher, caps, trace log) runs when the block ends.
        """
        from shipyard.llm.server import build_gateway

        server = build_gateway(self.serve_spec(ref), dict(environ or os.environ))
        with serve_in_thread(server.app, lifespan=True) as url:
            yield url, server


def _merged(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, Mapping):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = _merged(base.get(key), value)
        return merged
    return extra
