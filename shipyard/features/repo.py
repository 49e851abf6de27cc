"""A project's feature definitions, read from ``features.py`` and ``shipyard.yaml``.

:func:`load_repo` imports the definitions file (module-level :class:`Entity`,
:class:`FeatureView` and :class:`OnDemandView` objects) and adds the ones the
``features`` section declares; a name defined twice is an error. :meth:`FeatureRepo.resolve`
checks a list of feature refs before anything is joined or served.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import ConfigError
from shipyard.features.definitions import (
    Entity,
    Feature,
    FeatureRef,
    FeatureView,
    FileSource,
    OnDemandView,
    PostgresSource,
    SqlSource,
    parse_refs,
)
from shipyard.moments import parse_duration

if TYPE_CHECKING:
    from shipyard.config import Config, FeatureViewSettings

__all__ = ["FeatureRepo", "load_repo", "view_from_settings"]


@dataclass(frozen=True)
class FeatureRepo:
    """Every entity, feature view and on-demand view of a project, by name."""

    entities: Mapping[str, Entity]
    views: Mapping[str, FeatureView]
    on_demand: Mapping[str, OnDemandView]

    @classmethod
    def of(cls, objects: Iterable[Entity | FeatureView | OnDemandView]) -> FeatureRepo:
        """A repo of ``objects``; a ConfigError when two share a name or a view's entity
        or an on-demand source is unknown."""
        entities: dict[str, Entity] = {}
        views: dict[str, FeatureView] = {}
        on_demand: dict[str, OnDemandView] = {}
        for item in objects:
            if isinstance(item, Entity):
                target: dict = entities
            else:
                target = views if isinstance(item, FeatureView) else on_demand
                other = on_demand if target is views else views
                if item.name in other:
                    raise ConfigError(f"Two feature views are named {item.name!r}.")
            # The same definition seen twice (an alias in features.py, or the same view in
            # yaml and Python) is one definition.
            if item.name in target and target[item.name] != item:
                raise ConfigError(f"{item.name!r} is defined twice with different definitions.")
            target[item.name] = item
        repo = cls(entities, views, on_demand)
        for view in views.values():
            for entity in view.entities:
                if entity not in entities:
                    raise ConfigError(
                        f"Feature view {view.name!r} names entity {entity!r}, "
                        "which is not defined.",
                        hint=f"Entities: {', '.join(sorted(entities)) or 'none'}.",
                    )
        for odv in on_demand.values():
            for ref in parse_refs(odv.sources) if odv.sources else ():
                repo.view(ref.view)  # raises for an unknown view
        return repo

    @property
    def names(self) -> list[str]:
        """Every view's name (plain and on-demand), sorted."""
        return sorted([*self.views, *self.on_demand])

    def view(self, name: str) -> FeatureView | OnDemandView:
        """The view called ``name``; a ConfigError naming the known views if none."""
        found = self.views.get(name) or self.on_demand.get(name)
        if found is None:
            raise ConfigError(
                f"There is no feature view {name!r}.",
                hint=f"Known views: {', '.join(self.names) or 'none'}.",
            )
        return found

    def join_keys(self, view: FeatureView | str) -> tuple[str, ...]:
        """The join keys of a view's entities, in order, each once."""
        found = self.views[view] if isinstance(view, str) else view
        keys: list[str] = []
        for entity in found.entities:
            for key in self.entities[entity].join_keys:
                if key not in keys:
                    keys.append(key)
        return tuple(keys)

    def resolve(self, refs: str | list[str] | tuple[str, ...]) -> tuple[FeatureRef, ...]:
        """``refs`` checked and expanded (``view:*`` → every feature), in order.

        Raises a ConfigError naming the first unknown view or feature, so a training set
        or a server fails before any join or lookup runs.
        """
        out: list[FeatureRef] = []
        for ref in parse_refs(refs):
            view = self.view(ref.view)
            names = view.feature_names if ref.feature == "*" else (view.feature(ref.feature).name,)
            out.extend(
                FeatureRef(view.name, name)
                for name in names
                if FeatureRef(view.name, name) not in out
            )
        return tuple(out)

    def feature(self, ref: FeatureRef) -> Feature:
        """The declared feature of ``ref``."""
        return self.view(ref.view).feature(ref.feature)


def view_from_settings(settings: FeatureViewSettings) -> FeatureView:
    """A :class:`FeatureView` from its ``shipyard.yaml`` declaration."""
    source = settings.source
    if source.path is not None:
        kind: FileSource | SqlSource | PostgresSource = FileSource(source.path)
    elif source.sql is not None:
        kind = SqlSource(source.sql)
    else:
        assert source.table is not None
        kind = PostgresSource(source.table, source.database_url)
    where = f"features.views[{settings.name}]"
    return FeatureView(
        name=settings.name,
        entities=tuple(settings.entities),
        source=kind,
        features=tuple(
            Feature(name, dtype, name in settings.pii) for name, dtype in settings.features.items()
        ),
        timestamp_field=settings.timestamp_field,
        created_timestamp_column=settings.created_timestamp_column,
        ttl=None if settings.ttl is None else parse_duration(settings.ttl, flag=f"{where}.ttl"),
        missing=settings.missing,
        defaults=settings.defaults,
        freshness_sla=(
            None
            if settings.freshness_sla is None
            else parse_duration(settings.freshness_sla, flag=f"{where}.freshness_sla")
        ),
        description=settings.description,
    )


def _module_objects(path: Path) -> list[Entity | FeatureView | OnDemandView]:
    """The definitions a Python file declares at module level."""
    name = f"shipyard_features_{abs(hash(path.resolve().as_posix()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"Cannot import feature definitions from {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and inspect.getsource look the module up
    try:
        spec.loader.exec_module(module)
    except ConfigError:
        raise
    except Exception as exc:  # the user's file: say where it failed, not a traceback
        raise ConfigError(
            f"{path} failed to import: {type(exc).__name__}: {exc}",
            hint="Fix the feature definitions file (features.definitions).",
        ) from None
    return [
        value
        for value in vars(module).values()
        if isinstance(value, Entity | FeatureView | OnDemandView)
    ]


def load_repo(config: Config) -> FeatureRepo:
    """The project's definitions: ``features.definitions`` (if the file exists) plus
    ``features.entities`` and ``features.views`` from ``shipyard.yaml``."""
    settings = config.features
    objects: list[Entity | FeatureView | OnDemandView] = []
    path = config.resolve(settings.definitions)
    if path.is_file():
        objects.extend(_module_objects(path))
    objects.extend(
        Entity(entity.name, tuple(entity.join_keys), entity.description)
        for entity in settings.entities
    )
    objects.extend(view_from_settings(view) for view in settings.views)
    return FeatureRepo.of(objects)
