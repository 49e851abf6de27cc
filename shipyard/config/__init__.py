"""The one place that reads configuration.

Settings resolve as defaults < ``shipyard.yaml`` < ``SHIPYARD_*`` environment < CLI
flags into one immutable, typed :class:`Config` that is passed in, never read from
globals. Every setting declares its type, default and help text; ``docs/config.md``
and the file written by ``shipyard init`` are generated from those declarations
(:mod:`shipyard.config.reference`).

One module per section of ``shipyard.yaml``:

- :mod:`~shipyard.config.model`, :mod:`~shipyard.config.train`,
  :mod:`~shipyard.config.evaluation` (the scorecard and its criteria),
  :mod:`~shipyard.config.governance` (promotion and signing),
  :mod:`~shipyard.config.serving`, :mod:`~shipyard.config.monitoring`,
  :mod:`~shipyard.config.delivery`, :mod:`~shipyard.config.ct`,
  :mod:`~shipyard.config.labels` (label conflicts), :mod:`~shipyard.config.pii` (PII tags),
  :mod:`~shipyard.config.storage` (reaching a bucket);
- :mod:`~shipyard.config.root`: the :class:`Config` that holds them all;
- :mod:`~shipyard.config.loading`: :func:`load_config` and the precedence above.
"""

from __future__ import annotations

from shipyard.config.cost import CostSettings
from shipyard.config.ct import ContinuousTrainingSettings
from shipyard.config.data import DataSettings
from shipyard.config.delivery import DeliverySettings
from shipyard.config.evaluation import (
    CalibrationCriterion,
    EvaluationSettings,
    FairnessCriterion,
    LatencyCriterion,
    MetricCriterion,
    Scorecard,
    SliceSpec,
)
from shipyard.config.experiments import ExperimentSettings
from shipyard.config.features import (
    EntitySettings,
    FeatureSettings,
    FeatureSourceSettings,
    FeatureViewSettings,
    OnlineStoreSettings,
    SkewSettings,
)
from shipyard.config.governance import PromotionSettings, SigningSettings
from shipyard.config.kpis import KpiSettings
from shipyard.config.labels import LabelSettings
from shipyard.config.llm import (
    CacheSettings,
    CapPolicySettings,
    CapSettings,
    JudgeSettings,
    LlmBands,
    LlmSettings,
    ProviderSettings,
)
from shipyard.config.loading import (
    CONFIG_FILENAME,
    ENV_NESTING,
    ENV_PREFIX,
    find_config_file,
    load_config,
)
from shipyard.config.model import ModelSettings
from shipyard.config.monitoring import AlertRoute, BandSettings, MonitoringSettings
from shipyard.config.pii import PiiSettings
from shipyard.config.root import WORKSPACE_DIRNAME, Config
from shipyard.config.security import SecuritySettings
from shipyard.config.sequential import SequentialSettings
from shipyard.config.serving import ServingSettings
from shipyard.config.storage import StorageSettings
from shipyard.config.train import TrainSettings
from shipyard.config.ui import UiSettings

__all__ = [
    "CONFIG_FILENAME",
    "ENV_NESTING",
    "ENV_PREFIX",
    "WORKSPACE_DIRNAME",
    "AlertRoute",
    "BandSettings",
    "CacheSettings",
    "CalibrationCriterion",
    "CapPolicySettings",
    "CapSettings",
    "Config",
    "ContinuousTrainingSettings",
    "CostSettings",
    "DataSettings",
    "DeliverySettings",
    "EntitySettings",
    "EvaluationSettings",
    "ExperimentSettings",
    "FairnessCriterion",
    "FeatureSettings",
    "FeatureSourceSettings",
    "FeatureViewSettings",
    "JudgeSettings",
    "KpiSettings",
    "LabelSettings",
    "LatencyCriterion",
    "LlmBands",
    "LlmSettings",
    "MetricCriterion",
    "ModelSettings",
    "MonitoringSettings",
    "OnlineStoreSettings",
    "PiiSettings",
    "PromotionSettings",
    "ProviderSettings",
    "Scorecard",
    "SecuritySettings",
    "SequentialSettings",
    "ServingSettings",
    "SigningSettings",
    "SkewSettings",
    "SliceSpec",
    "StorageSettings",
    "TrainSettings",
    "UiSettings",
    "find_config_file",
    "load_config",
]
