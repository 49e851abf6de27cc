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
from shipyard.errors import PromotionRefused, ShipyardError
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
    skew = _value_skew_problem(project, name, number, version.tags)
    if skew:
        problems.append(skew)
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


def _value_skew_problem(
    project: Project, name: str, number: str, tags: dict[str, str] | None
) -> str | None:
    """Why value skew forbids the promotion, or None (a model without features: no check).

    The version's own newest logged requests (live and shadow, at most
    ``features.skew.sample``) are recomputed offline as served; at the pause band of
    ``features.skew.mismatch_bands`` the version may not be promoted.
    """
    from shipyard.features.skew import FeatureUse
    from shipyard.features.skew_check import check_skew

    if FeatureUse.from_tags(tags) is None:
        return None
    settings = project.config.features.skew
    try:
        check = check_skew(project, name, number, last=settings.sample, include_shadow=True)
    except ShipyardError as error:
        return f"training-serving value skew could not be checked: {error.message}"
    if check is None or check.value.level != "pause":
        return None
    shown = "; ".join(
        f"{item.feature} {item.mismatched}/{item.compared} ({item.rate:.1%})"
        for item in check.value.features
        if item.level == "pause" and item.rate is not None
    )
    example = next((f.examples[0] for f in check.value.features if f.examples), None)
    seen = (
        f"; e.g. {example.entity} at {example.time}: served {example.served}, "
        f"offline {example.expected}"
        if example
        else ""
    )
    return (
        f"training-serving value skew at the pause band ({settings.mismatch_bands[2]:.0%} "
        f"mismatched): {shown}{seen}. See `shipyard features skew {name} --version {number}`"
    )


def _problems(config: Config, store: Store, name: str, number: str, to: str) -> list[str]:
    problems = []
    if config.model.task == "llm":
        problems.extend(_judge_problems(config, store, name, number))
    elif config.evaluation.golden is None:
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


def _judge_problems(config: Config, store: Store, name: str, number: str) -> list[str]:
    """Why an LLM version's judge scorecard does not allow it (``shipyard llm evaluate``).

    The scorecard is the newest one stored for the version (shipyard.llm.evals writes it
    on the gold set's digest); it counts only if it was made on the gold file as it is
    now (the SHA-256 of its bytes, recorded with the scorecard).
    """
    import hashlib

    gold = config.llm.judge.gold
    run = f"`shipyard llm evaluate {name}/{number}`"
    if gold is None:
        return ["no gold set configured (llm.judge.gold), so no judge scorecard can pass"]
    path = config.resolve(gold)
    try:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        return [f"the gold set {path} cannot be read ({error.strerror}), so no scorecard counts"]
    record = latest_evaluation(store, name, number)
    if record is None or record.result.get("gold_file_sha256") != sha:
        return [f"no judge scorecard on the current gold set {path.name} ({sha[:12]}): run {run}"]
    if not record.passed:
        failing = ", ".join(record.failing) or "the judge score"
        score = record.result.get("score")
        shown = "no score" if score is None else f"mean {score:.2f}"
        return [f"the judge scorecard failed ({shown}): {failing}"]
    return []
