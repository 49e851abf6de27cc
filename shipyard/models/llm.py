"""The LLM flavour: a registered version that is a provider, a model, a prompt version and
parameters, and the :class:`LLMPredictor` that answers with it.

An LLM version's files are an MLflow model folder whose ``MLmodel`` names the
``shipyard_llm`` flavour and whose ``llm.json`` holds the :class:`LLMSpec`. The spec
carries the prompt template as registered, so a version answers the same way however the
prompt registry's labels move later: rolling back a version rolls back its prompt.

The predictor renders the template with a request's variables; it does not talk to a
provider itself. Whoever holds one binds a :class:`ChatCall` (the gateway's provider pool,
a judge run, a test) with :meth:`LLMPredictor.bound`::

    predictor = load_llm(client, "assistant", "2").bound(pool.complete)
    predictor.predict(frame_of_variables).labels   # one completion text per row
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from shipyard.errors import NotFoundError, RequestError
from shipyard.jsonable import Record, canonical_json
from shipyard.models.flavours import Flavour, register_flavour
from shipyard.models.predictor import Batch, ModelMetadata, OutputSpec, Prediction

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.models.model import ModelInfo

    from shipyard.models.served import ArtifactCheck, ServedModel

__all__ = [
    "FLAVOUR",
    "SPEC_FILE",
    "ChatCall",
    "LLMFlavour",
    "LLMPredictor",
    "LLMSpec",
    "load_llm",
    "render",
    "save_llm_model",
    "served_llm",
    "template_variables",
]

FLAVOUR = "shipyard_llm"
SPEC_FILE = "llm.json"
# MLflow 3's prompt registry writes variables as {{name}}; so does Shipyard.
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class LLMSpec(Record):
    """What one LLM version is: where it answers, with which prompt and parameters.

    ``provider`` names an entry of ``llm.providers`` (the others are its fallbacks, in
    order); ``model`` is the model's name there. ``template`` is the prompt version's
    text: a string (the system message) or a list of ``{"role", "content"}`` messages,
    with ``{{variable}}`` placeholders. ``params`` are OpenAI request parameters
    (temperature, max_tokens, top_p, seed …) a request may not override.
    """

    provider: str
    model: str
    prompt: str = ""
    prompt_version: str = ""
    template: str | list[dict[str, str]] = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def variables(self) -> list[str]:
        """The template's variables, in order of first use."""
        return template_variables(self.template)

    @property
    def prompt_ref(self) -> str:
        """``name/version`` of the prompt, or "" without one."""
        return f"{self.prompt}/{self.prompt_version}" if self.prompt else ""

    @property
    def digest(self) -> str:
        """A digest of the whole spec: the cache key's version part."""
        import hashlib

        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LLMSpec:
        """The spec :meth:`to_dict` wrote."""
        return cls(
            provider=str(data["provider"]),
            model=str(data["model"]),
            prompt=str(data.get("prompt") or ""),
            prompt_version=str(data.get("prompt_version") or ""),
            template=data.get("template") or "",
            params=dict(data.get("params") or {}),
        )


def template_variables(template: str | Sequence[Mapping[str, str]]) -> list[str]:
    """The ``{{variable}}`` names in a text or chat template, in order of first use."""
    texts = [template] if isinstance(template, str) else [m.get("content", "") for m in template]
    names: dict[str, None] = {}
    for text in texts:
        for found in _VARIABLE.finditer(text):
            names.setdefault(found.group(1))
    return list(names)


