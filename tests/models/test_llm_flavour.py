"""The LLM flavour keeps the Predictor contract: a registered version loads by URI, renders
its prompt with a row's variables, and answers through the ChatCall it is bound to.

The ChatCall here is a pure function written for the test (the seam the gateway and the
judges fill with a provider pool); no provider is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shipyard.errors import RequestError
from shipyard.models import Predictor, load_model
from shipyard.models.llm import (
    FLAVOUR,
    LLMPredictor,
    LLMSpec,
    render,
    save_llm_model,
    template_variables,
)

SPEC = LLMSpec(
    provider="primary",
    model="small",
    prompt="support",
    prompt_version="2",
    template="You answer for {{company}}. Facts: {{facts}}",
    params={"temperature": 0},
)


def _echo(spec: LLMSpec, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    return f"{spec.model}|{params['temperature']}|" + " / ".join(m["content"] for m in messages)


def test_a_saved_version_loads_back_as_its_spec(tmp_path: Path) -> None:
    folder = save_llm_model(SPEC, tmp_path / "model")
    loaded = load_model(str(folder), name="assistant", version="2")
    assert loaded.flavour == FLAVOUR
    assert isinstance(loaded.model, LLMPredictor)
    assert loaded.model.spec == SPEC
    assert SPEC.variables == ["company", "facts"]
    assert SPEC.prompt_ref == "support/2"


def test_the_predictor_renders_each_row_and_answers_through_its_chat_call() -> None:
    predictor = LLMPredictor(SPEC, name="assistant", version="2").bound(_echo)
    assert isinstance(predictor, Predictor)
    assert predictor.inputs is None and predictor.outputs.classes is None
    assert predictor.metadata.flavour == FLAVOUR
    rows = pd.DataFrame(
        {"company": ["Acme", "Globex"], "facts": ["open 9-5", "closed"], "input": ["hi", "yo"]}
    )
    labels = predictor.predict(rows).labels
    assert list(labels) == [
        "small|0|You answer for Acme. Facts: open 9-5 / hi",
        "small|0|You answer for Globex. Facts: closed / yo",
    ]


def test_a_missing_variable_is_the_clients_error_naming_it() -> None:
    with pytest.raises(RequestError, match="'facts'"):
        render(SPEC, {"company": "Acme"})


def test_an_unbound_predictor_says_how_to_bind_it() -> None:
    with pytest.raises(RuntimeError, match="bound"):
        LLMPredictor(SPEC).predict(pd.DataFrame({"company": ["a"], "facts": ["b"]}))


def test_chat_templates_fill_every_message() -> None:
    spec = LLMSpec("p", "m", template=[{"role": "system", "content": "Be {{tone}}."}])
    assert template_variables(spec.template) == ["tone"]
    assert render(spec, {"tone": "brief"}, [{"role": "user", "content": "x"}]) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "x"},
    ]


def test_logging_a_spec_in_a_run_gives_a_loadable_runs_uri(tmp_path: Path) -> None:
    import mlflow

    from shipyard.config import load_config
    from shipyard.models.llm import LLMFlavour
    from shipyard.registry.tracking import Tracking

    (tmp_path / "shipyard.yaml").write_text("project: flavour\n")
    tracking = Tracking(load_config(tmp_path / "shipyard.yaml", environ={}))
    with mlflow.start_run(experiment_id=tracking.experiment_id()) as run:
        info = LLMFlavour().log(SPEC)
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    assert load_model(info.model_uri).model.spec == SPEC
