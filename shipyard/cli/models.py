"""``shipyard models``: list, show and trace registered model versions."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from shipyard.cli.output import console, print_json
from shipyard.cli.state import CliState

__all__ = ["app"]

app = typer.Typer(help="Registered models, versions and lineage.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _client(ctx: typer.Context) -> Any:
    from shipyard.registry import Tracking

    state: CliState = ctx.obj
    return Tracking(state.config()).client


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every registered model with its newest version and aliases."""
    from rich.table import Table

    from shipyard.registry import list_models

    models = list_models(_client(ctx))
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
    console.print(table)


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
        f"[bold]{detail.name}/{detail.version}[/]  {detail.status}  "
        f"registered by {detail.registered_by}  {detail.created_at or ''}"
    )
    console.print(f"run {detail.run_id or '—'}   source {detail.source}")
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
            console.print(table)


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
    tree = Tree(f"[bold]model version[/] {found.name}/{found.version}")
    run = tree.add(f"[bold]run[/] {found.run.get('id') or '—'} {found.run.get('status', '')}")
    ds = found.dataset
    data = run.add(f"[bold]dataset[/] {ds.get('source') or '—'}")
    if ds.get("digest"):
        data.add(f"digest {ds['digest']}")
    if ds.get("mlflow_digest") and not ds.get("digest"):
        data.add(f"MLflow digest {ds['mlflow_digest']}")
    if ds.get("dvc_md5"):
        data.add(f"DVC md5 {ds['dvc_md5']} ({ds.get('dvc_path')})")
    git = found.git
    dirty = " (dirty work tree)" if git.get("dirty") else ""
    run.add(f"[bold]git commit[/] {git.get('commit', '—')}{dirty}")
    run.add(f"[bold]environment[/] {found.environment.get('digest', '—')}")
    run.add(f"[bold]trigger[/] {found.trigger or '—'}")
    console.print(tree)
    if found.missing:
        console.print("[yellow]not recorded:[/] " + ", ".join(found.missing))
