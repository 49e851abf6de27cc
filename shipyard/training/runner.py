"""``shipyard train``: snapshot → validate → train → log → register → model card → event."""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.access import Scope
from shipyard.config import Config
from shipyard.errors import TrainingFailed
from shipyard.jsonable import Record
from shipyard.project import Project
from shipyard.registry import tags
from shipyard.registry.environment import capture_environment
from shipyard.registry.git import git_state
from shipyard.registry.model_card import ModelCard
from shipyard.store.event_kinds import EventKind
from shipyard.training.context import TrainContext, seed_everything
from shipyard.training.cost import COST_METRIC, CPU_METRIC, TrainingCost, TrainingMeter
from shipyard.training.entrypoint import load_entrypoint
from shipyard.training.inputs import TrainingInputs, TrainingSets, prepare_inputs
from shipyard.training.params import flatten

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.registry.tracking import Tracking

__all__ = ["RUN_RECORD", "TrainResult", "call_train_function", "train"]

RUN_RECORD = "shipyard/run.json"
DURATION_METRIC = "training_duration_seconds"
StepCallback = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult(Record):
    """What one successful ``shipyard train`` produced."""

    name: str
    version: str
    run_id: str
    model_uri: str
    flavour: str
    data_digest: str
    metrics: dict[str, float]
    duration_seconds: float
    validated: bool
    cost: TrainingCost | None = None  # the run's compute and its price (``cost`` section)


def call_train_function(func: Callable[[Any], Any], ctx: TrainContext) -> tuple[Any, float]:
    """Seed, call ``func(ctx)``, and check it returned something that predicts."""
    seed_everything(ctx.seed)
    started = time.perf_counter()
    model = func(ctx)
    elapsed = time.perf_counter() - started
    if model is None or not callable(getattr(model, "predict", None)):
        raise TypeError(
            f"train(ctx) returned {type(model).__name__}, not a model with a predict() method"
        )
    return model, elapsed


