"""The prompt registry: MLflow 3 prompts underneath, label moves recorded, audited and rolled back.

Everything is real: the project's SQLite database (and PostgreSQL for the label moves),
MLflow's prompt registry, the audit log. No LLM provider is called here, so the
provider stand-in is not needed.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Config
from shipyard.errors import ConfigError, Forbidden, NotFoundError, PromotionRefused
from shipyard.llm.prompts import (
    check_template,
    label_prompt,
    list_prompts,
    parse_prompt_ref,
    prompt_history,
    prompt_label_at,
    prompt_versions,
    register_prompt,
    resolve_prompt,
    rollback_prompt,
)
from shipyard.project import Project
from shipyard.store import EventKind
from tests.support import copy_workspace, load, project_of

YAML = """\
project: prompts-test
model:
  name: assistant
  task: llm
llm:
  prompt: support
  providers:
    - name: primary
      base_url: http://127.0.0.1:9/v1
"""


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose SQLite database MLflow has already set up (its migrations take
    seconds), copied by each test."""
    root = tmp_path_factory.mktemp("prompts-template")
    (root / "shipyard.yaml").write_text(YAML)
    project_of(load(root)).tracking.experiment_id()
    return root


def _config(root: Path, database_url: str | None = None, template: Path | None = None) -> Config:
    if template is not None and database_url is None:
        copy_workspace(template, root)
        return load(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "shipyard.yaml").write_text(YAML)
    return load(root, {"database_url": database_url} if database_url else None)


def _three_versions(project: Project) -> None:
    register_prompt(project, "support", "You help with {{product}}.", "v1")
    register_prompt(project, "support", "Be brief about {{product}}.", "v2")
    register_prompt(project, "support", "Be kind about {{ product }} to {{customer}}.", "v3")


def test_versions_live_in_mlflow_prompt_registry(_template: Path, tmp_path: Path) -> None:
    project = project_of(_config(tmp_path / "p", template=_template))
    first = register_prompt(project, "support", "You help with {{product}}.", "first")
    chat = [
        {"role": "system", "content": "You help with {{product}}."},
        {"role": "user", "content": "Context: {{context}}"},
    ]
    second = register_prompt(project, "support", chat, "as chat")
    assert (first.version, second.version) == ("1", "2")
    assert second.variables == ["product", "context"]

    # MLflow's own client sees the same versions and text.
    client = project.tracking.client
    assert client.get_prompt_version("support", 1).template == "You help with {{product}}."
    assert client.get_prompt_version("support", 2).template == chat
    # Shipyard reads them back in SQL, without MLflow: the same text and digest.
    read = prompt_versions(project, "support")
    assert [v.template for v in read] == ["You help with {{product}}.", chat]
    assert [v.digest for v in read] == [first.digest, second.digest]
    assert read[0].message == "first" and read[0].created_at

    registered = project.store.events(kind=EventKind.PROMPT_REGISTERED)
    assert [e.subject for e in registered] == ["prompt:support/2", "prompt:support/1"]
    assert registered[0].payload["digest"] == second.digest
    assert registered[0].payload["variables"] == ["product", "context"]
    assert registered[0].actor == "tester"
    # Prompts are not models: `models list` does not show them.
    from shipyard.registry import mlflow_tables

    with project.store.session() as session:
        assert [m.name for m in mlflow_tables.list_models(session)] == []
    assert [p.name for p in list_prompts(project)] == ["support"]


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("Hello {{ name }", "unbalanced braces"),
        ("Hello {name}}", "unbalanced braces"),
        ("Hello {{}}", "is not a variable"),
        ("Hello {{ 1st }}", "is not a variable"),
        ("   ", "empty"),
        ([{"role": "robot", "content": "x"}], "template[0].role"),
        ([{"role": "system", "content": 3}], "template[0].content"),
        ([{"role": "system", "content": "{{a}"}], "template[0].content: unbalanced"),
        ([], "non-empty list"),
    ],
)
def test_bad_templates_are_refused_and_nothing_is_registered(
    _template: Path, tmp_path: Path, template: Any, says: str
) -> None:
    project = project_of(_config(tmp_path / "p", template=_template))
    with pytest.raises(ConfigError, match="template") as refused:
        register_prompt(project, "support", template)
    assert says in refused.value.message
    assert project.store.events(kind=EventKind.PROMPT_REGISTERED) == []
    assert list_prompts(project) == []


