"""Hot swap: follow the champion pointer and the traffic settings without a restart.

A :class:`Lineup` is what a server answers with: every loaded version it may route to,
and the :class:`~shipyard.serving.router.Router` that picks one per request. A
:class:`GenerationWatcher` thread polls the model's serving generation in the control
plane (bumped on every alias move and traffic change). When it changes, the watcher
loads what the new lineup needs off the request path, then replaces
:attr:`ModelSlot.lineup` in one assignment. A request reads the lineup once when it
starts, so in-flight requests finish on the models they began with.

A champion that fails to load is not swapped in: the server keeps its lineup. A
challenger or shadow that fails to load is left out, its share going to the champion.
Either is recorded as an event and shown in :attr:`ModelSlot.status` (the readiness
details), and so is an unreachable database, while the loaded models keep serving.

The champion is the pointer Shipyard recorded (:func:`~shipyard.registry.pointers.
trusted_version`), never MLflow's alias as such. Every ``drift_interval`` the watcher
also compares the two: an alias moved outside Shipyard is not served, and once the
same drift is seen twice in a row (a move in progress sets MLflow's alias a moment
before its record) it is reported in :attr:`ModelSlot.drift` (readiness details and
the ``shipyard_registry_drift`` gauge) and recorded as a ``registry.drift`` event.
A load ``check`` (:class:`~shipyard.models.served.ArtifactCheck`) sees each version's
files before they load; a version it refuses is a version that failed to load.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from shipyard.config import StorageSettings
from shipyard.errors import StorageError
from shipyard.models.served import ArtifactCheck, ServedModel
from shipyard.registry.pointers import AliasDrift, model_drift, record_drift, trusted_version
from shipyard.serving.router import Router, TrafficPlan
from shipyard.store.event_kinds import EventKind

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from shipyard.store import Store
    from shipyard.store.traffic import TrafficSettings

__all__ = ["GenerationWatcher", "Lineup", "ModelSlot"]

Loader = Callable[["MlflowClient", str, str], ServedModel]
_STANDBY = 4  # versions kept loaded after they leave the lineup, for instant rollbacks


@dataclass(frozen=True, eq=False)
class Lineup:
    """The loaded versions a server routes to, and the router that splits traffic."""

    models: Mapping[str, ServedModel]
    router: Router

    @classmethod
    def single(cls, model: ServedModel, generation: int = 0) -> Lineup:
        """All traffic to one model."""
        return cls({model.version: model}, Router(TrafficPlan.single(model.version, generation)))

    @property
    def plan(self) -> TrafficPlan:
        """The traffic plan in force."""
        return self.router.plan

    @property
    def champion(self) -> ServedModel:
        """The champion route's model."""
        return self.models[next(r.version for r in self.plan.routes if r.role == "champion")]

    @property
    def shadow(self) -> ServedModel | None:
        """The shadow model, when the plan copies traffic to one."""
        version = self.plan.shadow_version
        return None if version is None or not self.plan.shadow_share else self.models[version]

    def role(self, version: str) -> str:
        """``version``'s role in the plan: champion, challenger or shadow."""
        for route in self.plan.routes:
            if route.version == version:
                return route.role
        return "shadow"


class ModelSlot:
    """The lineup a server answers with right now, and its readiness details."""

    def __init__(self, served: ServedModel | Lineup) -> None:
        self.lineup = served if isinstance(served, Lineup) else Lineup.single(served)
        self.status: dict[str, Any] = {}
        self.drift: tuple[AliasDrift, ...] = ()  # aliases MLflow moved outside Shipyard

    @property
    def current(self) -> ServedModel:
        """The champion model."""
        return self.lineup.champion

    def details(self) -> dict[str, Any]:
        """The readiness details: status, registry drift, versions served unverified."""
        details = dict(self.status)
        if self.drift:
            details["registry_drift"] = [
                {**drift.to_dict(), "summary": drift.summary} for drift in self.drift
            ]
        mismatched = {
            version: model.verdict.detail
            for version, model in self.lineup.models.items()
            if model.verdict is not None and model.verdict.state == "mismatch"
        }
        if mismatched:
            details["artifact_mismatch"] = mismatched
        return details