def train(
    project: Project,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    trigger: str = "manual",
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Run the configured training function as a tracked, registered, reproducible run.

    Needs the ``models:train`` scope on the configured model. The run's compute (CPU
    seconds of this process and its children, wall and GPU time) is priced with the
    ``cost`` section, logged as the run's ``shipyard.cpu_seconds`` and ``shipyard.cost``
    metrics and carried by the ``run.finished`` and ``model_version.registered`` events
    as ``cost``.
    """
    project.authorize(Scope.MODELS_TRAIN, project.config.model.name)
    meter = TrainingMeter.start()
    step = on_step or (lambda _description: None)
    config, store = project.config, project.store
    merged = {**config.train.params, **(params or {})}
    run_seed = config.train.seed if seed is None else seed
    name = config.model.name

    step("Snapshotting and validating data")
    # Without train.data the train function builds its data with ctx.training_set.
    configured = prepare_inputs(config, store, subject=f"model:{name}", optional=True)
    sets = TrainingSets(project)
    func = load_entrypoint(config.train.entrypoint, config.root)

    step("Connecting to MLflow")
    tracking = project.tracking
    import mlflow

    experiment_id = tracking.experiment_id()
    import pandas as pd

    ctx = TrainContext(
        train=configured.train_frame if configured else pd.DataFrame(),
        validation=configured.validation_frame if configured else None,
        params=merged,
        seed=run_seed,
        target=config.train.target,
        _sink=_log_metric,
        _training_set=sets.build,
    )
    env = capture_environment()
    git = git_state(config.root)
    run_tags = _lineage_tags(config, configured, env.digest, git, trigger, run_seed)
    run_tags[tags.TRAINED_BY] = store.actor

    with mlflow.start_run(experiment_id=experiment_id, tags=run_tags) as run:
        run_id = run.info.run_id
        _drop_foreign_git_tags(tracking, run_id, run.data.tags, run_tags)
        mlflow.log_params({**flatten(merged), "seed": str(run_seed)})
        if configured is not None:
            _log_dataset(configured, config.train.target)
        mlflow.log_text(env.freeze, "environment/requirements.txt")
        mlflow.log_dict(
            {**env.to_dict(), "packages": list(env.packages)}, "environment/environment.json"
        )

        step("Training")
        try:
            model, elapsed = call_train_function(func, ctx)
        except Exception as exc:
            mlflow.log_text(traceback.format_exc(), "error/traceback.txt")
            failed = _log_cost(meter.stop(config.cost))  # a failed run cost money too
            store.record(
                EventKind.RUN_FAILED,
                f"run:{run_id}",
                {
                    "model": name,
                    "error": f"{type(exc).__name__}: {exc}",
                    "trigger": trigger,
                    "cost": failed.to_dict(),
                },
            )
            if exc is sets.failed:  # ctx.training_set's own error says what to fix
                raise
            raise TrainingFailed(
                f"The training function {config.train.entrypoint} raised "
                f"{type(exc).__name__}: {exc}",
                hint=f"Nothing was registered. The traceback is in run {run_id} "
                "(artifact error/traceback.txt); fix the function and run `shipyard train` again.",
            ) from exc
        mlflow.log_metric(DURATION_METRIC, elapsed)
        inputs = sets.inputs(configured)
        if configured is None:
            _log_dataset(inputs, config.train.target)
        # The training set's lineage: serving reads the version's shipyard.features tag.
        feature_tags = sets.tags(configured)
        if feature_tags:
            mlflow.set_tags(feature_tags)
            run_tags.update(feature_tags)

        step("Logging and registering the model")
        from shipyard.models.flavours import detect_flavour, log_model, pip_requirements

        flavour = detect_flavour(model)
        # The model's inputs: the training set's feature columns and request inputs.
        features = sets.first.inputs()[0] if sets.first else ctx.features()[0]
        info = log_model(
            model,
            flavour,
            sample=features.head(100),
            requirements=pip_requirements(flavour, env, model),
        )
        version = tracking.client.create_model_version(
            name=_ensure_registered(tracking, name),
            source=info.model_uri,
            run_id=run_id,
            tags=run_tags,
            model_id=info.model_id,
        )
        _link_logged_model(tracking, info.model_id, version.name, version.version)
        metrics = {**ctx.metrics, DURATION_METRIC: elapsed}
        card = _model_card(
            config,
            inputs,
            merged,
            run_seed,
            metrics,
            info,
            str(version.version),
            run_tags,
            flavour.name,
        )
        mlflow.log_text(card.to_markdown(), "model_card.md")
        mlflow.log_text(card.to_json(), "model_card.json")
        mlflow.log_dict(
            {
                "entrypoint": config.train.entrypoint,
                "params": merged,
                "seed": run_seed,
                "target": config.train.target,
                "data_digest": inputs.train.digest,
                "validation_digest": inputs.validation.digest if inputs.validation else None,
                "flavour": flavour.name,
                "model_uri": info.model_uri,
                "trigger": trigger,
            },
            RUN_RECORD,
        )
        cost = _log_cost(meter.stop(config.cost))

    subject = f"model:{name}/{version.version}"
    store.record(
        EventKind.RUN_FINISHED,
        f"run:{run_id}",
        {"model": name, "metrics": metrics, "cost": cost.to_dict()},
    )
    store.record(
        EventKind.MODEL_VERSION_REGISTERED,
        subject,
        {
            "run_id": run_id,
            "data_digest": inputs.train.digest,
            "trigger": trigger,
            "flavour": flavour.name,
            "cost": cost.to_dict(),
        },
    )
    return TrainResult(
        name=name,
        version=str(version.version),
        run_id=run_id,
        model_uri=info.model_uri,
        flavour=flavour.name,
        data_digest=inputs.train.digest,
        metrics=metrics,
        duration_seconds=elapsed,
        validated=inputs.validated,
        cost=cost,
    )


def _log_cost(cost: TrainingCost) -> TrainingCost:
    """Log ``cost`` on the active run as ``shipyard.cpu_seconds`` and ``shipyard.cost``."""
    import mlflow

    mlflow.log_metrics({CPU_METRIC: cost.cpu_seconds, COST_METRIC: cost.amount})
    return cost


def _log_metric(name: str, value: float, step: int | None) -> None:
    import mlflow

    mlflow.log_metric(name, value, step=step)


def _ensure_registered(tracking: Tracking, name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        tracking.client.get_registered_model(name)
    except MlflowException:
        tracking.client.create_registered_model(name)
    return name


def _link_logged_model(tracking: Tracking, model_id: str | None, name: str, version: Any) -> None:
    """Tag the logged model with its registered version, as MLflow's own registration does.

    ``mlflow.register_model`` appends ``{"name", "version"}`` to the logged model's
    ``mlflow.modelVersions`` tag; the UI links the two through it. ``create_model_version``
    on a database store does not.
    """
    import json

    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    if not model_id:
        return
    client = tracking.client
    entry = {"name": name, "version": int(version)}
    existing = client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS)
    linked = json.loads(existing) if existing else []
    if entry not in linked:
        client.set_logged_model_tags(
            model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*linked, entry])}
        )


def _lineage_tags(
    config: Config,
    inputs: TrainingInputs | None,
    env_digest: str,
    git: Any,
    trigger: str,
    seed: int,
) -> dict[str, str]:
    found = {tags.PROJECT: config.project, tags.ENTRYPOINT: config.train.entrypoint or ""}
    if inputs is not None:  # else the data is a training set, tagged once it is built
        found[tags.DATA_DIGEST] = inputs.train.digest
        found[tags.DATA_SOURCE] = inputs.train.source
    found.update({tags.ENV_DIGEST: env_digest, tags.TRIGGER: trigger, tags.SEED: str(seed)})
    if config.train.target:
        found[tags.TARGET] = config.train.target
    if inputs is None:
        return {**found, **_git_tags(git)}
    if inputs.validation is not None:
        found[tags.VALIDATION_DIGEST] = inputs.validation.digest
    if inputs.train.dvc is not None:
        found[tags.DVC_MD5] = inputs.train.dvc.md5
        found[tags.DVC_PATH] = inputs.train.dvc.path
        if inputs.train.dvc.pointer_md5 is not None:  # stale: the file's md5 is recorded
            found[tags.DVC_POINTER_MD5] = inputs.train.dvc.pointer_md5
    return {**found, **_git_tags(git)}


def _git_tags(git: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    if git is None:
        found[tags.GIT_COMMIT] = tags.NOT_A_GIT_REPOSITORY
    else:
        found[tags.GIT_COMMIT] = git.commit
        found[tags.GIT_DIRTY] = str(git.dirty).lower()
        # Plain MLflow's own tags, so MLflow's UI shows the commit too.
        found[tags.MLFLOW_GIT_COMMIT] = git.commit
        if git.branch:
            found[tags.MLFLOW_GIT_BRANCH] = git.branch
    return found


def _drop_foreign_git_tags(
    tracking: Tracking, run_id: str, recorded: Mapping[str, str], ours: Mapping[str, str]
) -> None:
    """Delete the git tags MLflow took from the running program, not from the project.

    MLflow tags a run with the git state of ``sys.argv[0]``: under ``shipyard train``,
    the agent or a test runner that is Shipyard's own installation, not the project.
    """
    for key in (tags.MLFLOW_GIT_COMMIT, tags.MLFLOW_GIT_BRANCH, tags.MLFLOW_GIT_REPO_URL):
        if key in recorded and key not in ours:
            tracking.client.delete_tag(run_id, key)


def _log_dataset(inputs: TrainingInputs, target: str | None) -> None:
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    pairs: list[tuple[Any, pd.DataFrame, str]] = [(inputs.train, inputs.train_frame, "training")]
    if inputs.validation is not None and inputs.validation_frame is not None:
        pairs.append((inputs.validation, inputs.validation_frame, "validation"))
    for snap, frame, context in pairs:
        with warnings.catch_warnings():
            # MLflow warns that a local path "can be interpreted in multiple ways" and that
            # integer columns cannot hold NaN; neither is actionable for a snapshot.
            warnings.simplefilter("ignore", UserWarning)
            dataset = from_pandas(
                frame,
                source=snap.data_url,
                name=context,
                # MLflow keeps at most 36 characters; the full digest is a tag.
                digest=snap.digest[:32],
                targets=target if target in frame.columns else None,
            )
            mlflow.log_input(dataset, context=context)


def _model_card(
    config: Config,
    inputs: TrainingInputs,
    params: dict[str, Any],
    seed: int,
    metrics: dict[str, float],
    info: Any,
    version: str,
    lineage: dict[str, str],
    flavour: str,
) -> ModelCard:
    data: dict[str, Any] = {
        "source": inputs.train.source,
        "digest": inputs.train.digest,
        "rows": inputs.train.rows,
        "columns": len(inputs.train.columns),
        "target": config.train.target,
        "validated": inputs.validated,
    }
    if inputs.train.dvc is not None:
        data["dvc"] = {"md5": inputs.train.dvc.md5, "path": inputs.train.dvc.path}
        if inputs.train.dvc.pointer_md5 is not None:
            data["dvc"]["stale_pointer_md5"] = inputs.train.dvc.pointer_md5
    if inputs.validation is not None:
        data["validation_digest"] = inputs.validation.digest
    signature = info.signature.inputs.to_dict() if info.signature is not None else []
    return ModelCard(
        name=config.model.name,
        version=version,
        purpose=config.model.purpose,
        owner=config.model.owner,
        task=config.model.task,
        flavour=flavour,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data=data,
        params={**params, "seed": seed},
        metrics=metrics,
        lineage={key: value for key, value in lineage.items() if key.startswith("shipyard.")},
        inputs=[{"name": str(c.get("name")), "type": str(c.get("type"))} for c in signature],
    )
