"""The one place that reads configuration.

Settings resolve as defaults < ``shipyard.yaml`` < ``SHIPYARD_*`` environment < CLI
flags into one immutable, typed :class:`Config` that is passed in, never read from
globals. Every setting declares its type, default and help text; ``docs/config.md``
and the file written by ``shipyard init`` are generated from those declarations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.errors import ConfigError

__all__ = [
    "CONFIG_FILENAME",
    "WORKSPACE_DIRNAME",
    "AlertRoute",
    "BandSettings",
    "CalibrationCriterion",
    "Config",
    "ContinuousTrainingSettings",
    "DeliverySettings",
    "EvaluationSettings",
    "FairnessCriterion",
    "LatencyCriterion",
    "MetricCriterion",
    "ModelSettings",
    "MonitoringSettings",
    "PromotionSettings",
    "Scorecard",
    "ServingSettings",
    "SigningSettings",
    "SliceSpec",
    "TrainSettings",
    "find_config_file",
    "load_config",
]

CONFIG_FILENAME = "shipyard.yaml"
WORKSPACE_DIRNAME = ".shipyard"
ENV_PREFIX = "SHIPYARD_"
ENV_NESTING = "__"


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ModelSettings(_Settings):
    """What the model is and who owns it; shown on every model card."""

    name: str = Field("model", description="Registered model name in the registry.")
    purpose: str = Field(
        "", description="What the model is for, in one or two sentences (model card)."
    )
    owner: str = Field("", description="Team or person who answers for the model.")
    task: Literal["classification", "regression"] = Field(
        "classification",
        description="Learning task: classification or regression (model card, evaluation).",
    )


class TrainSettings(_Settings):
    """How ``shipyard train`` finds the training function and its data."""

    entrypoint: str | None = Field(
        None,
        description='Training function as "module:function", called as train(ctx) -> model.',
    )
    data: Path | None = Field(
        None, description="Training data: a CSV or Parquet file, or a folder of them."
    )
    validation_data: Path | None = Field(
        None, description="Optional validation data, passed to train(ctx) as ctx.validation."
    )
    target: str | None = Field(
        None, description="Label column; the model's inputs are every other column."
    )
    data_schema: Path | None = Field(
        None,
        alias="schema",
        description="Pandera schema (YAML) the data must satisfy before training.",
    )
    seed: int = Field(42, description="Random seed handed to train(ctx) as ctx.seed.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Hyper-parameters handed to train(ctx) as ctx.params (-p key=value overrides).",
    )
    experiment: str | None = Field(
        None, description="MLflow experiment name; defaults to the project name."
    )


class SliceSpec(_Settings):
    """Rows a criterion applies to: ``column == value``, or a pandas query expression."""

    column: str | None = Field(None, description="Column to select on.")
    value: Any = Field(None, description="Value the column must equal.")
    query: str | None = Field(None, description='pandas query, e.g. segment == "smb".')

    @model_validator(mode="after")
    def _one_form(self) -> SliceSpec:
        if (self.query is None) == (self.column is None):
            raise ValueError("a slice needs either query or column (with value), not both")
        return self

    @property
    def label(self) -> str:
        """How the slice is shown in tables."""
        return self.query if self.query is not None else f"{self.column} == {self.value!r}"


class MetricCriterion(_Settings):
    """A metric, optionally on a slice, with bounds and a required margin over the champion."""

    metric: str = Field(description="Metric name, e.g. roc_auc, recall, rmse.")
    slice: SliceSpec | None = Field(None, description="Evaluate on these rows only.")
    min: float | None = Field(None, description="Floor: the candidate's value must be ≥ this.")
    max: float | None = Field(None, description="Ceiling: the candidate's value must be ≤ this.")
    min_margin: float | None = Field(
        None,
        description="Required improvement over the champion (in the metric's better "
        "direction); skipped when there is no champion.",
    )


class CalibrationCriterion(_Settings):
    """Expected calibration error ceiling (classifiers with probabilities)."""

    max_ece: float = Field(description="The candidate's ECE must be ≤ this.")
    bins: int = Field(10, ge=2, description="Equal-width probability bins.")


class FairnessCriterion(_Settings):
    """Largest allowed gap of a metric across the values of a protected column."""

    metric: str = Field(description="Metric compared across groups, e.g. recall.")
    column: str = Field(description="Protected column whose values form the groups.")
    max_gap: float = Field(description="max(group metric) − min(group metric) must be ≤ this.")
    min_rows: int = Field(20, ge=1, description="Groups with fewer rows are ignored.")


class LatencyCriterion(_Settings):
    """In-process predict latency on golden rows, and model load time."""

    batch_size: int = Field(64, ge=1, description="The larger batch size measured.")
    repeats: int = Field(200, ge=10, description="Timed predict calls per batch size.")
    max_p50_ms: float | None = Field(None, description="Ceiling on p50 at batch size 1.")
    max_p95_ms: float | None = Field(None, description="Ceiling on p95 at batch size 1.")
    max_p99_ms: float | None = Field(None, description="Ceiling on p99 at batch size 1.")
    max_batch_p99_ms: float | None = Field(None, description="Ceiling on p99 at batch_size rows.")
    max_load_seconds: float | None = Field(None, description="Ceiling on model load time.")


class Scorecard(_Settings):
    """Every criterion a version must pass before promotion."""

    primary: MetricCriterion | None = Field(
        None, description="The primary metric: floor and margin over the champion."
    )
    metrics: list[MetricCriterion] = Field(
        default_factory=list, description="Secondary metrics, each optionally on a slice."
    )
    calibration: CalibrationCriterion | None = Field(None, description="ECE ceiling.")
    fairness: list[FairnessCriterion] = Field(
        default_factory=list, description="Metric gaps across protected groups."
    )
    latency: LatencyCriterion | None = Field(None, description="Predict latency and load time.")
    max_size_mb: float | None = Field(
        None, description="Model size on disk ceiling (MB, 1 MB = 1,000,000 bytes)."
    )


class EvaluationSettings(_Settings):
    """How ``shipyard evaluate`` scores a version before promotion."""

    golden: Path | None = Field(
        None, description="Golden set: frozen CSV/Parquet data every version is scored on."
    )
    scorecard: Scorecard | Path | None = Field(
        None, description="The scorecard, inline or as the path of a YAML file holding it."
    )
    reports: Path = Field(
        Path(".shipyard/reports"), description="Where HTML evaluation reports are written."
    )


class PromotionSettings(_Settings):
    """Rules for moving the champion and challenger aliases."""

    approval: Literal["none", "required"] = Field(
        "none", description="required: promotion to champion needs `shipyard approve` first."
    )
    allow_self_approval: bool = Field(
        False, description="Whether whoever trained a version may approve it."
    )


class SigningSettings(_Settings):
    """Ed25519 keys that sign model cards on promotion."""

    private_key: Path | None = Field(
        None,
        description="Private key file, kept outside the repository; default "
        "~/.shipyard/keys/<project>.pem.",
    )
    public_key: Path = Field(
        Path("shipyard.pub"), description="Public key file, committed with the project."
    )


class ServingSettings(_Settings):
    """The inference server and its prediction log; `shipyard serve` flags override."""

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port.")
    workers: int = Field(1, ge=1, description="Server processes sharing the port.")
    max_batch_size: int = Field(
        1, ge=1, description="Coalesce concurrent requests up to this many rows (1 = off)."
    )
    max_wait_ms: float = Field(
        0.0,
        ge=0.0,
        description="Longest a request waits for company; 0 batches only what queued while "
        "the model was busy.",
    )
    sticky_key: str | None = Field(
        None,
        pattern=r"^(header|input):\S+$",
        description="Routing key that keeps a caller on one version: header:<name> or "
        "input:<column>. Unset: each request draws at random.",
    )
    shadow_queue: int = Field(
        1000, ge=1, description="Shadow predictions that may wait; beyond this they are dropped."
    )
    max_body_mb: float = Field(10.0, gt=0, description="Largest request body (larger: 413).")
    poll_seconds: float = Field(
        0.5, gt=0, le=5, description="How often each worker checks for alias and traffic changes."
    )
    logs: Path = Field(
        Path(".shipyard/logs"),
        description="Root of the prediction and label logs (Parquet, partitioned by model "
        "and date).",
    )
    log_roll_rows: int = Field(10_000, ge=1, description="Rows per prediction-log file at most.")
    log_roll_seconds: float = Field(
        5.0, gt=0, description="A log file is written at least this often while traffic flows."
    )


Level = Literal["inspect", "retrain", "pause"]


class BandSettings(_Settings):
    """Inspect / retrain / pause levels of one signal (a score at or above a level breaches it)."""

    inspect: float = Field(ge=0, description="Level that asks a person to look.")
    retrain: float = Field(ge=0, description="Level that requests a retrain.")
    pause: float = Field(ge=0, description="Level that triggers the pause action.")
    method: str | None = Field(
        None, description="Drift method for this feature (psi, kl, js, wasserstein, ks, …)."
    )


class AlertRoute(_Settings):
    """Where alerts go: a JSON webhook, a Slack incoming webhook, or PagerDuty Events v2."""

    kind: Literal["webhook", "slack", "pagerduty"] = Field(description="Payload format.")
    url: str = Field(
        description="Endpoint; for PagerDuty usually https://events.pagerduty.com/v2/enqueue."
    )
    routing_key: str | None = Field(
        None,
        description="PagerDuty integration key (or ${ENV_VAR} to read it from the environment).",
    )
    min_level: Level = Field("inspect", description="Lowest level this route receives.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers, e.g. an Authorization token."
    )


class MonitoringSettings(_Settings):
    """Drift and performance monitoring, threshold bands, and where alerts go."""

    window: str = Field(
        "last:5000",
        description="Default window: last:N predictions, since:6h (a duration back from now), "
        "or range:START/END (ISO times).",
    )
    reference: str | None = Field(
        None, description="Reference snapshot digest; default: the version's training snapshot."
    )
    include_shadow: bool = Field(False, description="Count shadow predictions in the window.")
    min_rows: int = Field(
        200,
        ge=1,
        description="Fewest predictions in the window before feature drift may alert "
        "(small samples inflate PSI and KL).",
    )
    min_labelled: int = Field(
        50, ge=1, description="Fewest labelled predictions before performance may alert."
    )
    bands: dict[str, BandSettings] | Path = Field(
        default_factory=dict,
        description="Per-feature band overrides (feature name → levels), inline or in a "
        "YAML file; `shipyard monitor calibrate --write` writes bands.yaml.",
    )
    routes: list[AlertRoute] = Field(default_factory=list, description="Alert routes.")
    pause_action: Literal["none", "fallback"] = Field(
        "none",
        description="What a pause-level breach does: nothing more than alert, or send all "
        "traffic to fallback_version.",
    )
    fallback_version: str | None = Field(
        None, description="Version that takes all traffic on a pause (pause_action: fallback)."
    )
    every_seconds: float | None = Field(
        None, gt=0, description="The agent runs the monitor this often; null: only by hand."
    )
    retries: int = Field(4, ge=0, description="Delivery attempts after the first, per route.")
    backoff_seconds: float = Field(
        1.0, ge=0, description="First retry delay; doubles on each further retry."
    )


class DeliverySettings(_Settings):
    """Roll-outs: step defaults and the guardrails the agent checks at every poll."""

    poll_seconds: float = Field(
        1.0, gt=0, description="How often the agent checks roll-outs, triggers and schedules."
    )
    step_seconds: float = Field(
        600.0, ge=0, description="Shortest time per roll-out step (rollout start --step-duration)."
    )
    min_requests: int = Field(
        500, ge=0, description="Fewest candidate requests before a step may pass."
    )
    min_samples: int = Field(
        100, ge=1, description="Fewest requests (or labels) per side before a guardrail can pass."
    )
    alpha: float = Field(
        0.05, gt=0, lt=1, description="False-alarm rate of each always-valid guardrail test."
    )
    error_margin: float = Field(
        0.01, ge=0, description="Extra error share the candidate may have over the champion."
    )
    latency_margin: float = Field(
        0.25, ge=0, description="Extra mean latency allowed, as a share of the champion's."
    )
    p99_margin: float = Field(
        0.5, ge=0, description="Extra p99 latency allowed, as a share of the champion's p99."
    )
    max_prediction_drift: float = Field(
        0.2,
        ge=0,
        description="Largest prediction drift of candidate vs champion in a step "
        "(PSI of the predicted values).",
    )
    max_disagreement: float = Field(
        0.2, ge=0, le=1, description="Largest share of shadow predictions that differ from live."
    )
    quality_margin: float = Field(
        0.03,
        ge=0,
        description="Extra share of wrong labelled predictions the candidate may have "
        "(classifiers; once labels arrive).",
    )


class ContinuousTrainingSettings(_Settings):
    """Continuous training: what triggers a retrain, the guards against noise, the gates."""

    enabled: bool = Field(False, description="Let the agent retrain on triggers by itself.")
    on_drift: bool = Field(True, description="Retrain when monitoring raises retrain_requested.")
    schedule: str | None = Field(
        None, description='Cron schedule (UTC) for retraining, e.g. "0 3 * * 1".'
    )
    on_new_data: bool = Field(
        False, description="Retrain when train.data has a new snapshot digest."
    )
    data_check_seconds: float = Field(
        60.0, gt=0, description="How often the agent looks for new data at train.data."
    )
    cooldown_seconds: float = Field(
        3600.0, ge=0, description="Least time between the starts of two retrains."
    )
    min_new_rows: int = Field(
        0, ge=0, description="Fewest rows train.data must have gained since the champion trained."
    )
    rows_after_trigger: int = Field(
        0,
        ge=0,
        description="After a drift trigger, wait until train.data gained this many rows, so "
        "the retrain learns from data after the change (pair with window_rows).",
    )
    min_performance_loss: float | None = Field(
        0.02,
        ge=0,
        description="Skip a retrain when the champion's measured (or estimated) primary "
        "metric fell by less than this; null never skips.",
    )
    window_rows: int | None = Field(
        None, ge=1, description="Retrain on the newest N rows of train.data; null: all of it."
    )
    validation_share: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="With window_rows, the newest share of the window held out for validation.",
    )
    recent_labelled: int = Field(
        1000,
        ge=0,
        description="Labelled production rows (newest) the candidate and champion are "
        "scored on; 0 skips that comparison.",
    )
    max_regression: float = Field(
        0.0,
        ge=0,
        description="How much worse than the champion the candidate's primary metric may "
        "be on recent labelled production data.",
    )
    step_seconds: float | None = Field(
        None,
        ge=0,
        description="Shortest time per roll-out step (shadow and canary); "
        "null: delivery.step_seconds.",
    )
    min_requests: int | None = Field(
        None, ge=0, description="Fewest candidate requests per step; null: delivery.min_requests."
    )
    canary_steps: list[float] = Field(
        default_factory=lambda: [10.0, 50.0, 100.0],
        description="Canary traffic percentages after the shadow step.",
    )


class Config(_Settings):
    """Resolved Shipyard configuration for one project."""

    project: str = Field("shipyard", description="Project name.")
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL of the control-plane and MLflow database; "
            "default sqlite:///<project>/.shipyard/shipyard.db. "
            "Teams use postgresql+psycopg://user@host/db."
        ),
    )
    artifact_root: Path = Field(
        Path(".shipyard/artifacts"),
        description="Where models, dataset snapshots and reports are stored.",
    )
    model: ModelSettings = Field(default_factory=ModelSettings)  # type: ignore[arg-type]
    train: TrainSettings = Field(default_factory=TrainSettings)  # type: ignore[arg-type]
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)  # type: ignore[arg-type]
    promotion: PromotionSettings = Field(default_factory=PromotionSettings)  # type: ignore[arg-type]
    signing: SigningSettings = Field(default_factory=SigningSettings)  # type: ignore[arg-type]
    serving: ServingSettings = Field(default_factory=ServingSettings)  # type: ignore[arg-type]
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)  # type: ignore[arg-type]
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)  # type: ignore[arg-type]
    ct: ContinuousTrainingSettings = Field(default_factory=ContinuousTrainingSettings)  # type: ignore[arg-type]
    root: Path = Field(
        Path("."),
        exclude=True,
        description="Project folder: the folder holding shipyard.yaml (set automatically).",
    )

    @property
    def workspace(self) -> Path:
        """The project's ``.shipyard/`` folder."""
        return self.root / WORKSPACE_DIRNAME

    @property
    def db_url(self) -> str:
        """The database URL with the SQLite default applied."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.workspace / 'shipyard.db').as_posix()}"

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment training runs are logged to."""
        return self.train.experiment or self.project

    def resolve(self, path: Path) -> Path:
        """A path from the config made absolute against the project folder."""
        return path if path.is_absolute() else (self.root / path).resolve()

    @property
    def artifact_path(self) -> Path:
        """The artifact root as an absolute path."""
        return self.resolve(self.artifact_root)