def test_single_braces_are_plain_text() -> None:
    text = 'Answer as JSON like {"answer": "…"} about {{topic}}.'
    assert check_template(text) == text


def test_production_is_protected_by_role(_template: Path, tmp_path: Path) -> None:
    config = _config(tmp_path / "p", template=_template)
    _three_versions(project_of(config))
    trainer = project_of(config, "tina", role="trainer")
    deployer = project_of(config, "dora", role="deployer")

    with pytest.raises(Forbidden, match="models:deploy"):
        label_prompt(trainer, "support", "production", "1", "trainer tries")
    label_prompt(trainer, "support", "staging", "2", "trainer may stage")
    with pytest.raises(Forbidden, match="models:train"):
        label_prompt(deployer, "support", "staging", "3")
    label_prompt(deployer, "support", "production", "1", "release")
    with pytest.raises(Forbidden):
        rollback_prompt(trainer, "support")
    with pytest.raises(Forbidden, match="models:train"):
        register_prompt(deployer, "support", "x {{y}}")

    moves = prompt_history(deployer, "support")
    assert [(m.alias, m.to_version, m.actor) for m in moves] == [
        ("staging", "2", "tina"),
        ("production", "1", "dora"),
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_label_moves_are_audited_and_mlflow_follows(
    _template: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    project = project_of(_config(tmp_path / "p", url, _template))
    _three_versions(project)
    label_prompt(project, "support", "production", "1", "first release")
    label_prompt(project, "support", "production", 2, "shorter")

    import mlflow.genai

    client = project.tracking.client
    assert client.get_prompt_version_by_alias("support", "production").version == 2
    assert mlflow.genai.load_prompt("prompts:/support@production", cache_ttl_seconds=0).version == 2
    assert resolve_prompt(project, "support@production").version == "2"

    events = project.store.events(kind=EventKind.PROMPT_LABELLED)  # newest first
    assert [e.subject for e in events] == ["prompt:support@production"] * 2
    latest, first = events
    assert latest.payload["from_version"] == "1" and latest.payload["to_version"] == "2"
    v1, v2 = prompt_versions(project, "support")[:2]
    assert latest.payload["from_digest"] == v1.digest
    assert latest.payload["to_digest"] == v2.digest
    assert latest.payload["reason"] == "shorter"
    assert first.before is None and latest.before == first.after  # one chain of row digests
    assert latest.payload["row"]["table"] == "shipyard_alias_moves"

    with pytest.raises(PromotionRefused, match="already 2"):
        label_prompt(project, "support", "production", "2")
    with pytest.raises(NotFoundError, match="no version '9'"):
        label_prompt(project, "support", "production", "9")
    with pytest.raises(NotFoundError, match="no prompt 'other'"):
        label_prompt(project, "other", "production", "1")
    with pytest.raises(ConfigError, match="not a label name"):
        label_prompt(project, "support", "latest", "1")
    assert len(project.store.events(kind=EventKind.PROMPT_LABELLED)) == 2


def test_history_answers_which_version_was_production_when(_template: Path, tmp_path: Path) -> None:
    project = project_of(_config(tmp_path / "p", template=_template))
    _three_versions(project)
    moves = [
        label_prompt(project, "support", "production", "1"),
        label_prompt(project, "support", "staging", "3"),
        label_prompt(project, "support", "production", "2"),
    ]
    before = moves[0].at - timedelta(seconds=1)
    assert prompt_label_at(project, "support", before) is None
    assert prompt_label_at(project, "support", moves[0].at) == "1"
    assert prompt_label_at(project, "support", moves[2].at - timedelta(microseconds=1)) == "1"
    assert prompt_label_at(project, "support", moves[2].at) == "2"
    assert prompt_label_at(project, "support", moves[2].at, "staging") == "3"
    assert [m.to_version for m in prompt_history(project, "support", "production")] == ["1", "2"]


def test_rollback_walks_back_like_a_model_rollback(_template: Path, tmp_path: Path) -> None:
    project = project_of(_config(tmp_path / "p", template=_template))
    _three_versions(project)
    for version in ("1", "2", "3"):
        label_prompt(project, "support", "production", version)

    back = rollback_prompt(project, "support", reason="judge fell")
    assert (back.from_version, back.to_version, back.action) == ("3", "2", "rollback")
    assert rollback_prompt(project, "support").to_version == "1"  # further back, not 3
    with pytest.raises(PromotionRefused, match="no earlier version"):
        rollback_prompt(project, "support")
    assert project.tracking.client.get_prompt_version_by_alias("support", "production").version == 1

    assert rollback_prompt(project, "support", to="3").to_version == "3"
    label_prompt(project, "support", "staging", "2")
    with pytest.raises(PromotionRefused, match="never held production"):
        rollback_prompt(project, "support", to="9")
    events = project.store.events(
        kind=EventKind.PROMPT_LABELLED, subject="prompt:support@production"
    )
    assert [e.payload["action"] for e in events][:3] == ["rollback"] * 3


def test_references_and_unknown_names_say_what_to_do(_template: Path, tmp_path: Path) -> None:
    project = project_of(_config(tmp_path / "p", template=_template))
    with pytest.raises(NotFoundError, match="no prompt 'support'") as missing:
        resolve_prompt(project, "support@production")
    assert "shipyard prompts register" in (missing.value.hint or "")
    _three_versions(project)
    assert resolve_prompt(project, "support").version == "3"  # no production: the newest
    label_prompt(project, "support", "production", "1")
    assert resolve_prompt(project, "support").version == "1"
    assert resolve_prompt(project, "support/2").template == "Be brief about {{product}}."
    with pytest.raises(NotFoundError, match="no label 'canary'") as unlabelled:
        resolve_prompt(project, "support@canary")
    assert "production" in unlabelled.value.message
    assert "shipyard prompts label support canary" in (unlabelled.value.hint or "")
    with pytest.raises(NotFoundError, match="no version '7'"):
        resolve_prompt(project, "support/7")
    for bad in ("support/0", "support/x", "a b", "support@"):
        with pytest.raises(ConfigError):
            parse_prompt_ref(bad)


def test_prompt_and_model_names_do_not_collide(_template: Path, tmp_path: Path) -> None:
    project = project_of(_config(tmp_path / "p", template=_template))
    project.tracking.client.create_registered_model("assistant")
    with pytest.raises(ConfigError, match="registered model's name"):
        register_prompt(project, "assistant", "Hi {{x}}")


def test_an_edited_label_row_fails_audit_verify(_template: Path, tmp_path: Path) -> None:
    from sqlalchemy import text

    from shipyard.governance.audit import verify

    project = project_of(_config(tmp_path / "p", template=_template))
    _three_versions(project)
    label_prompt(project, "support", "production", "1")
    with project.store.session() as session:
        session.execute(text("UPDATE shipyard_alias_moves SET to_version = '3'"))
    report = verify(project)
    assert not report.ok
    assert any(f.problem == "row_edited" for f in report.findings)


def test_audit_verify_passes_with_prompt_labels(_template: Path, tmp_path: Path) -> None:
    from shipyard.governance.audit import verify

    project = project_of(_config(tmp_path / "p", template=_template))
    _three_versions(project)
    label_prompt(project, "support", "production", "1")
    report = verify(project)
    assert report.ok, report.findings
    # A label moved behind Shipyard's back, with MLflow's own API, is drift.
    project.tracking.client.set_prompt_alias("support", "production", 3)
    drifted = verify(project)
    assert [f.problem for f in drifted.findings] == ["drift"]
    assert "support@production" in drifted.findings[0].message


def test_concurrent_label_moves_form_one_chain(
    _template: Path, tmp_path: Path, postgres_url: str
) -> None:
    """Moves of one label from many threads queue: each reads the move before it."""
    from concurrent.futures import ThreadPoolExecutor

    project = project_of(_config(tmp_path / "p", postgres_url, _template))
    _three_versions(project)

    def move(index: int) -> str:
        try:
            return label_prompt(project, "support", "staging", str(index % 3 + 1)).to_version or ""
        except PromotionRefused:  # the same version twice in a row: nothing to do
            return ""

    with ThreadPoolExecutor(8) as pool:
        done = [v for v in pool.map(move, range(24)) if v]
    moves = prompt_history(project, "support", "staging")
    assert len(moves) == len(done) >= 3
    for earlier, later in itertools.pairwise(moves):
        assert later.from_version == earlier.to_version
    events = sorted(
        project.store.events(kind=EventKind.PROMPT_LABELLED, limit=100), key=lambda e: e.id
    )
    assert events[0].before is None
    for earlier_event, later_event in itertools.pairwise(events):
        assert later_event.before == earlier_event.after