def render(
    spec: LLMSpec,
    variables: Mapping[str, Any],
    messages: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The messages to send: the template filled with ``variables``, then ``messages``.

    A text template becomes the system message. A variable the template uses and the
    request does not give is the client's error (400 naming it); extra variables are
    ignored.
    """
    missing = [name for name in spec.variables if name not in variables]
    if missing:
        raise RequestError(
            f"the prompt {spec.prompt_ref or 'template'} needs the variable '{missing[0]}'; "
            f"send it in the body's 'variables' object (it needs: {', '.join(spec.variables)})"
        )

    def fill(text: str) -> str:
        return _VARIABLE.sub(lambda m: str(variables[m.group(1)]), text)

    rendered: list[dict[str, Any]] = []
    if isinstance(spec.template, str):
        if spec.template:
            rendered.append({"role": "system", "content": fill(spec.template)})
    else:
        rendered.extend({**m, "content": fill(m.get("content", ""))} for m in spec.template)
    rendered.extend(dict(m) for m in messages)
    return rendered


class ChatCall(Protocol):
    """Sends rendered messages to a version's provider; the completion's text."""

    def __call__(
        self, spec: LLMSpec, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> str: ...


@dataclass(frozen=True, eq=False)
class LLMPredictor:
    """A loaded LLM version: a :class:`~shipyard.models.predictor.Predictor`.

    ``predict`` takes rows of template variables (a DataFrame, one column per variable,
    and an optional ``input`` column sent as the user message) and gives one completion
    text per row, through the bound :class:`ChatCall`.
    """

    spec: LLMSpec
    name: str = ""
    version: str = ""
    uri: str = ""
    load_seconds: float = 0.0
    size_bytes: int = 0
    chat: ChatCall | None = None

    flavour: ClassVar[str] = FLAVOUR

    @property
    def metadata(self) -> ModelMetadata:
        """Name, version, flavour, source and load cost."""
        return ModelMetadata(
            self.name, self.version, FLAVOUR, self.uri, self.load_seconds, self.size_bytes
        )

    @property
    def inputs(self) -> None:
        """An LLM declares no columns: its template's variables are in :attr:`spec`."""
        return None

    @property
    def outputs(self) -> OutputSpec:
        """One text per row, no classes."""
        return OutputSpec()

    def bound(self, chat: ChatCall) -> LLMPredictor:
        """This predictor, answering through ``chat``."""
        return replace(self, chat=chat)

    def predict(self, batch: Batch) -> Prediction:
        """One completion per row of variables (rows of a DataFrame, or dicts in an array)."""
        if self.chat is None:
            raise RuntimeError("bind a ChatCall first: predictor.bound(pool.complete)")
        rows = _rows(batch)
        texts = []
        for row in rows:
            user = row.pop("input", None)
            messages = [{"role": "user", "content": str(user)}] if user is not None else []
            texts.append(self.chat(self.spec, render(self.spec, row, messages), self.spec.params))
        return Prediction(np.asarray(texts, dtype=object), None)


def _rows(batch: Batch) -> list[dict[str, Any]]:
    if isinstance(batch, np.ndarray):
        return [dict(row) for row in batch.tolist()]
    return [{str(k): v for k, v in row.items()} for row in batch.to_dict(orient="records")]


class LLMFlavour(Flavour):
    """Registered LLM versions: an ``llm.json`` spec in an MLflow model folder."""

    name = FLAVOUR
    packages = ()
    priority = 100
    native = True

    def matches(self, model: Any) -> bool:
        """An :class:`LLMSpec` is an LLM version to register."""
        return isinstance(model, LLMSpec)

    def log(self, model: Any, **fields: Any) -> ModelInfo:
        """Log ``model`` (an :class:`LLMSpec`) to the active run."""
        import tempfile

        import mlflow

        name = fields.get("name", "model")
        run = mlflow.active_run()
        run_id = run.info.run_id if run is not None else None
        with tempfile.TemporaryDirectory(prefix="shipyard-llm-") as folder:
            local = Path(folder) / name
            save_llm_model(model, local, run_id=run_id, artifact_path=name)
            mlflow.log_artifacts(str(local), artifact_path=name)
        if run_id is None:
            raise RuntimeError("log an LLM version inside an MLflow run (mlflow.start_run)")
        return mlflow.models.get_model_info(f"runs:/{run_id}/{name}")

    def load(self, uri: str) -> LLMPredictor:
        """The predictor of the model folder (or URI) ``uri``."""
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        parsed = urlparse(uri)
        folder = Path(url2pathname(parsed.path)) if parsed.scheme == "file" else Path(uri)
        return LLMPredictor(_read_spec(folder), uri=uri)

    def sample_output(self, model: Any, sample: Any) -> Any:
        """An LLM's output is text."""
        return np.asarray([""] * len(sample), dtype=object)


def save_llm_model(
    spec: LLMSpec,
    folder: Path,
    *,
    run_id: str | None = None,
    artifact_path: str | None = None,
) -> Path:
    """Write ``spec`` as an MLflow model folder (``MLmodel`` and ``llm.json``).

    ``run_id`` and ``artifact_path`` (when logged to a run) make the model's
    ``runs:/<run_id>/<artifact_path>`` URI known to MLflow's model info.
    """
    import uuid

    folder.mkdir(parents=True, exist_ok=True)
    (folder / SPEC_FILE).write_bytes(canonical_json(spec.to_dict()))
    logged = f"run_id: {run_id}\nartifact_path: {artifact_path}\n" if run_id else ""
    mlmodel = (
        f"{logged}model_uuid: {uuid.uuid4().hex}\n"
        "flavors:\n"
        f"  {FLAVOUR}:\n"
        f"    spec: {SPEC_FILE}\n"
        f"    provider: {spec.provider}\n"
        f"    model: {spec.model}\n"
        f"    prompt: '{spec.prompt_ref}'\n"
        "    shipyard_flavour_version: 1\n"
    )
    (folder / "MLmodel").write_text(mlmodel)
    return folder


def _read_spec(folder: Path) -> LLMSpec:
    import orjson

    path = folder / SPEC_FILE
    if not path.is_file():
        raise NotFoundError(
            f"{folder} is not an LLM version: it has no {SPEC_FILE}.",
            hint="Register LLM versions with `shipyard llm register`.",
        )
    return LLMSpec.from_dict(orjson.loads(path.read_bytes()))


def load_llm(client: MlflowClient, name: str, version: str) -> LLMPredictor:
    """The registered LLM version ``name/version``, unbound."""
    from shipyard.models.loading import load_model

    started = time.perf_counter()
    loaded = load_model(f"models:/{name}/{version}", name=name, version=str(version))
    if not isinstance(loaded.model, LLMPredictor):
        raise NotFoundError(
            f"{name}/{version} is a {loaded.flavour} model, not an LLM version.",
            hint="Serve it with the classical protocols, or register an LLM version.",
        )
    return replace(
        loaded.model,
        name=name,
        version=str(version),
        load_seconds=time.perf_counter() - started,
        size_bytes=loaded.size_bytes,
    )


def served_llm(
    client: MlflowClient, name: str, version: str, *, check: ArtifactCheck | None = None
) -> ServedModel:
    """``name/version`` as a :class:`~shipyard.models.served.ServedModel` whose ``model``
    is its :class:`LLMPredictor`: what the hot-swap slot and router hold for the gateway.

    ``check`` (the signed-card check) is not run on LLM versions yet: their one file is
    the spec, which the card's digest covers at promotion.
    """
    from shipyard.models.served import ServedModel
    from shipyard.models.signature import InputSpec

    predictor = load_llm(client, name, version)
    return ServedModel(
        name=name,
        version=str(version),
        flavour=FLAVOUR,
        model=predictor,
        spec=InputSpec.from_columns([("input", "string")]),
        needs_frame=False,
        load_seconds=predictor.load_seconds,
        size_bytes=predictor.size_bytes,
        uri=predictor.uri,
    )


register_flavour(LLMFlavour())
