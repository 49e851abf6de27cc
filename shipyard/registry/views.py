"""Read-only views of the registry: models, versions and their lineage.

They work on any MLflow model version, including ones registered by plain MLflow code;
what a version does not record is listed in ``missing`` rather than invented.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.errors import NotFoundError
from shipyard.jsonable import Record
from shipyard.registry import tags
from shipyard.registry.refs import ModelRef
from shipyard.registry.tracking import mlflow_errors

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "Lineage",
    "ModelSummary",
    "VersionDetail",
    "get_version",
    "lineage",
    "list_models",
    "model_versions",
    "show_version",
]


def _iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ModelSummary(Record):
    """One registered model: its newest version and its aliases."""

    name: str
    latest_version: str | None
    versions: int
    aliases: dict[str, str]
    description: str
    updated_at: str | None


@dataclass(frozen=True)
class VersionDetail(Record):
    """One model version with its run's params and metrics."""

    name: str
    version: str
    status: str
    run_id: str | None
    source: str
    created_at: str | None
    aliases: list[str]
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    registered_by: str


@dataclass(frozen=True)
class Lineage(Record):
    """The chain version → run → dataset → git commit → environment → trigger."""

    name: str
    version: str
    run: dict[str, Any]
    dataset: dict[str, Any]
    git: dict[str, Any]
    environment: dict[str, Any]
    trigger: str | None
    missing: list[str] = field(default_factory=list)
    # A model trained on a point-in-time training set: its features, the view versions,
    # the entity keys, the entity set's digest and the time mode (the shipyard.features tag).
    features: dict[str, Any] = field(default_factory=dict)


def list_models(client: MlflowClient) -> list[ModelSummary]:
    """Every registered model, by name."""
    with mlflow_errors("Registered models"):
        models = client.search_registered_models(max_results=1000, order_by=["name ASC"])
        summaries = []
        for model in models:
            versions = model_versions(client, model.name)
            numbers = sorted((int(v.version) for v in versions), reverse=True)
            summaries.append(
                ModelSummary(
                    name=model.name,
                    latest_version=str(numbers[0]) if numbers else None,
                    versions=len(numbers),
                    aliases={alias: str(v) for alias, v in (model.aliases or {}).items()},
                    description=model.description or "",
                    updated_at=_iso(model.last_updated_timestamp),
                )
            )
    return summaries


def model_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    """Every registered version of ``name`` (MLflow's filter needs the quotes doubled)."""
    return list(client.search_model_versions(f"name = '{name.replace(chr(39), chr(39) * 2)}'"))


def get_version(client: MlflowClient, ref: ModelRef) -> ModelVersion:
    """The model version ``ref`` names; the newest one when it names none."""
    with mlflow_errors(f"Model {ref}"):
        if ref.version:
            return client.get_model_version(ref.name, ref.version)
        if ref.alias:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        versions = model_versions(client, ref.name)
    if not versions:
        raise NotFoundError(
            f"Model {ref.name!r} has no versions.",
            hint="Train one with `shipyard train`, or list models with `shipyard models list`.",
        )
    return max(versions, key=lambda v: int(v.version))


def show_version(client: MlflowClient, ref: ModelRef) -> VersionDetail:
    """Details of one version: status, aliases, tags, and its run's params and metrics."""
    version = get_version(client, ref)
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    if version.run_id:
        with mlflow_errors(f"Run {version.run_id}"):
            run = client.get_run(version.run_id)
        params, metrics = dict(run.data.params), dict(run.data.metrics)
    version_tags = dict(version.tags or {})
    return VersionDetail(
        name=version.name,
        version=str(version.version),
        status=str(version.status),
        run_id=version.run_id,
        source=version.source or "",
        created_at=_iso(version.creation_timestamp),
        aliases=sorted(version.aliases or []),
        tags=version_tags,
        params=params,
        metrics=metrics,
        registered_by="shipyard"
        if tags.DATA_DIGEST in version_tags or version_tags.get("shipyard.kind") == "llm"
        else "mlflow",
    )


def lineage(client: MlflowClient, ref: ModelRef) -> Lineage:
    """Where a version came from, as far as it was recorded."""
    version = get_version(client, ref)
    vtags = dict(version.tags or {})
    missing: list[str] = []
    run_info: dict[str, Any] = {"id": version.run_id}
    run_tags: dict[str, str] = {}
    dataset: dict[str, Any] = {}
    if version.run_id:
        with mlflow_errors(f"Run {version.run_id}"):
            run = client.get_run(version.run_id)
        run_tags = dict(run.data.tags)
        run_info.update(
            status=run.info.status,
            experiment_id=run.info.experiment_id,
            started_at=_iso(run.info.start_time),
            ended_at=_iso(run.info.end_time),
        )
        dataset = _training_dataset(run)
    else:
        missing.append("run")
    merged = {**run_tags, **vtags}
    if tags.DATA_DIGEST in merged:
        # MLflow's dataset input points at Shipyard's stored copy; show where it came from.
        if "source" in dataset:
            dataset["stored_copy"] = dataset["source"]
        dataset["source"] = merged.get(tags.DATA_SOURCE)
        dataset["digest"] = merged[tags.DATA_DIGEST]
    if tags.DVC_MD5 in merged:
        dataset["dvc_md5"] = merged[tags.DVC_MD5]
        dataset["dvc_path"] = merged.get(tags.DVC_PATH)
    if not dataset:
        missing.append("dataset")
    commit = merged.get(tags.GIT_COMMIT) or merged.get(tags.MLFLOW_GIT_COMMIT)
    git: dict[str, Any] = {}
    if commit == tags.NOT_A_GIT_REPOSITORY:
        git = {"commit": None, "note": "not a git repository"}
        missing.append("git commit")
    elif commit:
        git = {"commit": commit, "dirty": _flag(merged.get(tags.GIT_DIRTY))}
    else:
        missing.append("git commit")
    environment: dict[str, Any] = {}
    if tags.ENV_DIGEST in merged:
        environment = {"digest": merged[tags.ENV_DIGEST]}
    else:
        missing.append("environment digest")
    trigger = merged.get(tags.TRIGGER)
    if trigger is None:
        missing.append("trigger")
    return Lineage(
        name=version.name,
        version=str(version.version),
        run=run_info,
        dataset=dataset,
        git=git,
        environment=environment,
        trigger=trigger,
        missing=missing,
        features=_features(merged.get(tags.FEATURES)),
    )


def _features(text: str | None) -> dict[str, Any]:
    """The training set's lineage recorded in the ``shipyard.features`` tag, if any."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"unreadable": text[:200]}
    return value if isinstance(value, dict) else {"unreadable": text[:200]}


def _flag(value: str | None) -> bool | None:
    return None if value is None else value.lower() == "true"


def _training_dataset(run: Any) -> dict[str, Any]:
    """The run's training dataset input, as MLflow recorded it."""
    inputs = list(run.inputs.dataset_inputs or []) if run.inputs else []
    if not inputs:
        return {}
    chosen = inputs[0]
    for item in inputs:
        contexts = {t.value for t in item.tags if t.key == "mlflow.data.context"}
        if "training" in contexts:
            chosen = item
            break
    ds = chosen.dataset
    return {
        "name": ds.name,
        "source": _source_uri(ds.source),
        "source_type": ds.source_type,
        "mlflow_digest": ds.digest,
    }


def _source_uri(source: str) -> str:
    import json

    try:
        parsed = json.loads(source)
    except (TypeError, ValueError):
        return source
    if isinstance(parsed, dict):
        return str(parsed.get("uri") or parsed.get("path") or source)
    return source
