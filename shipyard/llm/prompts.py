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

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import column, func, select, table, update
from sqlalchemy.orm import Session

from shipyard.access import Scope
from shipyard.errors import ConfigError, NotFoundError, PromotionRefused
from shipyard.jsonable import Record, canonical_json
from shipyard.models.llm import template_variables
from shipyard.moments import as_utc
from shipyard.registry import mlflow_tables
from shipyard.registry.aliases import AliasMove, rollback_targets
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
Template = str | list[dict[str, str]]

_WORKSPACE = mlflow_tables.DEFAULT_WORKSPACE
_IS_PROMPT = "mlflow.prompt.is_prompt"
_TEXT = "mlflow.prompt.text"
_TYPE = "_mlflow_prompt_type"
_DELETED = "Deleted_Internal"
_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_IDENTIFIER = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*$")
_ROLES = ("system", "user", "assistant", "developer")

_versions = table(
    "model_versions",
    column("workspace"),
    column("name"),
    column("version"),
    column("current_stage"),
    column("description"),
    column("creation_time"),
    column("user_id"),
)
_version_tags = table(
    "model_version_tags",
    column("workspace"),
    column("name"),
    column("version"),
    column("key"),
    column("value"),
)
_models = table("registered_models", column("workspace"), column("name"))
_model_tags = table(
    "registered_model_tags", column("workspace"), column("name"), column("key"), column("value")
)


@dataclass(frozen=True)
class PromptRef(Record):
    """``name``, ``name/3`` or ``name@production``."""

    name: str
    version: str | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.label}" if self.label else self.name


