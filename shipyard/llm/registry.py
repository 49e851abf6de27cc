"""LLM versions in the model registry: a provider, a model, a pinned prompt version, parameters.

An LLM version is registered exactly like a trained model, so ``shipyard promote``,
``approve``, ``rollback``, ``traffic``, ``rollout`` and card signing work on it unchanged:

- an MLflow run in the project's experiment, with the provider, model, prompt and
  parameters as params, and tags (``shipyard.kind = llm``, ``shipyard.prompt =
  name/version`` …) beside the usual lineage tags;
- the run's ``model`` folder in the ``shipyard_llm`` flavour (:class:`LLMFlavour`): an
  ``llm.json`` holding the :class:`LLMSpec`, **with the prompt template copied in**, so
  the version answers the same way however the prompt's labels move afterwards;
- a model version of ``model.name`` pointing at it, a model card (``model_card.md`` and
  ``.json``) and a ``model_version.registered`` event.

``NAME@label`` is resolved once, at registration: the version records which prompt
version the label held then (``shipyard.prompt``).

    version = register_llm(project, provider="openai", model="gpt-4o-mini",
                           prompt="support@production", params={"temperature": 0})
    promote(project, ModelRef("assistant", version.version), to="challenger")
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.access import Scope
from shipyard.errors import ConfigError, NotFoundError
from shipyard.jsonable import Record, to_json
from shipyard.llm.prompts import PromptVersion, resolve_prompt
from shipyard.models.llm import FLAVOUR, SPEC_FILE, LLMSpec, save_llm_model
from shipyard.registry import tags
from shipyard.registry.git import git_state
from shipyard.registry.model_card import ModelCard
from shipyard.registry.refs import ModelRef
from shipyard.registry.tracking import mlflow_errors
from shipyard.store.event_kinds import EventKind

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from shipyard.project import Project

__all__ = [
    "KIND_TAG",
    "LLM_KIND",
    "PARAMS",
    "PROMPT_TAG",
    "LLMVersion",
    "check_params",
    "parse_params",
    "register_llm",
    "show_llm",
]

KIND_TAG = "shipyard.kind"
LLM_KIND = "llm"
PROMPT_TAG = "shipyard.prompt"  # name/version of the pinned prompt version
PROMPT_DIGEST_TAG = "shipyard.prompt_digest"
PROVIDER_TAG = "shipyard.llm.provider"
MODEL_TAG = "shipyard.llm.model"
SPEC_DIGEST_TAG = "shipyard.llm.spec_digest"

# OpenAI chat parameters a version may fix, and the type (and range) each must have.
PARAMS: dict[str, tuple[type | tuple[type, ...], float | None, float | None]] = {
    "temperature": ((int, float), 0, 2),
    "top_p": ((int, float), 0, 1),
    "max_tokens": (int, 1, None),
    "max_completion_tokens": (int, 1, None),
    "seed": (int, None, None),
    "presence_penalty": ((int, float), -2, 2),
    "frequency_penalty": ((int, float), -2, 2),
    "stop": ((str, list), None, None),
    "logit_bias": (dict, None, None),
    "response_format": (dict, None, None),
    "reasoning_effort": (str, None, None),
    "logprobs": (bool, None, None),
    "top_logprobs": (int, 0, 20),
}


@dataclass(frozen=True)
class LLMVersion(Record):
    """A registered LLM version: where it answers, with which prompt version and parameters."""

    name: str
    version: str
    run_id: str
    model_uri: str
    provider: str
    model: str
    prompt: str
    prompt_version: str
    prompt_digest: str
    params: dict[str, Any] = field(default_factory=dict)
    spec_digest: str = ""
    description: str = ""
    aliases: list[str] = field(default_factory=list)
    template: str | list[dict[str, str]] = ""

    @property
    def ref(self) -> str:
        """``name/version``."""
        return f"{self.name}/{self.version}"


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """``["temperature=0", "stop=[\\"\\n\\"]"]`` as a dict: each value read as JSON, else text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--param {pair!r}: write NAME=VALUE, e.g. --param temperature=0.2.",
            )
        try:
            value: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = text
        params[key.strip()] = value
    return check_params(params)


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` if each is a known OpenAI chat parameter of the right type and range."""
    for name, value in params.items():
        if name not in PARAMS:
            raise ConfigError(
                f"params.{name}: not a chat parameter a version can fix.",
                hint=f"Known: {', '.join(sorted(PARAMS))}.",
            )
        kind, low, high = PARAMS[name]
        numeric = not isinstance(value, bool) or kind is bool
        if not isinstance(value, kind) or not numeric:
            raise ConfigError(f"params.{name}: {value!r} has the wrong type.")
        number = float(value) if isinstance(value, (int, float)) else None
        if number is not None and (
            (low is not None and number < low) or (high is not None and number > high)
        ):
            raise ConfigError(
                f"params.{name}: {value!r} is out of range "
                f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]."
            )
    return dict(params)


def register_llm(
    project: Project,
    *,
    provider: str,
    model: str,
    prompt: str | None = None,
    params: Mapping[str, Any] | None = None,
    description: str = "",
    name: str | None = None,
) -> LLMVersion:
    """Register a new version of the project's LLM model (``model.name``; needs ``models:train``).

    ``provider`` must be one of ``llm.providers``; ``prompt`` is ``NAME@label``, ``NAME/3``
    or ``NAME`` (default: ``llm.prompt`` at ``production``), resolved now and pinned.
    """
    config = project.config
    name = name or config.model.name
    if config.model.task != "llm":
        raise ConfigError(
            f"model.task is {config.model.task!r}, so {name} is not an LLM model.",
            hint="Set model.task: llm in shipyard.yaml to register LLM versions.",
        )
    project.authorize(Scope.MODELS_TRAIN, name)
    known = [p.name for p in config.llm.providers]
    if provider not in known:
        raise ConfigError(
            f"provider: {provider!r} is not one of llm.providers "
            f"({', '.join(known) or 'none configured'}).",
            hint="Add it under llm.providers in shipyard.yaml, or pick a listed one.",
        )
    if not model.strip():
        raise ConfigError("model: give the provider's model name, e.g. gpt-4o-mini.")
    fixed = check_params(params or {})
    if prompt is None:
        if not config.llm.prompt:
            raise ConfigError(
                "prompt: name a prompt (NAME@production, NAME/3), or set llm.prompt.",
                hint="Register one with `shipyard prompts register NAME --file template.txt`.",
            )
        prompt = f"{config.llm.prompt}@production"
    pinned = resolve_prompt(project, prompt)
    spec = LLMSpec(
        provider=provider,
        model=model.strip(),
        prompt=pinned.name,
        prompt_version=pinned.version,
        template=pinned.template,
        params=fixed,
    )
    return _register(project, name, spec, pinned, prompt, description)


def _register(
    project: Project,
    name: str,
    spec: LLMSpec,
    pinned: PromptVersion,
    asked: str,
    description: str,
) -> LLMVersion:
    import mlflow

    config, store, tracking = project.config, project.store, project.tracking
    run_tags = {
        tags.PROJECT: config.project,
        tags.TRIGGER: "manual",
        tags.TRAINED_BY: store.actor,
        KIND_TAG: LLM_KIND,
        PROMPT_TAG: spec.prompt_ref,
        PROMPT_DIGEST_TAG: pinned.digest,
        PROVIDER_TAG: spec.provider,
        MODEL_TAG: spec.model,
        SPEC_DIGEST_TAG: spec.digest,
    }
    git = git_state(config.root)
    run_tags[tags.GIT_COMMIT] = git.commit if git else tags.NOT_A_GIT_REPOSITORY
    if git is not None:
        run_tags[tags.GIT_DIRTY] = str(git.dirty).lower()
    with (
        mlflow_errors(f"Model {name}"),
        mlflow.start_run(experiment_id=tracking.experiment_id(), tags=run_tags) as run,
    ):
        run_id = run.info.run_id
        mlflow.log_params(
            {
                "provider": spec.provider,
                "model": spec.model,
                "prompt": spec.prompt_ref,
                "prompt_asked": asked,
                **{f"param.{k}": to_json(v) for k, v in spec.params.items()},
            }
        )
        with tempfile.TemporaryDirectory(prefix="shipyard-llm-") as folder:
            # The shipyard_llm flavour's folder (what LLMFlavour.log writes), logged as is.
            local = save_llm_model(
                spec, Path(folder) / "model", run_id=run_id, artifact_path="model"
            )
            mlflow.log_artifacts(str(local), "model")
        source = mlflow.get_artifact_uri("model")
        client = tracking.client
        _ensure_registered(project, name)
        version = client.create_model_version(
            name=name,
            source=source,
            run_id=run_id,
            tags=run_tags,
            description=description or None,
        )
        number = str(version.version)
        card = _card(project, name, number, spec, pinned, run_tags)
        mlflow.log_text(card.to_markdown(), "model_card.md")
        mlflow.log_text(card.to_json(), "model_card.json")
    store.record(
        EventKind.MODEL_VERSION_REGISTERED,
        f"model:{name}/{number}",
        {
            "run_id": run_id,
            "trigger": "manual",
            "flavour": FLAVOUR,
            "kind": LLM_KIND,
            "provider": spec.provider,
            "model": spec.model,
            "prompt": spec.prompt_ref,
            "prompt_digest": pinned.digest,
            "spec_digest": spec.digest,
            "params": spec.params,
        },
    )
    return _version(name, number, run_id, source, spec, pinned.digest, description, [])


def _ensure_registered(project: Project, name: str) -> None:
    from mlflow.exceptions import MlflowException

    client = project.tracking.client
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=project.config.model.purpose or None)
        except MlflowException as exc:
            if "taken by a prompt" in str(exc):
                raise ConfigError(
                    f"model.name {name!r} is a prompt's name; prompts and models share names.",
                    hint="Rename the model or the prompt.",
                ) from None
            raise


def _card(
    project: Project,
    name: str,
    version: str,
    spec: LLMSpec,
    pinned: PromptVersion,
    run_tags: Mapping[str, str],
) -> ModelCard:
    config = project.config
    return ModelCard(
        name=name,
        version=version,
        purpose=config.model.purpose,
        owner=config.model.owner,
        task=LLM_KIND,
        flavour=FLAVOUR,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data={
            "provider": spec.provider,
            "model": spec.model,
            "prompt": spec.prompt_ref,
            "prompt_digest": pinned.digest,
            "prompt_message": pinned.message,
            "template": spec.template,
        },
        params=dict(spec.params),
        metrics={},
        lineage={k: v for k, v in run_tags.items() if k.startswith("shipyard.")},
        inputs=[{"name": v, "type": "string"} for v in spec.variables]
        + [{"name": "input", "type": "string"}],
    )


def show_llm(project: Project, ref: ModelRef) -> LLMVersion:
    """The LLM version ``ref`` names (``NAME/3``, ``NAME@champion``, ``NAME``), with its spec."""
    from shipyard.registry.views import get_version

    project.authorize(Scope.MODELS_READ, ref.name)
    client = project.tracking.client
    found: ModelVersion = get_version(client, ref)
    version_tags = dict(found.tags or {})
    if version_tags.get(KIND_TAG) != LLM_KIND or not found.run_id:
        raise NotFoundError(
            f"{found.name}/{found.version} is not an LLM version.",
            hint="Register one with `shipyard llm register`; see classical versions with "
            "`shipyard models show`.",
        )
    spec = LLMSpec.from_dict(orjson.loads(_read_artifact(project, found.run_id, SPEC_FILE)))
    number = str(found.version)
    return _version(
        found.name,
        number,
        found.run_id,
        found.source or "",
        spec,
        version_tags.get(PROMPT_DIGEST_TAG, ""),
        found.description or "",
        sorted(found.aliases or []),
    )


def _read_artifact(project: Project, run_id: str, name: str) -> bytes:
    """The bytes of the run's ``model/<name>``, without MLflow's progress bar on stderr."""
    import os

    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR as BAR

    was = os.environ.get(BAR.name)
    os.environ[BAR.name] = "false"
    try:
        with tempfile.TemporaryDirectory() as folder, mlflow_errors(f"Run {run_id}"):
            path = project.tracking.client.download_artifacts(run_id, f"model/{name}", folder)
            return Path(path).read_bytes()
    finally:
        if was is None:
            os.environ.pop(BAR.name, None)
        else:
            os.environ[BAR.name] = was


def _version(
    name: str,
    number: str,
    run_id: str,
    uri: str,
    spec: LLMSpec,
    prompt_digest: str,
    description: str,
    aliases: list[str],
) -> LLMVersion:
    return LLMVersion(
        name=name,
        version=number,
        run_id=run_id,
        model_uri=uri,
        provider=spec.provider,
        model=spec.model,
        prompt=spec.prompt,
        prompt_version=spec.prompt_version,
        prompt_digest=prompt_digest,
        params=dict(spec.params),
        spec_digest=spec.digest,
        description=description,
        aliases=aliases,
        template=spec.template,
    )
