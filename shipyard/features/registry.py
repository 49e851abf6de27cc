"""The feature registry: apply definitions, keep every version, show and diff them.

:func:`apply` reads every view's source schema and checks it against the definition
before it registers anything, so a broken source leaves the registry as it was; then
each view's version (the digest of its definition) is saved once, with a
``features.applied`` event. :func:`schema_drift` compares a source with the schema it had
when its view was applied: joins and materialisations call it first, so a renamed or
retyped column is an error naming the column rather than wrong features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shipyard.access import Scope
from shipyard.errors import ConfigError, DataError, NotFoundError
from shipyard.features.definitions import FeatureView, OnDemandView
from shipyard.features.repo import FeatureRepo, load_repo
from shipyard.features.sources import check_schema, source_schema
from shipyard.store.feature_views import (
    StoredView,
    current_views,
    save_view_version,
    view_versions,
)

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = [
    "AppliedView",
    "ApplyResult",
    "Change",
    "ViewDetail",
    "ViewDiff",
    "apply",
    "diff",
    "diff_versions",
    "list_views",
    "schema_drift",
    "show",
    "stored_version",
]

ChangeKind = Literal["added", "removed", "changed"]
ApplyStatus = Literal["new", "unchanged", "changed"]


@dataclass(frozen=True)
class Change:
    """One field-level difference between two definitions (``features.trips.dtype`` …)."""

    field: str
    kind: ChangeKind
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ {self.field}: {self.after}"
        if self.kind == "removed":
            return f"- {self.field}: {self.before}"
        return f"~ {self.field}: {self.before} → {self.after}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"field": self.field, "kind": self.kind, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class AppliedView:
    """What :func:`apply` did with one view."""

    name: str
    kind: str
    version: str
    status: ApplyStatus
    previous: str | None
    changes: tuple[Change, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "status": self.status,
            "previous": self.previous,
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass(frozen=True)
class ApplyResult:
    """Every view :func:`apply` saw, in name order."""

    views: tuple[AppliedView, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"views": [v.to_dict() for v in self.views]}


@dataclass(frozen=True)
class ViewDetail:
    """One stored version of a view and the view's whole history."""

    view: StoredView
    current: str
    versions: tuple[StoredView, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            **self.view.to_dict(),
            "current": self.current,
            "versions": [
                {
                    "version": v.version,
                    "applied_by": v.applied_by,
                    "applied_at": v.to_dict()["applied_at"],
                }
                for v in self.versions
            ],
        }


@dataclass(frozen=True)
class ViewDiff:
    """The changes from one version of a view to another (``files``: not applied yet)."""

    name: str
    from_version: str
    to_version: str
    changes: tuple[Change, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "name": self.name,
            "from": self.from_version,
            "to": self.to_version,
            "changes": [c.to_dict() for c in self.changes],
        }


def _by_name(items: Any) -> dict[str, dict[str, Any]]:
    return {str(item["name"]): dict(item) for item in items or ()}


