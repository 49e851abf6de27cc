"""Hot swap: follow the champion alias without a restart.

A :class:`GenerationWatcher` thread polls the model's serving generation in the control
plane (bumped on every alias move: promote, rollback). When it changes, the watcher
loads the version the champion alias now points at, off the request path, then swaps
:attr:`ModelSlot.current` in one assignment. A request reads ``slot.current`` once when
it starts, so in-flight requests finish on the model they began with. A version that
fails to load is not swapped in; an unreachable database leaves the loaded model
serving. Both conditions show in :attr:`ModelSlot.status` (the readiness details).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.serving.loader import ServedModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from shipyard.store import Store

__all__ = ["GenerationWatcher", "ModelSlot"]

Loader = Callable[["MlflowClient", str, str], ServedModel]


class ModelSlot:
    """The model a server answers with right now."""

    def __init__(self, served: ServedModel) -> None:
        self.current = served
        self.status: dict[str, Any] = {}


class GenerationWatcher:
    """Polls the control plane and swaps the slot's model when the champion moves."""

    def __init__(
        self,
        slot: ModelSlot,
        *,
        store: Store,
        client: MlflowClient,
        interval: float = 0.5,
        loader: Loader | None = None,
    ) -> None:
        from shipyard.serving.loader import load_served_model

        self.slot = slot
        self.store = store
        self.client = client
        self.interval = interval
        self.loader = loader or load_served_model
        self.name = slot.current.name
        self.swaps = 0
        # The previous champion stays loaded, so a rollback swaps without loading.
        self._standby: ServedModel | None = None
        self._seen: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipyard-hot-swap", daemon=True)

    def start(self) -> None:
        """Start polling in a background thread."""
        self._seen = self._generation()
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (returns once the thread has ended)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _generation(self) -> int | None:
        try:
            found = self.store.generation(self.name)
        except Exception as exc:  # any database failure: keep serving
            self.slot.status["database"] = f"unreachable: {str(exc).splitlines()[0]}"
            return None
        self.slot.status.pop("database", None)
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            generation = self._generation()
            if generation is None or generation == self._seen:
                continue
            if self.check():
                self._seen = generation

    def check(self) -> bool:
        """Swap to the champion if it changed; False when it should be retried later."""
        from shipyard.registry.aliases import CHAMPION, current_alias

        try:
            target = current_alias(self.client, self.name, CHAMPION)
        except Exception as exc:  # registry unreachable: retry next poll
            self.slot.status["database"] = f"unreachable: {str(exc).splitlines()[0]}"
            return False
        if target is None or target == self.slot.current.version:
            return True
        started = time.perf_counter()
        standby = self._standby
        try:
            if standby is not None and standby.version == target:
                loaded = standby
            else:
                loaded = self.loader(self.client, self.name, target)
        except Exception as exc:  # a bad version must not stop serving
            self.slot.status["load_error"] = f"{self.name}/{target}: {exc}"
            self._record("serving.load_failed", target, {"error": str(exc)})
            return True  # do not retry the same broken version every poll
        previous_model = self.slot.current
        previous = previous_model.version
        self.slot.current = loaded
        self._standby = previous_model
        self.slot.status.pop("load_error", None)
        self.swaps += 1
        self._record(
            "serving.swapped",
            target,
            {"from_version": previous, "load_seconds": time.perf_counter() - started},
        )
        return True

    def _record(self, kind: str, version: str, payload: dict[str, Any]) -> None:
        # The event is best effort: serving goes on without it.
        with contextlib.suppress(Exception):
            self.store.record(kind, f"model:{self.name}/{version}", payload)
