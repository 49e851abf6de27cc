"""``shipyard models``: list, show and trace registered model versions."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, parse_moment
from shipyard.cli.output import console, esc, print_json
from shipyard.moments import as_utc

__all__ = ["app"]

app = typer.Typer(help="Registered models, versions and lineage.", no_args_is_help=True)


def _client(ctx: typer.Context) -> Any:
    return acting(ctx, Scope.MODELS_READ).client


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every registered model with its newest version and aliases."""
    from rich.table import Table

    from shipyard.registry.mlflow_tables import list_models

    # MLflow's tables, read in SQL: the same answer as MLflow's client without importing it.
    with acting(ctx, Scope.MODELS_READ).store.session() as session:
        models = list_models(session)
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    if not models:
        console.print("No registered models yet. Train one with `shipyard train`.")
        return
    table = Table("name", "latest", "versions", "aliases", "updated")
    for m in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items()))
        table.add_row(m.name, m.latest_version or "—", str(m.versions), aliases, m.updated_at or "")
    console.print(table, markup=False)  # every cell is data


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME/VERSION or NAME@ALIAS.")],
    as_json: JsonOpt = False,
) -> None:
    """One version: status, aliases, tags, params and metrics of its run."""
    from rich.table import Table

    from shipyard.registry import parse_ref, show_version

    detail = show_version(_client(ctx), parse_ref(ref))
    if as_json:
        print_json(detail.to_dict())
        return
    console.print(
        f"[bold]{esc(detail.name)}/{esc(detail.version)}[/]  {esc(detail.status)}  "
        f"registered by {esc(detail.registered_by)}  {esc(detail.created_at or '')}"
    )
    console.print(f"run {esc(detail.run_id or '—')}   source {esc(detail.source)}")
    if detail.aliases:
        console.print("aliases: " + ", ".join(detail.aliases))
    for title, values in (
        ("metrics", detail.metrics),
        ("params", detail.params),
        ("tags", detail.tags),
    ):
        if values:
            table = Table(title, "value", title_justify="left")
            for key, value in sorted(values.items()):
                table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
            console.print(table, markup=False)


@app.command("lineage")
def lineage_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")],
    as_json: JsonOpt = False,
) -> None:
    """The chain version → run → dataset → git commit → environment → trigger."""
    from rich.tree import Tree

    from shipyard.registry import lineage, parse_ref

    found = lineage(_client(ctx), parse_ref(ref))
    if as_json:
        print_json(found.to_dict())
        return
    tree = Tree(f"[bold]model version[/] {esc(found.name)}/{esc(found.version)}")
    run = tree.add(
        f"[bold]run[/] {esc(found.run.get('id') or '—')} {esc(found.run.get('status', ''))}"
    )
    ds = found.dataset
    data = run.add(f"[bold]dataset[/] {esc(ds.get('source') or '—')}")
    if ds.get("digest"):
        data.add(f"digest {esc(ds['digest'])}")
    if ds.get("mlflow_digest") and not ds.get("digest"):
        data.add(f"MLflow digest {esc(ds['mlflow_digest'])}")
    if ds.get("dvc_md5"):
        data.add(f"DVC md5 {esc(ds['dvc_md5'])} ({esc(ds.get('dvc_path'))})")
    feats = found.features
    if feats:
        node = data.add(
            f"[bold]training set[/] {esc(feats.get('mode', '?'))} mode, entity keys "
            f"{esc(', '.join(feats.get('entity_keys', [])))}, entities digest "
            f"{esc(feats.get('entities_digest', '—'))}"
        )
        for view, version in sorted(feats.get("views", {}).items()):
            node.add(f"view {esc(view)} version {esc(version)}")
        node.add("features " + esc(", ".join(feats.get("features", []))))
    git = found.git
    dirty = " (dirty work tree)" if git.get("dirty") else ""
    run.add(f"[bold]git commit[/] {esc(git.get('commit', '—'))}{dirty}")
    run.add(f"[bold]environment[/] {esc(found.environment.get('digest', '—'))}")
    run.add(f"[bold]trigger[/] {esc(found.trigger or '—')}")
    console.print(tree)
    if found.missing:
        console.print("[yellow]not recorded:[/] " + esc(", ".join(found.missing)))


@app.command("history")
def history_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    at: Annotated[
        str | None,
        typer.Option(help="Also say which version was champion then (ISO time, or 3d ago)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every alias move, override and approval: when, who, from which version to which, why."""
    from rich.table import Table

    from shipyard.governance.history import history
    from shipyard.registry.aliases import champion_at

    store = acting(ctx, Scope.MODELS_READ, name).store
    entries = history(store, name)
    champion = None
    if at is not None:
        champion = champion_at(store, name, parse_moment(at, flag="--at"))
    if as_json:
        payload: dict[str, Any] = {"model": name, "entries": [e.to_dict() for e in entries]}
        if at is not None:
            payload["champion_at"] = {"at": at, "version": champion}
        print_json(payload)
        return
    table = Table()
    table.add_column("when (UTC)", no_wrap=True)
    for column in ("who", "action", "alias", "from", "to", "why"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            as_utc(e.at).strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            e.action,
            e.alias or "",
            e.from_version or "—",
            e.to_version or "—",
            e.reason,
        )
    console.print(table if entries else f"No history for {esc(name)} yet.", markup=False)
    if at is not None:
        console.print(f"champion at {esc(at)}: {esc(champion or 'none')}")


@app.command("prune")
def prune_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    keep: Annotated[int, typer.Option(min=0, help="Always keep the N newest versions.")] = 5,
    yes: Annotated[bool, typer.Option("--yes", help="Archive them (default: only show).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Archive never-promoted versions older than the N newest (shows first; --yes acts)."""
    from shipyard.registry.prune import archive, prune_candidates

    project = acting(ctx, Scope.MODELS_DEPLOY, name)
    client, store = project.client, project.store
    candidates = prune_candidates(store, client, name, keep=keep)
    archived = archive(store, client, candidates) if yes else 0
    if as_json:
        print_json({"candidates": [c.version for c in candidates], "archived": archived})
        return
    if not candidates:
        console.print(f"Nothing to prune for {esc(name)}.")
        return
    listed = ", ".join(c.version for c in candidates)
    if yes:
        console.print(f"[green]✓[/] archived {esc(name)} versions {esc(listed)}")
    else:
        console.print(
            f"Would archive {esc(name)} versions {esc(listed)} (never promoted, older than the "
            f"{esc(keep)} newest). Run again with --yes to archive them."
        )


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS.")],
    as_json: JsonOpt = False,
) -> None:
    """Check a promoted version's signed model card and its model artifact; exit 1 if not."""
    from shipyard.governance.cards import verify_version
    from shipyard.registry import get_version, parse_ref

    project = acting(ctx, Scope.MODELS_READ, parse_ref(ref).name)
    version = get_version(project.client, parse_ref(ref))
    result = verify_version(project, version)
    label = f"{version.name}/{version.version}"
    if as_json:
        print_json(
            {
                "model": version.name,
                "version": str(version.version),
                "ok": result.ok,
                "problems": result.problems,
            }
        )
    elif result.ok:
        console.print(f"[green]✓[/] {esc(label)}: signature and model artifact verified")
    else:
        console.print(f"[red]✗[/] {esc(label)} failed verification:")
        for problem in result.problems:
            console.print(f"  - {esc(problem)}")
    if not result.ok:
        raise typer.Exit(1)