def find_config_file(start: Path | None = None) -> Path | None:
    """Nearest ``shipyard.yaml`` in ``start`` or its parents (``SHIPYARD_CONFIG`` wins)."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


def load_config(
    path: Path | str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    require_file: bool = False,
) -> Config:
    """Resolve defaults < file < ``SHIPYARD_*`` environment < ``overrides``.

    ``overrides`` use dotted keys (``{"train.seed": 7}``); ``None`` values are ignored so
    CLI flags that were not given do not override anything.
    """
    file = Path(path) if path is not None else find_config_file()
    if file is not None and not file.is_file():
        raise ConfigError(
            f"Config file {file} does not exist.",
            hint="Run `shipyard init` to create one, or pass --config PATH.",
        )
    if file is None and require_file:
        raise ConfigError(
            f"No {CONFIG_FILENAME} found in {Path.cwd()} or its parents.",
            hint="Run `shipyard init` in your project folder, or pass --config PATH.",
        )
    data: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if file is not None:
        data, lines = _read_yaml(file)
    for dotted, value in _environment(environ if environ is not None else os.environ):
        _set_dotted(data, dotted, value)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    root = file.resolve().parent if file is not None else Path.cwd().resolve()
    data["root"] = root
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, file, lines) from None


def _read_yaml(file: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        text = file.read_text(encoding="utf-8")
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{file} is not valid YAML{where}: {getattr(exc, 'problem', exc)}.",
            hint="Fix the YAML syntax (indentation, colons, quotes) and try again.",
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {file}: {exc.strerror}.", hint="Check the path.") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file} must hold a mapping of settings, not a {type(data).__name__}.",
            hint="Start from the file `shipyard init` writes.",
        )
    return data, dict(_key_lines(node, ()))


def _key_lines(
    node: yaml.Node | None, prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], int]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            yield path, key.start_mark.line + 1
            yield from _key_lines(value, path)


def _environment(environ: Mapping[str, str]) -> Iterator[tuple[str, Any]]:
    skip = {f"{ENV_PREFIX}CONFIG", f"{ENV_PREFIX}USER"}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in skip:
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace(ENV_NESTING, ".")
        # YAML parsing gives numbers, booleans and {..} mappings their types.
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            value = raw
        yield dotted, value


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    target = data
    for key in parents:
        child = target.get(key)
        if not isinstance(child, dict):
            child = {}
            target[key] = child
        target = child
    target[leaf] = value


def _config_error(
    exc: ValidationError, file: Path | None, lines: Mapping[tuple[str, ...], int]
) -> ConfigError:
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(top level)"
        line = lines.get(loc) or lines.get(loc[:-1])
        where = f" ({file}, line {line})" if file is not None and line else ""
        problems.append(f"  {key}{where}: {error['msg']}")
    source = str(file) if file is not None else "configuration"
    return ConfigError(
        f"Invalid {source}:\n" + "\n".join(problems),
        hint="See docs/config.md for every setting, its type and default.",
    )
