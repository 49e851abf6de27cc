"""MLflow's registry tables, read and written in SQL, for commands that must not import MLflow.

Shipyard's MLflow tracking store is the project's own database (``Tracking`` opens MLflow
on ``config.db_url``), so listing models and moving an alias need no MLflow client:
``import mlflow`` alone costs a second or more, and ``shipyard rollback`` or ``models
list`` are the commands an operator runs when something is on fire.

The statements follow what MLflow 3's ``SqlAlchemyStore`` does, for its default workspace:

- an alias is a row of ``registered_model_aliases`` (workspace, name, alias, version),
  set only for a version that exists and is not deleted; setting it does not touch
  ``registered_models.last_updated_time`` (MLflow does not either);
- registered models tagged ``mlflow.prompt.is_prompt = true`` are prompts, not models,
  and versions in the ``Deleted_Internal`` stage are gone.

The tests check each write against ``MlflowClient().get_model_version_by_alias``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, column, delete, func, insert, inspect, select, table, update
from sqlalchemy.orm import Session

from shipyard.errors import NotFoundError
from shipyard.registry.views import ModelSummary

__all__ = [
    "DEFAULT_WORKSPACE",
    "delete_alias",
    "get_alias",
    "has_registry",
    "list_models",
    "set_alias",
]

DEFAULT_WORKSPACE = "default"  # mlflow.utils.workspace_utils.DEFAULT_WORKSPACE_NAME
_DELETED = "Deleted_Internal"  # mlflow...model_version_stages.STAGE_DELETED_INTERNAL
_PROMPT_TAG = "mlflow.prompt.is_prompt"

_models = table(
    "registered_models",
    column("workspace"),
    column("name"),
    column("last_updated_time"),
    column("description"),
)
_model_tags = table(
    "registered_model_tags", column("workspace"), column("name"), column("key"), column("value")
)
_versions = table(
    "model_versions",
    column("workspace"),
    column("name"),
    column("version"),
    column("current_stage"),
)
_aliases = table(
    "registered_model_aliases",
    column("workspace"),
    column("name"),
    column("alias"),
    column("version"),
)


def has_registry(session: Session) -> bool:
    """Whether MLflow has created its registry tables in this database yet."""
    return bool(inspect(session.connection()).has_table("registered_model_aliases"))


def get_alias(session: Session, name: str, alias: str) -> str | None:
    """The version MLflow's ``alias`` of ``name`` points at, or ``None``."""
    version = session.execute(
        select(_aliases.c.version).where(
            _aliases.c.workspace == DEFAULT_WORKSPACE,
            _aliases.c.name == name,
            _aliases.c.alias == alias,
        )
    ).scalar()
    return None if version is None else str(version)


def set_alias(session: Session, name: str, alias: str, version: str) -> None:
    """Point MLflow's ``alias`` of ``name`` at ``version``, which must exist (as MLflow checks)."""
    number = _version_number(version)
    exists = session.execute(
        select(func.count())
        .select_from(_versions)
        .where(
            _versions.c.workspace == DEFAULT_WORKSPACE,
            _versions.c.name == name,
            _versions.c.version == number,
            _versions.c.current_stage != _DELETED,
        )
    ).scalar()
    if not exists:
        raise NotFoundError(
            f"Model version {name}/{version} not found.",
            hint="List what exists with `shipyard models list`.",
        )
    key = and_(
        _aliases.c.workspace == DEFAULT_WORKSPACE,
        _aliases.c.name == name,
        _aliases.c.alias == alias,
    )
    moved = session.execute(update(_aliases).where(key).values(version=number))
    if not moved.rowcount:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        session.execute(
            insert(_aliases).values(
                workspace=DEFAULT_WORKSPACE, name=name, alias=alias, version=number
            )
        )


def delete_alias(session: Session, name: str, alias: str) -> None:
    """Remove MLflow's ``alias`` of ``name``; the registered model must exist."""
    found = session.execute(
        select(func.count())
        .select_from(_models)
        .where(_models.c.workspace == DEFAULT_WORKSPACE, _models.c.name == name)
    ).scalar()
    if not found:
        raise NotFoundError(
            f"Registered model {name!r} not found.",
            hint="List what exists with `shipyard models list`.",
        )
    session.execute(
        delete(_aliases).where(
            _aliases.c.workspace == DEFAULT_WORKSPACE,
            _aliases.c.name == name,
            _aliases.c.alias == alias,
        )
    )


def list_models(session: Session) -> list[ModelSummary]:
    """Every registered model (not prompts), by name, as ``registry.list_models`` shows it."""
    if not has_registry(session):
        return []  # nothing was ever registered: MLflow creates its tables on first use
    prompts = select(_model_tags.c.name).where(
        _model_tags.c.workspace == DEFAULT_WORKSPACE,
        _model_tags.c.key == _PROMPT_TAG,
        func.lower(_model_tags.c.value) == "true",
    )
    models = session.execute(
        select(_models.c.name, _models.c.description, _models.c.last_updated_time)
        .where(_models.c.workspace == DEFAULT_WORKSPACE, _models.c.name.not_in(prompts))
        .order_by(_models.c.name)
    ).all()
    numbers: dict[str, list[int]] = {}
    for name, number in session.execute(
        select(_versions.c.name, _versions.c.version).where(
            _versions.c.workspace == DEFAULT_WORKSPACE, _versions.c.current_stage != _DELETED
        )
    ):
        numbers.setdefault(name, []).append(int(number))
    aliases: dict[str, dict[str, str]] = {}
    for name, alias, number in session.execute(
        select(_aliases.c.name, _aliases.c.alias, _aliases.c.version).where(
            _aliases.c.workspace == DEFAULT_WORKSPACE
        )
    ):
        aliases.setdefault(name, {})[alias] = str(number)
    summaries = []
    for name, description, updated in models:
        found = numbers.get(name, [])
        summaries.append(
            ModelSummary(
                name=name,
                latest_version=str(max(found)) if found else None,
                versions=len(found),
                aliases=aliases.get(name, {}),
                description=description or "",
                updated_at=_iso(updated),
            )
        )
    return summaries


def _version_number(version: str) -> int:
    try:
        number = int(str(version))
    except ValueError:
        number = 0
    if number < 1:
        raise NotFoundError(
            f"{version!r} is not a model version number.",
            hint="Versions are whole numbers from 1: write NAME/3.",
        )
    return number


def _iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")