class GenerationWatcher:
    """Polls the control plane and swaps the slot's lineup when the champion or traffic moves."""

    def __init__(
        self,
        slot: ModelSlot,
        *,
        store: Store,
        client: MlflowClient,
        interval: float = 0.5,
        loader: Loader | None = None,
        check: ArtifactCheck | None = None,
        drift_interval: float = 5.0,
        storage: StorageSettings | None = None,
    ) -> None:
        from shipyard.models.served import load_served_model

        self.slot = slot
        self.store = store
        self.client = client
        self.interval = interval
        self.loader = loader or partial(load_served_model, check=check)
        self.drift_interval = drift_interval
        self.storage = storage
        self.name = slot.current.name
        self.swaps = 0
        self.drift_checks = 0  # registry drift checks done
        # Versions that left the lineup stay loaded a while, so a rollback needs no load.
        self._standby: dict[str, ServedModel] = {}
        self._seen: int | None = None
        self._drift_seen: frozenset[AliasDrift] = frozenset()  # last check's, unconfirmed
        self._drift_recorded: tuple[AliasDrift, ...] = ()
        self._next_drift_check = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipyard-hot-swap", daemon=True)

    def start(self) -> None:
        """Apply the control plane's current state, then poll it in a background thread."""
        deployment = self._deployment()
        if deployment is not None and self._apply(*deployment):
            self._seen = deployment[0]
        self.check_drift()
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (returns once the thread has ended)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _deployment(self) -> tuple[int, TrafficSettings] | None:
        from shipyard.store.traffic import read_traffic

        try:
            found = read_traffic(self.store, self.name)
        except Exception as exc:  # any database failure: keep serving
            self.slot.status["database"] = f"unreachable: {str(exc).splitlines()[0]}"
            return None
        self.slot.status.pop("database", None)
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if time.monotonic() >= self._next_drift_check:
                self.check_drift()
            deployment = self._deployment()
            if deployment is None or deployment[0] == self._seen:
                continue
            if self._apply(*deployment):
                self._seen = deployment[0]

    def check(self) -> bool:
        """Swap to the lineup the control plane asks for now; False to retry later."""
        deployment = self._deployment()
        return deployment is not None and self._apply(*deployment)

    def check_drift(self) -> tuple[AliasDrift, ...]:
        """Compare MLflow's aliases with the recorded pointers; report drift seen twice running.

        A drift is confirmed when the previous check saw it too, so an alias move in
        progress (MLflow's alias set, its record not yet written) is never reported.
        Returns the confirmed drift, which is also :attr:`ModelSlot.drift`.
        """
        self._next_drift_check = time.monotonic() + self.drift_interval
        try:
            found = frozenset(model_drift(self.store, self.client, self.name))
        except Exception as exc:  # registry or database unreachable: keep what we know
            self.slot.status["database"] = f"unreachable: {str(exc).splitlines()[0]}"
            self.drift_checks += 1
            return self.slot.drift
        confirmed = tuple(
            sorted(found & self._drift_seen, key=lambda d: (d.alias, d.mlflow_version or ""))
        )
        self._drift_seen = found
        self.slot.drift = confirmed
        if confirmed != self._drift_recorded:
            with contextlib.suppress(Exception):  # best effort, as below: tried again next check
                record_drift(self.store, self.name, confirmed)
                self._drift_recorded = confirmed
        self.drift_checks += 1
        return confirmed

    def _apply(self, generation: int, settings: TrafficSettings) -> bool:
        from shipyard.registry.aliases import CHAMPION

        try:
            champion = trusted_version(self.store, self.name, CHAMPION)
        except Exception as exc:  # control plane unreachable: retry next poll
            self.slot.status["database"] = f"unreachable: {str(exc).splitlines()[0]}"
            return False
        lineup = self.slot.lineup
        champion = champion or lineup.champion.version
        started = time.perf_counter()
        models = self._load({champion, *settings.versions()}, lineup)
        if champion not in models:
            return True  # keep serving what we have; the failure is recorded
        plan = _plan(champion, settings, set(models), generation)
        unchanged = replace(plan, generation=lineup.plan.generation) == lineup.plan
        if unchanged and all(models[v] is lineup.models.get(v) for v in models):
            return True  # e.g. a promotion of the version already serving
        for version, model in lineup.models.items():
            if version not in models:
                self._standby[version] = model
        while len(self._standby) > _STANDBY:
            self._standby.pop(next(iter(self._standby)))
        self.slot.lineup = Lineup(models, Router(plan))
        self.swaps += 1
        if champion != lineup.champion.version:
            self._record(
                EventKind.SERVING_SWAPPED,
                champion,
                {
                    "from_version": lineup.champion.version,
                    "load_seconds": time.perf_counter() - started,
                },
            )
        return True

    def _load(self, versions: set[str], lineup: Lineup) -> dict[str, ServedModel]:
        # Called once per generation: a version that fails is tried again on the next.
        from shipyard.registry.tracking import model_files_problem

        models: dict[str, ServedModel] = {}
        errors: list[str] = []
        storage: list[str] = []
        for version in sorted(versions):
            known = lineup.models.get(version) or self._standby.pop(version, None)
            if known is not None:
                models[version] = known
                continue
            try:
                # One bounded look at the bucket first: an unreachable one is reported in
                # seconds, not after MLflow's boto3 client has retried for minutes.
                uri = f"models:/{self.name}/{version}"
                problem = model_files_problem(uri, self.storage, self.client)
                if problem is not None:
                    raise problem
                models[version] = self.loader(self.client, self.name, version)
            except Exception as exc:  # a bad version must not stop serving
                errors.append(f"{self.name}/{version}: {exc}")
                if isinstance(exc, StorageError):
                    storage.append(f"{self.name}/{version}: {exc.message}")
                self._record(EventKind.SERVING_LOAD_FAILED, version, {"error": str(exc)})
        if errors:
            self.slot.status["load_error"] = "; ".join(errors)
        else:
            self.slot.status.pop("load_error", None)
        if storage:
            self.slot.status["storage"] = "; ".join(storage)
        else:
            self.slot.status.pop("storage", None)
        return models

    def _record(self, kind: EventKind, version: str, payload: dict[str, Any]) -> None:
        # The event is best effort: serving goes on without it.
        with contextlib.suppress(Exception):
            self.store.record(kind, f"model:{self.name}/{version}", payload)


def _plan(
    champion: str, settings: TrafficSettings, loaded: set[str], generation: int
) -> TrafficPlan:
    """The plan for ``champion`` plus the loaded challengers and shadow in ``settings``."""
    from shipyard.serving.router import Route

    challengers = {
        v: w for v, w in settings.challengers.items() if v != champion and v in loaded and w > 0
    }
    champion_weight = max(0.0, 1.0 - sum(challengers.values()))
    routes = [Route(champion, "champion", champion_weight)]
    routes += [Route(v, "challenger", w) for v, w in sorted(challengers.items())]
    total = sum(r.weight for r in routes)
    routes = [Route(r.version, r.role, r.weight / total) for r in routes]
    shadow = settings.shadow if settings.shadow in loaded and settings.shadow_share > 0 else None
    return TrafficPlan(
        routes=tuple(routes),
        shadow_version=shadow,
        shadow_share=settings.shadow_share if shadow else 0.0,
        generation=generation,
    )