def _named_changes(key: str, before: Any, after: Any) -> list[Change]:
    """Changes between two lists of named items (features, request inputs), by name."""
    was, now = _by_name(before), _by_name(after)
    changes: list[Change] = []
    for name in [*was, *(n for n in now if n not in was)]:
        field = f"{key}.{name}"
        if name not in now:
            changes.append(Change(field, "removed", was[name].get("dtype")))
        elif name not in was:
            changes.append(Change(field, "added", after=now[name].get("dtype")))
        else:
            old, new = was[name], now[name]
            changes.extend(
                Change(f"{field}.{part}", "changed", old.get(part), new.get(part))
                for part in sorted(set(old) | set(new))
                if old.get(part) != new.get(part)
            )
    return changes


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Field-level changes from definition ``old`` to ``new`` (their ``to_dict()``s).

    Features and request inputs are compared by name (added, removed, and each of
    their fields, e.g. ``features.trips.dtype``); the source, ttl and every other
    field as a whole.
    """
    changes: list[Change] = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key in ("features", "request_inputs"):
            changes.extend(_named_changes(key, before, after))
        elif key not in old:
            changes.append(Change(key, "added", after=after))
        elif key not in new:
            changes.append(Change(key, "removed", before))
        else:
            changes.append(Change(key, "changed", before, after))
    return changes


def _kind(view: FeatureView | OnDemandView) -> str:
    return "on_demand" if isinstance(view, OnDemandView) else "view"


def _postgres_url(project: Project) -> str | None:
    url = project.config.database_url
    return url if url and url.startswith("postgresql") else None


def apply(project: Project, repo: FeatureRepo | None = None) -> ApplyResult:
    """Register every definition of ``repo`` (default: the project's files).

    Every source's schema is read and checked first; one failure registers nothing.
    Needs the ``models:train`` scope (the one that registers datasets and runs).
    """
    project.authorize(Scope.MODELS_TRAIN)
    repo = repo if repo is not None else load_repo(project.config)
    schemas: dict[str, dict[str, str]] = {}
    for view in repo.views.values():
        schema = source_schema(view, project.config.root, _postgres_url(project))
        check_schema(view, schema, repo)
        schemas[view.name] = schema
    for odv in repo.on_demand.values():
        if odv.sources:
            repo.resolve(list(odv.sources))  # every feature an on-demand view reads exists
    store = project.store
    current = current_views(store)
    applied: list[AppliedView] = []
    for name in repo.names:
        item = repo.view(name)
        definition = item.to_dict()
        saved = save_view_version(
            store, name, item.version, _kind(item), definition, schemas.get(name, {})
        )
        previous = current.get(name)
        if not saved:
            status: ApplyStatus = "unchanged"
        else:
            status = "new" if previous is None else "changed"
        changes = diff(previous.definition, definition) if saved and previous else []
        applied.append(
            AppliedView(
                name,
                _kind(item),
                item.version,
                status,
                None if previous is None else previous.version,
                tuple(changes),
            )
        )
    return ApplyResult(tuple(applied))


def list_views(project: Project) -> list[StoredView]:
    """The current version of every applied view, by name."""
    project.authorize(Scope.MODELS_READ)
    return [view for _, view in sorted(current_views(project.store).items())]


def stored_version(project: Project, name: str, version: str | None = None) -> StoredView:
    """Stored ``version`` of view ``name`` (a unique prefix will do; None: the current)."""
    versions = view_versions(project.store, name)
    if not versions:
        raise NotFoundError(
            f"Feature view {name!r} has not been applied.",
            hint="Run `shipyard features apply` first; `shipyard features list` shows what is.",
        )
    if version is None:
        return current_views(project.store)[name]
    found = [v for v in versions if v.version.startswith(version)]
    if len(found) != 1:
        raise NotFoundError(
            f"Feature view {name!r} has {'no' if not found else 'more than one'} version "
            f"{version!r}.",
            hint=f"Its versions: {', '.join(v.version for v in versions)}.",
        )
    return found[0]


def show(project: Project, name: str, version: str | None = None) -> ViewDetail:
    """One version (default: current) of view ``name`` with its history."""
    project.authorize(Scope.MODELS_READ)
    shown = stored_version(project, name, version)
    current = stored_version(project, name).version
    return ViewDetail(shown, current, tuple(view_versions(project.store, name)))


def diff_versions(
    project: Project,
    name: str,
    from_version: str | None = None,
    to_version: str | None = None,
    repo: FeatureRepo | None = None,
) -> ViewDiff:
    """Changes from stored ``from_version`` (default: current) to ``to_version`` (default:
    the definition in the project's files, shown as version ``files``)."""
    project.authorize(Scope.MODELS_READ)
    before = stored_version(project, name, from_version)
    if to_version is None:
        repo = repo if repo is not None else load_repo(project.config)
        view = repo.view(name)
        after, label = view.to_dict(), view.version
    else:
        stored = stored_version(project, name, to_version)
        after, label = stored.definition, stored.version
    return ViewDiff(name, before.version, label, tuple(diff(before.definition, after)))


def schema_drift(
    project: Project, view: FeatureView | str, repo: FeatureRepo | None = None
) -> None:
    """Raise a DataError naming the column when ``view``'s source no longer has the schema
    it had at apply time (a column it uses missing or of another type).

    Compared with the stored version of the same definition, else the current one; a view
    never applied is a ConfigError (apply it first). Columns the view does not use may
    change freely.
    """
    repo = repo if repo is not None else load_repo(project.config)
    found = repo.view(view) if isinstance(view, str) else view
    if not isinstance(found, FeatureView):
        return  # on-demand views have no source
    versions = view_versions(project.store, found.name)
    if not versions:
        raise ConfigError(
            f"Feature view {found.name!r} has not been applied.",
            hint="Run `shipyard features apply` first.",
        )
    same = [v for v in versions if v.version == found.version]
    stored = same[-1] if same else current_views(project.store)[found.name]
    now = source_schema(found, project.config.root, _postgres_url(project))
    used = [*repo.join_keys(found), found.timestamp_field, *found.feature_names]
    if found.created_timestamp_column:
        used.append(found.created_timestamp_column)
    for column in used:
        was = stored.source_schema.get(column)
        if was is None or now.get(column) == was:
            continue
        state = "is missing" if column not in now else f"is now {now[column]}"
        raise DataError(
            f"The source of feature view {found.name!r} changed after apply: column "
            f"{column!r} was {was} and {state}.",
            hint="Fix the source, or change the definition and run `shipyard features apply`.",
        )
    check_schema(found, now, repo)
