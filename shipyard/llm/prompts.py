"""The prompt registry: versioned templates in MLflow 3, labels moved and recorded by Shipyard.

A prompt version is a row of MLflow 3's prompt registry (``MlflowClient.register_prompt``):
MLflow numbers it and keeps its text. A **label** (``production``, ``staging`` …) is an
MLflow prompt alias, moved the way model aliases are (:mod:`shipyard.registry.aliases`):
each move appends a row to ``shipyard_alias_moves`` (``model`` = the prompt's name,
``alias`` = the label), sets MLflow's alias in SQL and records one ``prompt.labelled``
event vouching for the row, all in one transaction. So the history answers "which
version was production on date X", ``shipyard audit verify`` notices a move edited
afterwards, and a rollback walks back through earlier labels like a model rollback.

Moving ``production`` needs ``models:deploy`` on the prompt's name; any other label, and
registering a version, ``models:train``.

    register_prompt(project, "support", "You answer questions about {{product}}.")
    label_prompt(project, "support", "production", "1", reason="first release")
    resolve_prompt(project, "support@production").template
    rollback_prompt(project, "support")                 # production back to the previous one

Everything but registering reads and writes MLflow's tables in SQL (no ``import mlflow``),
as :mod:`shipyard.registry.mlflow_tables` does, so an operator's rollback is fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.access import Scope
from shipyard.errors import ConfigError, NotFoundError, PromotionRefused
from shipyard.jsonable import Record
from shipyard.llm.prompt_tables import (
    PromptRef,
    PromptVersion,
    check_label,
    check_template,
    digest_of,
    iso_millis,
    lock_prompt,
    parse_prompt_ref,
    prompt_names,
    read_version,
    recorded_labels,
    require_version,
    template_digest,
    version_numbers,
)
from shipyard.models.llm import template_variables
from shipyard.moments import as_utc
from shipyard.registry import mlflow_tables
from shipyard.registry.aliases import AliasMove, move_of, rollback_targets
from shipyard.store import AliasMoveRow, EventKind
from shipyard.store.bound_rows import bound_digest, record_row

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = [
    "PRODUCTION",
    "PromptRef",
    "PromptSummary",
    "PromptVersion",
    "check_template",
    "label_prompt",
    "list_prompts",
    "parse_prompt_ref",
    "prompt_history",
    "prompt_label_at",
    "prompt_versions",
    "register_prompt",
    "resolve_prompt",
    "rollback_prompt",
]

PRODUCTION = "production"


@dataclass(frozen=True)
class PromptSummary(Record):
    """One prompt: how many versions, the newest, and where each label points."""

    name: str
    latest_version: str | None
    versions: int
    labels: dict[str, str]


def register_prompt(project: Project, name: str, template: Any, message: str = "") -> PromptVersion:
    """Add a version of prompt ``name`` (created on first use); needs ``models:train``.

    Recorded as a ``prompt.registered`` event with the template's digest and variables.
    """
    ref = parse_prompt_ref(name)
    if ref.version or ref.label:
        raise ConfigError(f"{name!r}: register a prompt by its bare name, without / or @.")
    project.authorize(Scope.MODELS_TRAIN, name)
    checked = check_template(template)
    from shipyard.registry.tracking import mlflow_errors

    client = project.tracking.client
    with mlflow_errors(f"Prompt {name}"):
        try:
            created = client.register_prompt(name, checked, commit_message=message or None)
        except Exception as exc:  # MLflow refuses a name a model already uses
            if "same name" in str(exc) or "already taken" in str(exc):
                raise ConfigError(
                    f"{name!r} is a registered model's name; prompts and models share names.",
                    hint="Choose another prompt name, e.g. the model's name + '-prompt'.",
                ) from None
            raise
    version = str(created.version)
    digest = template_digest(checked)
    variables = template_variables(checked)
    project.store.record(
        EventKind.PROMPT_REGISTERED,
        f"prompt:{name}/{version}",
        {
            "name": name,
            "version": version,
            "digest": digest,
            "variables": variables,
            "message": message,
        },
    )
    created_at = iso_millis(getattr(created, "creation_timestamp", None))
    return PromptVersion(name, version, checked, message, digest, variables, [], created_at)


def label_prompt(
    project: Project,
    name: str,
    label: str,
    version: str | int,
    reason: str = "",
    *,
    action: str = "label",
) -> AliasMove:
    """Point ``label`` of prompt ``name`` at ``version`` and record the move.

    ``production`` needs ``models:deploy``, other labels ``models:train``. MLflow's alias,
    the move's row and its ``prompt.labelled`` event (before and after: the row digests,
    and the two versions' template digests in the payload) commit together.
    """
    check_label(label)
    project.authorize(Scope.MODELS_DEPLOY if label == PRODUCTION else Scope.MODELS_TRAIN, name)
    version = str(version)
    store = project.store
    with store.session() as session:
        require_version(session, name, version)
        lock_prompt(session, name)  # concurrent moves of this prompt queue here, then read the last
        previous = mlflow_tables.get_alias(session, name, label)
        last = session.scalar(
            select(AliasMoveRow)
            .where(AliasMoveRow.model == name, AliasMoveRow.alias == label)
            .order_by(AliasMoveRow.id.desc())
            .limit(1)
        )
        recorded = None if last is None else last.to_version
        if recorded == version and previous == version:
            raise PromotionRefused(f"{name}@{label} is already {version}.", hint="Nothing to do.")
        mlflow_tables.set_alias(session, name, label, version)
        row = AliasMoveRow(
            model=name,
            alias=label,
            from_version=recorded,
            to_version=version,
            action=action,
            forced=False,
            reason=reason,
            actor=store.actor,
        )
        session.add(row)
        before = digest_of(session, name, recorded) if recorded else None
        record_row(
            store,
            session,
            EventKind.PROMPT_LABELLED,
            f"prompt:{name}@{label}",
            {
                "prompt": name,
                "label": label,
                "from_version": recorded,
                "to_version": version,
                "from_digest": before,
                "to_digest": digest_of(session, name, version),
                "mlflow_was": previous,
                "action": action,
                "reason": reason,
            },
            row,
            before=None if last is None else bound_digest(last),
            reason=reason,
        )
        return move_of(row)


def prompt_history(project: Project, name: str, label: str | None = None) -> list[AliasMove]:
    """Every recorded label move of prompt ``name`` (of ``label`` only, if given), oldest first."""
    project.authorize(Scope.MODELS_READ, name)
    query = select(AliasMoveRow).where(AliasMoveRow.model == name).order_by(AliasMoveRow.id)
    if label is not None:
        query = query.where(AliasMoveRow.alias == label)
    with project.store.session() as session:
        return [move_of(row) for row in session.scalars(query)]


def prompt_label_at(
    project: Project, name: str, moment: datetime, label: str = PRODUCTION
) -> str | None:
    """The version ``label`` pointed at ``moment`` (``None`` before its first move)."""
    moment = as_utc(moment)
    found: str | None = None
    for move in prompt_history(project, name, label):
        if move.at > moment:
            break
        found = move.to_version
    return found


def rollback_prompt(
    project: Project,
    name: str,
    label: str = PRODUCTION,
    *,
    to: str | None = None,
    reason: str = "",
) -> AliasMove:
    """Move ``label`` back to the version it held before (or to the earlier version ``to``).

    Walks back like :func:`shipyard.registry.aliases.rollback`: rolling back twice goes
    further back in time rather than flipping between two versions.
    """
    check_label(label)
    project.authorize(Scope.MODELS_DEPLOY if label == PRODUCTION else Scope.MODELS_TRAIN, name)
    moves = prompt_history(project, name, label)
    stack = rollback_targets(moves)
    if to is None:
        if len(stack) < 2:
            raise PromotionRefused(
                f"{name}@{label} has no earlier version to roll back to.",
                hint=f"Move the label with `shipyard prompts label {name} {label} --version N`.",
            )
        target = stack[-2]
    else:
        earlier = {m.to_version for m in moves if m.to_version is not None}
        if str(to) not in earlier:
            raise PromotionRefused(
                f"{name}/{to} never held {label}, so it is not a rollback target.",
                hint=f"Versions that held it: {', '.join(sorted(earlier, key=int)) or 'none'}.",
            )
        target = str(to)
    return label_prompt(project, name, label, target, reason, action="rollback")


def resolve_prompt(project: Project, ref: str | PromptRef) -> PromptVersion:
    """The prompt version ``ref`` names now: ``name/3``, ``name@label`` (the recorded label),
    or ``name`` (its production version, else its newest)."""
    parsed = parse_prompt_ref(ref) if isinstance(ref, str) else ref
    project.authorize(Scope.MODELS_READ, parsed.name)
    with project.store.session() as session:
        numbers = version_numbers(session, parsed.name)
        if not numbers:
            raise NotFoundError(
                f"There is no prompt {parsed.name!r}.",
                hint="List prompts with `shipyard prompts list`; add one with "
                "`shipyard prompts register NAME --file template.txt`.",
            )
        labels = recorded_labels(session, parsed.name)
        if parsed.version:
            version = parsed.version
        elif parsed.label:
            found = labels.get(parsed.label)
            if found is None:
                raise NotFoundError(
                    f"Prompt {parsed.name} has no label {parsed.label!r}"
                    + (f" (labels: {', '.join(sorted(labels))})." if labels else "."),
                    hint=f"Set it with `shipyard prompts label {parsed.name} {parsed.label} "
                    "--version N`, or name a version: NAME/N.",
                )
            version = found
        else:
            version = labels.get(PRODUCTION) or str(max(numbers))
        return read_version(session, parsed.name, version, labels)


def prompt_versions(project: Project, name: str) -> list[PromptVersion]:
    """Every version of prompt ``name``, oldest first."""
    project.authorize(Scope.MODELS_READ, name)
    with project.store.session() as session:
        numbers = version_numbers(session, name)
        if not numbers:
            raise NotFoundError(
                f"There is no prompt {name!r}.", hint="List prompts with `shipyard prompts list`."
            )
        labels = recorded_labels(session, name)
        return [read_version(session, name, str(n), labels) for n in sorted(numbers)]


def list_prompts(project: Project) -> list[PromptSummary]:
    """Every prompt in the registry, by name, with its labels as Shipyard recorded them."""
    project.authorize(Scope.MODELS_READ)
    with project.store.session() as session:
        names = prompt_names(session)
        summaries = []
        for name in names:
            numbers = version_numbers(session, name)
            summaries.append(
                PromptSummary(
                    name,
                    str(max(numbers)) if numbers else None,
                    len(numbers),
                    recorded_labels(session, name),
                )
            )
        return summaries
