"""The resolved configuration of one project: every section, and where the project lives."""

from __future__ import annotations

from pathlib import Path, PurePath

from pydantic import Field, field_validator, model_validator

from shipyard.config._section import Section
from shipyard.config.cost import CostSettings
from shipyard.config.ct import ContinuousTrainingSettings
from shipyard.config.data import DataSettings
from shipyard.config.delivery import DeliverySettings
from shipyard.config.evaluation import EvaluationSettings
from shipyard.config.experiments import ExperimentSettings
from shipyard.config.features import FeatureSettings
from shipyard.config.governance import PromotionSettings, SigningSettings
from shipyard.config.kpis import KpiSettings
from shipyard.config.labels import LabelSettings
from shipyard.config.llm import LlmSettings
from shipyard.config.model import ModelSettings
from shipyard.config.monitoring import MonitoringSettings
from shipyard.config.pii import PiiSettings
from shipyard.config.security import SecuritySettings
from shipyard.config.serving import ServingSettings
from shipyard.config.storage import StorageSettings
from shipyard.config.train import TrainSettings
from shipyard.config.ui import UiSettings
from shipyard.errors import ConfigError

__all__ = ["WORKSPACE_DIRNAME", "Config"]

WORKSPACE_DIRNAME = ".shipyard"


class Config(Section):
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
    artifact_root: str = Field(
        ".shipyard/artifacts",
        description="Where models, dataset snapshots, reports and audit checkpoints are "
        "stored: a folder (relative to the project) or a bucket URL, s3://bucket/prefix "
        "(gs:// and az:// with the gcs / azure extras). Credentials come from the "
        "environment or profile, never this file.",
    )
    storage: StorageSettings = Field(default_factory=StorageSettings)  # type: ignore[arg-type]
    model: ModelSettings = Field(default_factory=ModelSettings)  # type: ignore[arg-type]
    train: TrainSettings = Field(default_factory=TrainSettings)  # type: ignore[arg-type]
    data: DataSettings = Field(default_factory=DataSettings)  # type: ignore[arg-type]
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)  # type: ignore[arg-type]
    promotion: PromotionSettings = Field(default_factory=PromotionSettings)  # type: ignore[arg-type]
    signing: SigningSettings = Field(default_factory=SigningSettings)  # type: ignore[arg-type]
    security: SecuritySettings = Field(default_factory=SecuritySettings)  # type: ignore[arg-type]
    serving: ServingSettings = Field(default_factory=ServingSettings)  # type: ignore[arg-type]
    labels: LabelSettings = Field(default_factory=LabelSettings)  # type: ignore[arg-type]
    pii: PiiSettings = Field(default_factory=PiiSettings)  # type: ignore[arg-type]
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)  # type: ignore[arg-type]
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)  # type: ignore[arg-type]
    experiments: ExperimentSettings = Field(default_factory=ExperimentSettings)  # type: ignore[arg-type]
    ct: ContinuousTrainingSettings = Field(default_factory=ContinuousTrainingSettings)  # type: ignore[arg-type]
    cost: CostSettings = Field(default_factory=CostSettings)  # type: ignore[arg-type]
    features: FeatureSettings = Field(default_factory=FeatureSettings)  # type: ignore[arg-type]
    llm: LlmSettings = Field(default_factory=LlmSettings)  # type: ignore[arg-type]
    kpis: list[KpiSettings] = Field(
        default_factory=list,
        description="Business KPIs: SQL over the team's own tables, shown beside model quality.",
    )
    ui: UiSettings = Field(default_factory=UiSettings)  # type: ignore[arg-type]
    root: Path = Field(
        Path("."),
        exclude=True,
        description="Project folder: the folder holding shipyard.yaml (set automatically).",
    )

    @field_validator("kpis")
    @classmethod
    def _unique_kpi_names(cls, kpis: list[KpiSettings]) -> list[KpiSettings]:
        """Panels and ``monitor kpis`` key results by name, so two KPIs cannot share one."""
        seen: set[str] = set()
        for kpi in kpis:
            if kpi.name in seen:
                raise ValueError(f"two KPIs are named {kpi.name!r}; give each a unique name")
            seen.add(kpi.name)
        return kpis

    @model_validator(mode="after")
    def _cost_kpi_is_declared(self) -> Config:
        """``ct.cost_kpi`` names one of ``kpis``: caught at load, not when CT first runs."""
        wanted = self.ct.cost_kpi
        if wanted is not None and wanted not in {kpi.name for kpi in self.kpis}:
            names = ", ".join(kpi.name for kpi in self.kpis) or "none are declared"
            raise ValueError(f"ct.cost_kpi {wanted!r} is not a KPI in kpis ({names})")
        return self

    @field_validator("artifact_root", mode="before")
    @classmethod
    def _path_as_text(cls, value: object) -> object:
        """A ``Path`` given in code (or by a CLI flag) is kept as its text."""
        return str(value) if isinstance(value, PurePath) else value

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
    def shared_database(self) -> bool:
        """Whether the database is shared (anything but a local SQLite file)."""
        return not self.db_url.startswith("sqlite:")

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment training runs are logged to."""
        return self.train.experiment or self.project

    def resolve(self, path: Path | str) -> Path:
        """A local path from the config made absolute against the project folder.

        A bucket URL is a :class:`ConfigError`: read it through
        ``shipyard.storage.artifact_location`` / ``log_location`` instead.
        """
        if isinstance(path, str) and "://" in path:
            raise ConfigError(
                f"{path} is a bucket URL, and this step needs a local folder.",
                hint="Use a local path for this setting, or a command that reads buckets.",
            )
        path = Path(path)
        return path if path.is_absolute() else (self.root / path).resolve()

    @property
    def artifact_path(self) -> Path:
        """The artifact root as an absolute local path (a ConfigError for a bucket URL)."""
        return self.resolve(self.artifact_root)
