"""LLM versions in the model registry: pinned prompt versions, and the classical governance
(approve, promote, sign, roll back) working on them unchanged.

Everything is real: the project's SQLite database, MLflow's registry and prompt registry,
the audit log, signing keys. No LLM provider is called (registration and promotion never
talk to one), so the provider stand-in is not needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Config
from shipyard.errors import ConfigError, Forbidden, NotFoundError, ShipyardError
from shipyard.llm.prompts import label_prompt, register_prompt
from shipyard.llm.registry import (
    LLM_KIND,
    check_params,
    parse_params,
    register_llm,
    show_llm,
)
from shipyard.models.llm import load_llm, served_llm
from shipyard.project import Project
from shipyard.registry.refs import ModelRef
from shipyard.store import EventKind
from tests.support import copy_workspace, load, project_of

YAML = """\
project: llm-registry-test
model:
  name: assistant
  task: llm
  purpose: Answers support questions.
  owner: tests
llm:
  prompt: support
  providers:
    - name: primary
      base_url: http://127.0.0.1:9/v1
    - name: backup
      base_url: http://127.0.0.1:8/v1
"""

V1 = "You help with {{product}}."
V2 = [{"role": "system", "content": "Be brief about {{product}}."}]


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with prompt support v1 (production) and v2, copied by each test."""
    root = tmp_path_factory.mktemp("llm-template")
    (root / "shipyard.yaml").write_text(YAML)
    project = project_of(load(root))
    register_prompt(project, "support", V1, "first")
    register_prompt(project, "support", V2, "shorter")
    label_prompt(project, "support", "production", "1", "first release")
    return root


def _config(template: Path, root: Path, extra: str = "") -> Config:
    copy_workspace(template, root)
    if extra:
        (root / "shipyard.yaml").write_text(YAML + extra)
    return load(root)


def _run_json(project: Project, run_id: str, artifact: str) -> Any:
    path = project.tracking.client.download_artifacts(run_id, artifact, str(project.config.root))
    return json.loads(Path(path).read_text())


def test_a_version_pins_its_prompt_version(_template: Path, tmp_path: Path) -> None:
    project = project_of(_config(_template, tmp_path / "p"))
    first = register_llm(
        project,
        provider="primary",
        model="gpt-test",
        prompt="support@production",
        params={"temperature": 0, "max_tokens": 64},
        description="first answers",
    )
    assert (first.name, first.version) == ("assistant", "1")
    assert (first.prompt, first.prompt_version, first.template) == ("support", "1", V1)

    client = project.tracking.client
    version = client.get_model_version("assistant", "1")
    assert version.tags["shipyard.kind"] == LLM_KIND
    assert version.tags["shipyard.prompt"] == "support/1"
    assert version.tags["shipyard.trained_by"] == "tester"
    assert version.description == "first answers"
    assert version.run_id
    run = client.get_run(version.run_id)
    assert run.data.params["provider"] == "primary"
    assert run.data.params["prompt"] == "support/1"
    assert run.data.params["prompt_asked"] == "support@production"
    assert run.data.params["param.temperature"] == "0"
    assert run.data.tags["shipyard.kind"] == LLM_KIND

    card = _run_json(project, version.run_id, "model_card.json")
    assert (card["task"], card["flavour"]) == ("llm", "shipyard_llm")
    assert card["data"]["prompt"] == "support/1" and card["data"]["template"] == V1
    assert card["params"] == {"temperature": 0, "max_tokens": 64}
    assert {"name": "product", "type": "string"} in card["inputs"]

    events = project.store.events(kind=EventKind.MODEL_VERSION_REGISTERED)
    assert [e.subject for e in events] == ["model:assistant/1"]
    assert events[0].payload["kind"] == LLM_KIND
    assert events[0].payload["prompt_digest"] == first.prompt_digest

    # The label moves on; the registered version keeps the text it was registered with.
    label_prompt(project, "support", "production", "2", "shorter")
    loaded = load_llm(client, "assistant", "1")
    assert loaded.spec.template == V1 and loaded.spec.params["temperature"] == 0
    second = register_llm(project, provider="backup", model="gpt-test")  # llm.prompt@production
    assert (second.version, second.prompt_version, second.template) == ("2", "2", V2)
    assert load_llm(client, "assistant", "2").spec.template == V2
    shown = show_llm(project, ModelRef("assistant", "2"))
    assert (shown.provider, shown.prompt_version, shown.template) == ("backup", "2", V2)
    assert shown.spec_digest == second.spec_digest


