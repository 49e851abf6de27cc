"""Promotion: the only way a version becomes challenger or champion, and what it checks.

A promotion needs a passing scorecard on the current golden set and, for champion when
``promotion.approval: required``, an approval. ``force`` with a reason overrides the
checks and is recorded as an override. Promotion to champion signs the model card when
the project has a signing key.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.access import Scope
from shipyard.config import Config
from shipyard.errors import PromotionRefused
from shipyard.evaluation.evaluate import golden_snapshot, latest_evaluation
from shipyard.governance.approvals import approvals
from shipyard.governance.cards import sign_promotion
from shipyard.governance.duties import check_force, check_promoter
from shipyard.jsonable import Record
from shipyard.project import Project
from shipyard.registry.aliases import CHALLENGER, CHAMPION, move_alias
from shipyard.registry.pointers import trusted_version
from shipyard.registry.refs import ModelRef
from shipyard.registry.views import get_version
from shipyard.store import Store

__all__ = ["PromotionResult", "promote"]


@dataclass(frozen=True)
class PromotionResult(Record):
    """What a promotion did."""

    model: str
    version: str
    alias: str
    previous: str | None
    forced: bool
    overridden: list[str]
    reason: str
    signed: bool


def promote(
    project: Project,
    ref: ModelRef,
    *,
    to: str,
    force: bool = False,
    reason: str = "",
) -> PromotionResult:
    """Point ``to`` (champion or challenger) at ``ref`` if every rule allows it.

    Needs ``models:deploy`` on the model; ``force`` needs the ``force`` scope (admin) and
    a reason, and with ``promotion.separate_promoter`` an approver may not promote.
    """
    if to not in (CHAMPION, CHALLENGER):
        raise PromotionRefused(
            f"Cannot promote to {to!r}.", hint="Use --to champion or --to challenger."
        )
    project.authorize(Scope.MODELS_DEPLOY, ref.name)
    if force:
        check_force(project, ref.name, reason)
    config, store, tracking = project.config, project.store, project.tracking
    client = tracking.client
    version = get_version(client, ref)
    name, number = version.name, str(version.version)
    if to == CHAMPION:
        check_promoter(project, version, [a.actor for a in approvals(store, name, number)])
    label = f"{name}/{number}"
    previous = trusted_version(store, name, to)
    if previous == number:
        raise PromotionRefused(f"{label} is already {to}.", hint="Nothing to do.")

    problems = _problems(config, store, name, number, to)
    if problems and not force:
        raise PromotionRefused(
            f"Cannot promote {label} to {to}:\n" + "\n".join(f"  - {p}" for p in problems),
            hint='Fix the above, or override with --force --reason "…" (recorded).',
        )
    forced = bool(problems)
    move_alias(
        store,
        client,
        name,
        to,
        number,
        action="override" if forced else "promote",
        reason=reason,
        forced=forced,
    )
    signed = False
    if to == CHAMPION:
        if trusted_version(store, name, CHALLENGER) == number:
            move_alias(
                store,
                client,
                name,
                CHALLENGER,
                None,
                action="promote",
                reason=f"{label} promoted to champion",
            )
        evaluation = latest_evaluation(store, name, number)
        signed = sign_promotion(
            project,
            version,
            {
                "alias": CHAMPION,
                "promoted_by": store.actor,
                "approved_by": [a.actor for a in approvals(store, name, number)],
                "previous_champion": previous,
                "scorecard": evaluation.to_dict() if evaluation else None,
                "data_digest": (version.tags or {}).get("shipyard.data_digest"),
                "forced": forced,
                "reason": reason,
            },
        )
    return PromotionResult(name, number, to, previous, forced, problems, reason, signed)


def _problems(config: Config, store: Store, name: str, number: str, to: str) -> list[str]:
    problems = []
    if config.evaluation.golden is None:
        problems.append("no golden set configured (evaluation.golden), so no scorecard can pass")
    else:
        golden = golden_snapshot(config, store)
        record = latest_evaluation(store, name, number, golden.digest)
        if record is None:
            problems.append(
                f"no scorecard on the current golden set {golden.digest[:12]}: run "
                f"`shipyard evaluate {name}/{number}`"
            )
        elif not record.passed:
            problems.append("the scorecard failed: " + ", ".join(record.failing))
    if (
        to == CHAMPION
        and config.promotion.approval == "required"
        and not approvals(store, name, number)
    ):
        problems.append(
            f"promotion to champion needs an approval: `shipyard approve "
            f"{name}/{number} --comment …` by someone who did not train it"
        )
    return problems