@dataclass(frozen=True)
class PromptVersion(Record):
    """One version of a prompt: its template, what it needs, and the labels on it now."""

    name: str
    version: str
    template: Template
    message: str
    digest: str
    variables: list[str]
    labels: list[str] = field(default_factory=list)
    created_at: str | None = None

    @property
    def ref(self) -> str:
        """``name/version``."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class PromptSummary(Record):
    """One prompt: how many versions, the newest, and where each label points."""

    name: str
    latest_version: str | None
    versions: int
    labels: dict[str, str]


def parse_prompt_ref(text: str) -> PromptRef:
    """``name``, ``name/3`` or ``name@label``, checked."""
    name, version, label = text.strip(), None, None
    if "@" in name:
        name, label = name.split("@", 1)
    elif "/" in name:
        name, version = name.rsplit("/", 1)
        if not version.isdigit() or int(version) < 1:
            raise ConfigError(
                f"{text!r}: a prompt version is a whole number from 1.",
                hint="Write NAME/3 for version 3, or NAME@production for a label.",
            )
    if not _NAME.match(name):
        raise ConfigError(
            f"{text!r} is not a prompt reference.",
            hint="Write NAME, NAME/3 or NAME@production (letters, digits, _ - . in names).",
        )
    if label is not None:
        _check_label(label)
    return PromptRef(name, version, label)


def check_template(template: Any) -> Template:
    """``template`` if it is a valid text or chat template, else a ConfigError saying why.

    Every ``{{`` needs its ``}}`` and holds one variable name; a chat template is a list
    of ``{"role", "content"}`` messages with roles system, user, assistant or developer.
    Single braces are plain text (JSON examples in a prompt are fine).
    """
    if isinstance(template, str):
        if not template.strip():
            raise ConfigError("template: the prompt template is empty.", hint="Give its text.")
        _check_braces(template, "template")
        return template
    if not isinstance(template, list) or not template:
        raise ConfigError(
            "template: a prompt template is a text or a non-empty list of messages.",
            hint='A chat template is [{"role": "system", "content": "…{{variable}}…"}, …].',
        )
    checked: list[dict[str, str]] = []
    for index, message in enumerate(template):
        where = f"template[{index}]"
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise ConfigError(
                f"{where}: each message is an object with exactly 'role' and 'content'.",
                hint='e.g. {"role": "system", "content": "You help with {{product}}."}',
            )
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise ConfigError(f"{where}.role: {role!r} is not one of {', '.join(_ROLES)}.")
        if not isinstance(content, str):
            raise ConfigError(f"{where}.content: must be text, not {type(content).__name__}.")
        _check_braces(content, f"{where}.content")
        checked.append({"role": role, "content": content})
    return checked


def _check_braces(text: str, where: str) -> None:
    for found in _PLACEHOLDER.finditer(text):
        if not _IDENTIFIER.match(found.group(1)):
            raise ConfigError(
                f"{where}: {found.group(0)!r} is not a variable: write {{{{name}}}} with a "
                "name of letters, digits and _ (not starting with a digit).",
            )
    rest = _PLACEHOLDER.sub("", text)
    for brace in ("{{", "}}"):
        at = rest.find(brace)
        if at >= 0:
            raise ConfigError(
                f"{where}: unbalanced braces: {brace!r} near {rest[max(0, at - 20) : at + 22]!r} "
                "has no matching " + ("'}}'" if brace == "{{" else "'{{'") + ".",
                hint="Variables are written {{name}}; single braces are plain text.",
            )


def _check_label(label: str) -> None:
    if not _LABEL.match(label) or label == "latest" or re.fullmatch(r"v\d+", label):
        raise ConfigError(
            f"{label!r} is not a label name.",
            hint="Labels are letters, digits, _ and - (e.g. production, staging); "
            "'latest' and v1, v2 … are reserved by MLflow.",
        )


def template_digest(template: Template) -> str:
    """A digest of a template's text: what a label move's before and after name."""
    return hashlib.sha256(canonical_json(template)).hexdigest()[:16]


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
    created_at = _iso(getattr(created, "creation_timestamp", None))
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
    _check_label(label)
    project.authorize(Scope.MODELS_DEPLOY if label == PRODUCTION else Scope.MODELS_TRAIN, name)
    version = str(version)
    store = project.store
    with store.session() as session:
        _require_version(session, name, version)
        _lock(session, name)  # concurrent moves of this prompt queue here, then read the last
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
        before = _digest_of(session, name, recorded) if recorded else None
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
                "to_digest": _digest_of(session, name, version),
                "mlflow_was": previous,
                "action": action,
                "reason": reason,
            },
            row,
            before=None if last is None else bound_digest(last),
            reason=reason,
        )
        return _move(row)


def prompt_history(project: Project, name: str, label: str | None = None) -> list[AliasMove]:
    """Every recorded label move of prompt ``name`` (of ``label`` only, if given), oldest first."""
    project.authorize(Scope.MODELS_READ, name)
    query = select(AliasMoveRow).where(AliasMoveRow.model == name).order_by(AliasMoveRow.id)
    if label is not None:
        query = query.where(AliasMoveRow.alias == label)
    with project.store.session() as session:
        return [_move(row) for row in session.scalars(query)]


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
    _check_label(label)
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
        numbers = _numbers(session, parsed.name)
        if not numbers:
            raise NotFoundError(
                f"There is no prompt {parsed.name!r}.",
                hint="List prompts with `shipyard prompts list`; add one with "
                "`shipyard prompts register NAME --file template.txt`.",
            )
        labels = _labels(session, parsed.name)
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
        return _version(session, parsed.name, version, labels)


def prompt_versions(project: Project, name: str) -> list[PromptVersion]:
    """Every version of prompt ``name``, oldest first."""
    project.authorize(Scope.MODELS_READ, name)
    with project.store.session() as session:
        numbers = _numbers(session, name)
        if not numbers:
            raise NotFoundError(
                f"There is no prompt {name!r}.", hint="List prompts with `shipyard prompts list`."
            )
        labels = _labels(session, name)
        return [_version(session, name, str(n), labels) for n in sorted(numbers)]


def list_prompts(project: Project) -> list[PromptSummary]:
    """Every prompt in the registry, by name, with its labels as Shipyard recorded them."""
    project.authorize(Scope.MODELS_READ)
    with project.store.session() as session:
        if not mlflow_tables.has_registry(session):
            return []
        names = session.scalars(
            select(_model_tags.c.name)
            .where(
                _model_tags.c.workspace == _WORKSPACE,
                _model_tags.c.key == _IS_PROMPT,
                func.lower(_model_tags.c.value) == "true",
            )
            .order_by(_model_tags.c.name)
        ).all()
        summaries = []
        for name in names:
            numbers = _numbers(session, name)
            summaries.append(
                PromptSummary(
                    name,
                    str(max(numbers)) if numbers else None,
                    len(numbers),
                    _labels(session, name),
                )
            )
        return summaries


# --- MLflow's prompt tables, read in SQL -----------------------------------------------


def _numbers(session: Session, name: str) -> list[int]:
    if not mlflow_tables.has_registry(session):
        return []
    prompt = select(_version_tags.c.version).where(
        _version_tags.c.workspace == _WORKSPACE,
        _version_tags.c.name == name,
        _version_tags.c.key == _IS_PROMPT,
    )
    return [
        int(n)
        for n in session.scalars(
            select(_versions.c.version).where(
                _versions.c.workspace == _WORKSPACE,
                _versions.c.name == name,
                _versions.c.current_stage.is_distinct_from(_DELETED),
                _versions.c.version.in_(prompt),
            )
        )
    ]


def _labels(session: Session, name: str) -> dict[str, str]:
    """Each label's version by Shipyard's records (the latest move of each)."""
    latest = (
        select(func.max(AliasMoveRow.id))
        .where(AliasMoveRow.model == name)
        .group_by(AliasMoveRow.alias)
        .scalar_subquery()
    )
    rows = session.execute(
        select(AliasMoveRow.alias, AliasMoveRow.to_version).where(AliasMoveRow.id.in_(latest))
    )
    return {alias: version for alias, version in rows if version is not None}


def _lock(session: Session, name: str) -> None:
    """Write the prompt's registry row to itself: the transaction's first write, so
    concurrent label moves of one prompt run one after the other (row lock on PostgreSQL,
    the write lock on SQLite) and each reads the move before it."""
    session.execute(
        update(_models)
        .where(_models.c.workspace == _WORKSPACE, _models.c.name == name)
        .values(name=_models.c.name)
    )


def _require_version(session: Session, name: str, version: str) -> None:
    numbers = _numbers(session, name)
    if not numbers:
        raise NotFoundError(
            f"There is no prompt {name!r}.", hint="List prompts with `shipyard prompts list`."
        )
    if not version.isdigit() or int(version) not in numbers:
        raise NotFoundError(
            f"Prompt {name} has no version {version!r} (versions: "
            f"{', '.join(map(str, sorted(numbers)))}).",
            hint=f"See them with `shipyard prompts show {name}`.",
        )


def _tags(session: Session, name: str, version: str) -> dict[str, str]:
    rows = session.execute(
        select(_version_tags.c.key, _version_tags.c.value).where(
            _version_tags.c.workspace == _WORKSPACE,
            _version_tags.c.name == name,
            _version_tags.c.version == int(version),
        )
    )
    return {key: value for key, value in rows}


def _template(tags: dict[str, str]) -> Template:
    text = tags.get(_TEXT, "")
    if tags.get(_TYPE) == "chat":
        loaded = orjson.loads(text)
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in loaded]
    return text


def _digest_of(session: Session, name: str, version: str) -> str:
    return template_digest(_template(_tags(session, name, version)))


def _version(session: Session, name: str, version: str, labels: dict[str, str]) -> PromptVersion:
    _require_version(session, name, version)
    row = session.execute(
        select(_versions.c.description, _versions.c.creation_time).where(
            _versions.c.workspace == _WORKSPACE,
            _versions.c.name == name,
            _versions.c.version == int(version),
        )
    ).one()
    template = _template(_tags(session, name, version))
    return PromptVersion(
        name=name,
        version=version,
        template=template,
        message=row.description or "",
        digest=template_digest(template),
        variables=template_variables(template),
        labels=sorted(label for label, v in labels.items() if v == version),
        created_at=_iso(row.creation_time),
    )


def _iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return as_utc(datetime.fromtimestamp(millis / 1000, UTC)).isoformat(timespec="seconds")


def _move(row: AliasMoveRow) -> AliasMove:
    return AliasMove(
        model=row.model,
        alias=row.alias,
        from_version=row.from_version,
        to_version=row.to_version,
        action=row.action,
        forced=row.forced,
        reason=row.reason,
        actor=row.actor,
        at=as_utc(row.at),
    )