@pytest.mark.parametrize(
    ("fields", "error", "says"),
    [
        ({"provider": "openai"}, ConfigError, "not one of llm.providers (primary, backup)"),
        ({"prompt": "nothing@production"}, NotFoundError, "no prompt 'nothing'"),
        ({"prompt": "support@canary"}, NotFoundError, "no label 'canary'"),
        ({"prompt": "support/9"}, NotFoundError, "no version '9'"),
        ({"params": {"temprature": 0}}, ConfigError, "params.temprature"),
        ({"params": {"temperature": 3}}, ConfigError, "out of range"),
        ({"params": {"temperature": True}}, ConfigError, "wrong type"),
        ({"params": {"max_tokens": "many"}}, ConfigError, "params.max_tokens"),
        ({"model": "  "}, ConfigError, "model:"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_registered(
    _template: Path, tmp_path: Path, fields: dict[str, Any], error: type[ShipyardError], says: str
) -> None:
    project = project_of(_config(_template, tmp_path / "p"))
    arguments: dict[str, Any] = {
        "provider": "primary",
        "model": "gpt-test",
        "prompt": "support@production",
        **fields,
    }
    with pytest.raises(error) as refused:
        register_llm(project, **arguments)
    assert says in refused.value.message
    assert project.store.events(kind=EventKind.MODEL_VERSION_REGISTERED) == []


def test_only_llm_projects_and_trainers_register(_template: Path, tmp_path: Path) -> None:
    config = _config(_template, tmp_path / "p")
    viewer = project_of(config, "vic", role="viewer")
    with pytest.raises(Forbidden, match="models:train"):
        register_llm(viewer, provider="primary", model="m", prompt="support/1")
    classical = project_of(config.model_copy(update={"model": config.model.model_copy(
        update={"task": "classification"})}))  # fmt: skip
    with pytest.raises(ConfigError, match=r"model\.task is 'classification'"):
        register_llm(classical, provider="primary", model="m", prompt="support/1")


def test_without_a_prompt_or_llm_prompt_nothing_is_registered(
    _template: Path, tmp_path: Path
) -> None:
    config = _config(_template, tmp_path / "p", "")
    bare = config.model_copy(update={"llm": config.llm.model_copy(update={"prompt": None})})
    with pytest.raises(ConfigError, match="name a prompt") as refused:
        register_llm(project_of(bare), provider="primary", model="m")
    assert "shipyard prompts register" in (refused.value.hint or "")


def test_params_from_the_command_line() -> None:
    assert parse_params(["temperature=0.2", 'stop=["\\n"]', "seed=7"]) == {
        "temperature": 0.2,
        "stop": ["\n"],
        "seed": 7,
    }
    assert parse_params(["reasoning_effort=low"]) == {"reasoning_effort": "low"}
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_params(["temperature"])
    assert check_params({}) == {}


def test_promote_approve_sign_and_roll_back_an_llm_version(_template: Path, tmp_path: Path) -> None:
    """The classical governance functions, unchanged, on two LLM versions."""
    from shipyard.governance.approvals import approve
    from shipyard.governance.cards import verify_version
    from shipyard.governance.promotion import promote
    from shipyard.governance.signing import generate_keys
    from shipyard.registry.aliases import rollback
    from shipyard.registry.pointers import trusted_version

    private, public = tmp_path / "keys" / "card.pem", tmp_path / "p" / "card.pub"
    extra = (
        "promotion:\n  approval: required\n"
        f"signing:\n  private_key: {private}\n  public_key: {public}\n"
    )
    config = _config(_template, tmp_path / "p", extra)
    generate_keys(private, public)
    trainer = project_of(config, "tina", role="trainer")
    approver = project_of(config, "abe", role="approver")
    admin = project_of(config, "ada")
    register_llm(trainer, provider="primary", model="gpt-a", prompt="support/1")
    register_llm(trainer, provider="primary", model="gpt-b", prompt="support/2")
    client = admin.tracking.client

    # Separation of duties reads who registered an LLM version like a trained one.
    with pytest.raises(Forbidden, match="tina trained assistant/1"):
        # tina as admin: the scope is there, the rule still holds
        approve(
            project_of(config, "tina"), client.get_model_version("assistant", "1"), comment="mine"
        )
    for number in ("1", "2"):
        approve(approver, client.get_model_version("assistant", number), comment="looks right")

    # No judge scorecard yet (no gold set here): an admin forces, with a reason, recorded.
    first = promote(admin, ModelRef("assistant", "1"), to="champion", force=True, reason="v1")
    assert first.forced and first.signed
    assert verify_version(admin, client.get_model_version("assistant", "1")).ok
    second = promote(admin, ModelRef("assistant", "2"), to="champion", force=True, reason="v2")
    assert second.previous == "1"
    assert trusted_version(admin.store, "assistant", "champion") == "2"
    assert served_llm(client, "assistant", "2").model.spec.template == V2

    back = rollback(admin.store, client, "assistant", reason="judge score fell")
    assert (back.from_version, back.to_version) == ("2", "1")
    assert trusted_version(admin.store, "assistant", "champion") == "1"
    assert str(client.get_model_version_by_alias("assistant", "champion").version) == "1"
    champion = served_llm(client, "assistant", "1").model
    assert (champion.spec.model, champion.spec.template) == ("gpt-a", V1)
    kinds = [e.kind for e in admin.store.events(subject="model:assistant@champion")]
    assert kinds[:3] == ["alias.rollback", "alias.override", "alias.override"]
