"""Prompt references, template checks, and MLflow's prompt tables read in SQL.

The part of the prompt registry (:mod:`shipyard.llm.prompts`) below its entry points:

- :func:`parse_prompt_ref` (``name``, ``name/3``, ``name@production``) and
  :func:`check_template` (balanced ``{{variable}}`` placeholders, chat messages' shape);
- MLflow 3's prompt versions read in SQL, as :mod:`shipyard.registry.mlflow_tables` reads
  models: a prompt is a row of ``registered_models`` tagged ``mlflow.prompt.is_prompt``,
  each version a row of ``model_versions`` whose text is the ``mlflow.prompt.text`` tag
  (JSON messages when ``_mlflow_prompt_type`` is ``chat``). Reading them needs no
  ``import mlflow``; the tests compare every read with ``MlflowClient.get_prompt_version``.
- the labels as Shipyard recorded them: the latest ``shipyard_alias_moves`` row of each.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import column, func, select, table, update
from sqlalchemy.orm import Session

from shipyard.errors import ConfigError, NotFoundError
from shipyard.jsonable import Record, canonical_json
from shipyard.models.llm import template_variables
from shipyard.moments import as_utc
from shipyard.registry import mlflow_tables
from shipyard.store import AliasMoveRow

__all__ = [
    "PromptRef",
    "PromptVersion",
    "Template",
    "check_label",
    "check_template",
    "digest_of",
    "iso_millis",
    "lock_prompt",
    "parse_prompt_ref",
    "prompt_names",
    "read_version",
    "recorded_labels",
    "require_version",
    "template_digest",
    "version_numbers",
]

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
        check_label(label)
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


def check_label(label: str) -> None:
    if not _LABEL.match(label) or label == "latest" or re.fullmatch(r"v\d+", label):
        raise ConfigError(
            f"{label!r} is not a label name.",
            hint="Labels are letters, digits, _ and - (e.g. production, staging); "
            "'latest' and v1, v2 … are reserved by MLflow.",
        )


def template_digest(template: Template) -> str:
    """A digest of a template's text: what a label move's before and after name."""
    return hashlib.sha256(canonical_json(template)).hexdigest()[:16]


def prompt_names(session: Session) -> list[str]:
    """Every prompt's name, sorted (none before MLflow has created its tables)."""
    if not mlflow_tables.has_registry(session):
        return []
    return list(
        session.scalars(
            select(_model_tags.c.name)
            .where(
                _model_tags.c.workspace == _WORKSPACE,
                _model_tags.c.key == _IS_PROMPT,
                func.lower(_model_tags.c.value) == "true",
            )
            .order_by(_model_tags.c.name)
        )
    )


def version_numbers(session: Session, name: str) -> list[int]:
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


def recorded_labels(session: Session, name: str) -> dict[str, str]:
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


def lock_prompt(session: Session, name: str) -> None:
    """Write the prompt's registry row to itself: the transaction's first write, so
    concurrent label moves of one prompt run one after the other (row lock on PostgreSQL,
    the write lock on SQLite) and each reads the move before it."""
    session.execute(
        update(_models)
        .where(_models.c.workspace == _WORKSPACE, _models.c.name == name)
        .values(name=_models.c.name)
    )


def require_version(session: Session, name: str, version: str) -> None:
    numbers = version_numbers(session, name)
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


def digest_of(session: Session, name: str, version: str) -> str:
    return template_digest(_template(_tags(session, name, version)))


def read_version(
    session: Session, name: str, version: str, labels: dict[str, str]
) -> PromptVersion:
    require_version(session, name, version)
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
        created_at=iso_millis(row.creation_time),
    )


def iso_millis(millis: int | None) -> str | None:
    if millis is None:
        return None
    return as_utc(datetime.fromtimestamp(millis / 1000, UTC)).isoformat(timespec="seconds")
