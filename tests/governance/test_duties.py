"""Least privilege and separation of duties, enforced at every entry point.

Reproduces the issue's findings through the Python API: whoever trained a version
approving it, and a non-admin forcing a promotion that signs a card. Each is now
refused with ``Forbidden`` (HTTP 403, exit code 6), naming the rule.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest

from shipyard.access import ROLES, Grant, Permission, Principal, Scope
from shipyard.agent import Agent
from shipyard.config import Config
from shipyard.errors import Forbidden, PromotionRefused
from shipyard.evaluation.evaluate import evaluate_version
from shipyard.governance.approvals import approvals, approve
from shipyard.governance.promotion import promote
from shipyard.monitoring.run import run_monitor
from shipyard.project import Project
from shipyard.registry import get_version, parse_ref
from shipyard.registry.aliases import current_alias
from shipyard.training import train
from tests.support import (
    TrainedExamples,
    copy_example,
    load,
    project_of,
    register_with_plain_mlflow,
)

TRAININGS = ({}, {"n_estimators": 150})  # churn/1 and churn/2, trained by "tester"


@pytest.fixture
def churn(trained_examples: TrainedExamples, tmp_path: Path) -> Config:
    """Two versions trained by "tester", approval required, no golden-set shortcuts."""
    return trained_examples.copy(
        tmp_path / "churn", *TRAININGS, overrides={"promotion.approval": "required"}
    )


def test_each_role_holds_only_its_scopes() -> None:
    viewer, labeller = ROLES["viewer"], ROLES["labeller"]
    assert viewer.scopes == {Scope.MODELS_READ, Scope.AUDIT_READ}
    assert Scope.LABELS_WRITE in labeller.scopes and Scope.MODELS_DEPLOY not in labeller.scopes
    assert Scope.MODELS_APPROVE not in ROLES["trainer"].scopes
    assert Scope.MODELS_DEPLOY not in ROLES["approver"].scopes
    assert Scope.FORCE not in ROLES["deployer"].scopes
    only_admin = {Scope.FORCE, Scope.TOKENS_ADMIN, Scope.KEYS_ADMIN, Scope.PII_READ}
    for role in ROLES.values():
        assert (role.name == "admin") == bool(only_admin & role.scopes), role.name
    levels = {name: role.permission for name, role in ROLES.items()}
    assert levels["viewer"] is Permission.READ and levels["admin"] is Permission.MANAGE


def test_a_grant_covers_only_the_models_its_pattern_names() -> None:
    deployer = ROLES["deployer"]
    churn_only = Principal(
        "dora", "token", "deployer", deployer.scopes, (Grant("model", "churn*", Permission.EDIT),)
    )
    assert churn_only.may(Scope.MODELS_DEPLOY, "churn")
    assert churn_only.may(Scope.MODELS_DEPLOY, "churn-eu")
    assert not churn_only.may(Scope.MODELS_DEPLOY, "fraud")
    with pytest.raises(Forbidden, match=r"no grant on model 'fraud'.*model:churn\*:EDIT"):
        churn_only.require(Scope.MODELS_DEPLOY, "fraud")
    with pytest.raises(Forbidden, match="lacks the scope force"):
        churn_only.require(Scope.FORCE, "churn")
    reader = Principal(
        "rita", "token", "viewer", ROLES["viewer"].scopes, (Grant("*", "*", Permission.READ),)
    )
    assert reader.may(Scope.MODELS_READ, "churn")
    assert not reader.may(Scope.MODELS_DEPLOY, "churn")


def test_entry_points_refuse_a_principal_without_the_scope(churn: Config) -> None:
    viewer = project_of(churn, "victor", role="viewer")
    with pytest.raises(Forbidden, match="victor \\(role viewer\\) lacks the scope models:train"):
        train(viewer)
    with pytest.raises(Forbidden, match="models:train"):
        evaluate_version(viewer, parse_ref("churn/1"))
    with pytest.raises(Forbidden, match="monitor:run"):
        run_monitor(viewer, "churn")
    with pytest.raises(Forbidden, match="agent:run"):
        Agent(viewer)
    trainer = project_of(churn, "tina", role="trainer")
    v1 = get_version(trainer.client, parse_ref("churn/1"))
    with pytest.raises(Forbidden, match="models:approve"):
        approve(trainer, v1, comment="looks fine")
    approver = project_of(churn, "april", role="approver")
    with pytest.raises(Forbidden, match="models:deploy"):
        promote(approver, parse_ref("churn/1"), to="challenger")
    # Nothing was written by the refused calls.
    assert approvals(trainer.store, "churn") == []
    assert current_alias(trainer.client, "churn", "challenger") is None


def test_force_needs_the_admin_role_and_a_reason(churn: Config) -> None:
    # The finding: `SHIPYARD_USER=intern shipyard promote churn/3 --force --reason x`
    # signed a card. An intern is at most a trainer; a deployer may not force either.
    for role in ("trainer", "deployer"):
        intern = project_of(churn, "intern", role=role)
        with pytest.raises(Forbidden, match=r"force|models:deploy"):
            promote(intern, parse_ref("churn/2"), to="champion", force=True, reason="x")
    admin = project_of(churn, "ada")
    with pytest.raises(PromotionRefused, match="--force needs a reason"):
        promote(admin, parse_ref("churn/2"), to="champion", force=True, reason=" ")
    assert current_alias(admin.client, "churn", "champion") is None
    forced = promote(admin, parse_ref("churn/2"), to="champion", force=True, reason="hotfix")
    assert forced.forced and current_alias(admin.client, "churn", "champion") == "2"


def test_whoever_trained_a_version_may_not_approve_it(churn: Config) -> None:
    # The finding: `SHIPYARD_USER=alice shipyard approve churn/3` from churn/3's trainer.
    tester = project_of(churn, role="approver")  # "tester" trained both versions
    v2 = get_version(tester.client, parse_ref("churn/2"))
    with pytest.raises(Forbidden, match=r"tester trained churn/2 .*separation of duties"):
        approve(tester, v2, comment="mine, but fine")
    # On a one-person laptop project the owner may opt out, explicitly.
    assert approve(tester, v2, comment="solo project", allow_self_approval=True).actor == "tester"
    other = project_of(churn, "bob", role="approver")
    assert approve(other, v2, comment="reviewed").actor == "bob"


def test_with_separate_promoter_the_approver_may_not_promote(churn: Config) -> None:
    config = churn.model_copy(
        update={"promotion": churn.promotion.model_copy(update={"separate_promoter": True})}
    )
    evaluate_version(project_of(config), parse_ref("churn/1"))
    reviewer = project_of(config, "rev")  # an admin: the rule holds for every role
    approve(reviewer, get_version(reviewer.client, parse_ref("churn/1")), comment="ok")
    with pytest.raises(Forbidden, match="rev approved churn/1 and may not also promote it"):
        promote(reviewer, parse_ref("churn/1"), to="champion")
    assert current_alias(reviewer.client, "churn", "champion") is None
    done = promote(project_of(config, "dep", role="deployer"), parse_ref("churn/1"), to="champion")
    assert done.version == "1"


@pytest.mark.postgres
def test_on_a_shared_database_self_approval_is_refused_even_when_allowed(
    postgres_url: str, tmp_path: Path
) -> None:
    config = load(
        copy_example(tmp_path / "churn"),
        {"database_url": postgres_url, "promotion.allow_self_approval": True},
    )
    assert config.shared_database
    register_with_plain_mlflow(config, "plain")  # MLflow records the OS user as its runner
    me = getpass.getuser()
    project = Project(config, Principal(me, "test", "approver", ROLES["approver"].scopes))
    version = get_version(project.client, parse_ref("plain/1"))
    with pytest.raises(Forbidden, match=f"{me} trained plain/1 .*separation of duties") as caught:
        approve(project, version, comment="it is mine")
    assert "allow_self_approval" not in str(caught.value)  # no opt-out on a shared database
    other = Project(config, Principal("olga", "test", "approver", ROLES["approver"].scopes))
    assert approve(other, version, comment="reviewed").actor == "olga"
