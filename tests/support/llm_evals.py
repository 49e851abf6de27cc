"""An LLM project for the judge-run tests: the assistant example wired to the stand-in.

``llm_project(tmp_path, provider)`` copies ``examples/assistant`` (its gold set and
prompts), points its one provider at the running stand-in and creates its database and
MLflow store. ``register_version(config, template)`` registers an LLM version with plain
MLflow (a run, the flavour's files logged inside it, a model version), so these tests
need nothing of the prompt registry.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from shipyard.config import Config, load_config
from shipyard.demo.provider import StandInProvider

__all__ = ["EXAMPLE", "GOOD", "WORSE", "llm_project", "register_version"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "assistant"
GOOD = (EXAMPLE / "prompts" / "v1.txt").read_text(encoding="utf-8").strip()  # with the facts
WORSE = (EXAMPLE / "prompts" / "v2.txt").read_text(encoding="utf-8").strip()  # without them


def llm_project(
    destination: Path,
    provider: StandInProvider,
    overrides: dict[str, Any] | None = None,
    *,
    gold: str | None = None,
) -> Config:
    """A copy of the assistant example on ``provider``, its stores created."""
    from shipyard.registry import Tracking
    from shipyard.store import Store

    root = destination / "assistant"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".shipyard"))
    text = (root / "shipyard.yaml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:8089/v1", provider.base_url)
    text = text.replace("max_retries: 2", "max_retries: 0").replace("  prices: prices.json\n", "")
    (root / "shipyard.yaml").write_text(text, encoding="utf-8")
    if gold is not None:
        (root / "gold.jsonl").write_text(gold, encoding="utf-8")
    config = load_config(root / "shipyard.yaml", environ={}, overrides=overrides)
    Store(config.db_url, actor="tester").close()
    Tracking(config)
    return config


def register_version(config: Config, template: str, *, name: str = "assistant") -> str:
    """Register an LLM version answering with ``template``; its version number."""
    import mlflow
    from mlflow import MlflowClient

    from shipyard.models.llm import LLMSpec, save_llm_model
    from shipyard.registry import Tracking

    tracking = Tracking(config)
    spec = LLMSpec(provider="standin", model="chat", template=template, params={"temperature": 0})
    with mlflow.start_run(experiment_id=tracking.experiment_id()) as run:
        # What LLMFlavour().log(spec) does, without its model-info lookup (which MLflow
        # 3.17 refuses on a file:// URI; see /work/notes/requests.md, H7).
        with tempfile.TemporaryDirectory(prefix="shipyard-llm-") as folder:
            local = save_llm_model(
                spec, Path(folder) / "model", run_id=run.info.run_id, artifact_path="model"
            )
            mlflow.log_artifacts(str(local), artifact_path="model")
        source = mlflow.get_artifact_uri("model")
    client = MlflowClient()
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, source, run_id=run.info.run_id)
    return str(version.version)
