"""Commands of ``shipyard features`` (see :mod:`shipyard.cli.features`): apply, list, show, diff."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json

if TYPE_CHECKING:
    from shipyard.features.registry import Change

__all__ = ["register"]

ViewArg = Annotated[str, typer.Argument(help="Feature view name, e.g. driver_stats.")]


def _ttl(seconds: float | None) -> str:
    if seconds is None:
        return "forever"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _source(source: dict[str, Any]) -> str:
    kind = source.get("kind")
    if kind == "file":
        return f"file {source.get('path')}"
    if kind == "sql":
        return f"DuckDB SQL: {' '.join(str(source.get('sql')).split())}"
    database = source.get("database") or "the project's database"
    return f"PostgreSQL table {source.get('table')} in {database}"


def _print_changes(changes: tuple[Change, ...] | list[Change], indent: str = "  ") -> None:
    for change in changes:
        console.print(esc(f"{indent}{change}"))


def apply_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Register the feature definitions (features.py and shipyard.yaml): one version each."""
    from shipyard.features.registry import apply

    result = apply(acting(ctx, Scope.MODELS_TRAIN))
    if as_json:
        print_json(result.to_dict())
        return
    if not result.views:
        console.print("No feature views are defined (features.py or features.views).")
    for view in result.views:
        label = f"{esc(view.name)} ({esc(view.kind)})"
        if view.status == "new":
            console.print(f"{label}: new, version {esc(view.version)}")
        elif view.status == "unchanged":
            console.print(f"{label}: unchanged, version {esc(view.version)}")
        else:
            console.print(f"{label}: changed, version {esc(view.previous)} → {esc(view.version)}")
            _print_changes(view.changes)


def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the applied feature views: current version, entities, features, ttl."""
    from rich.table import Table

    from shipyard.features.registry import list_views

    found = list_views(acting(ctx, Scope.MODELS_READ))
    if as_json:
        print_json([_summary(v.to_dict()) for v in found])
        return
    if not found:
        console.print("No feature views applied yet: run `shipyard features apply`.")
        return
    table = Table("view", "kind", "version", "entities", "features", "ttl", "applied by", "at")
    for view in found:
        row = _summary(view.to_dict())
        table.add_row(
            view.name,
            view.kind,
            view.version,
            ",".join(row["entities"]),
            str(row["features"]),
            "" if view.kind == "on_demand" else _ttl(row["ttl_seconds"]),
            view.applied_by,
            f"{view.applied_at:%Y-%m-%d %H:%M}",
        )
    console.print(table, markup=False)  # every cell is data


def _summary(stored: dict[str, Any]) -> dict[str, Any]:
    definition = stored["definition"]
    return {
        "name": stored["name"],
        "kind": stored["kind"],
        "version": stored["version"],
        "entities": list(definition.get("entities") or []),
        "features": len(definition.get("features") or []),
        "ttl_seconds": definition.get("ttl_seconds"),
        "applied_by": stored["applied_by"],
        "applied_at": stored["applied_at"],
    }


def show_cmd(
    ctx: typer.Context,
    name: ViewArg,
    version: Annotated[
        str | None, typer.Option(help="Which version (a unique prefix will do; default current).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a feature view's definition and its version history."""
    from rich.table import Table

    from shipyard.features.registry import show

    detail = show(acting(ctx, Scope.MODELS_READ), name, version)
    if as_json:
        print_json(detail.to_dict())
        return
    view, definition = detail.view, detail.view.definition
    console.print(f"{esc(view.name)} ({esc(view.kind)}) version {esc(view.version)}")
    if view.kind == "on_demand":
        console.print(f"sources: {esc(', '.join(definition.get('sources') or []))}")
    else:
        created = definition.get("created_timestamp_column") or "none"
        console.print(f"entities: {esc(', '.join(definition.get('entities') or []))}")
        console.print(f"source: {esc(_source(definition.get('source') or {}))}")
        console.print(
            f"event time: {esc(definition.get('timestamp_field'))}, created: {esc(created)}, "
            f"ttl: {esc(_ttl(definition.get('ttl_seconds')))}, "
            f"missing: {esc(definition.get('missing'))}"
        )
    features = Table("feature", "type", "pii", "source type")
    for feature in definition.get("features") or []:
        features.add_row(
            feature["name"],
            feature["dtype"],
            "yes" if feature.get("pii") else "",
            view.source_schema.get(feature["name"], ""),
        )
    console.print(features, markup=False)
    history = Table("version", "applied by", "at", "")
    for stored in detail.versions:
        history.add_row(
            stored.version,
            stored.applied_by,
            f"{stored.applied_at:%Y-%m-%d %H:%M:%S}",
            "current" if stored.version == detail.current else "",
        )
    console.print(history, markup=False)


def diff_cmd(
    ctx: typer.Context,
    name: ViewArg,
    from_version: Annotated[
        str | None, typer.Option("--from", help="Stored version to compare from (default current).")
    ] = None,
    to_version: Annotated[
        str | None,
        typer.Option("--to", help="Stored version to compare to (default: the definition files)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what changed in a feature view between two versions (default: applied → files)."""
    from shipyard.features.registry import diff_versions

    found = diff_versions(acting(ctx, Scope.MODELS_READ), name, from_version, to_version)
    if as_json:
        print_json(found.to_dict())
        return
    target = found.to_version + ("" if to_version else " (files)")
    console.print(f"{esc(found.name)}: {esc(found.from_version)} → {esc(target)}")
    if not found.changes:
        console.print("  no changes")
    _print_changes(found.changes)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``features`` group."""
    app.command("apply")(apply_cmd)
    app.command("list")(list_cmd)
    app.command("show")(show_cmd)
    app.command("diff")(diff_cmd)
