"""``shipyard build``: a container build context for one model version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json

__all__ = ["build_cmd"]


def build_cmd(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            help="NAME/VERSION, NAME@ALIAS or NAME (its champion), resolved to a version now."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder to write the context to (new or empty); default build/NAME-VERSION."
        ),
    ] = None,
    bake: Annotated[
        bool,
        typer.Option(
            "--bake", help="Copy the model's files into the image: served without a registry."
        ),
    ] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="The container serves NAME (its champion and traffic) instead of this version.",
        ),
    ] = False,
    wheel: Annotated[
        Path | None,
        typer.Option(help="A prebuilt Shipyard wheel; default: built from the installed source."),
    ] = None,
    extra: Annotated[
        list[str] | None,
        typer.Option(help="A Shipyard extra to install in the image (repeat): s3, postgres, …"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a container build context: Dockerfile, pinned requirements, CI with a scan."""
    from shipyard.deploy.container import build_context
    from shipyard.registry import parse_ref

    project = acting(ctx, Scope.MODELS_READ, parse_ref(ref).name)
    if out is None:
        parsed = parse_ref(ref)
        out = Path("build") / f"{parsed.name}-{parsed.version or parsed.alias or 'champion'}"
        out.parent.mkdir(parents=True, exist_ok=True)
    built = build_context(
        project, ref, out, bake=bake, follow=follow, wheel=wheel, extras=extra or ()
    )
    if as_json:
        print_json(built.to_dict())
        return
    how = "baked in" if built.mode == "bake" else "fetched from the registry at start"
    console.print(
        f"[green]✓[/] Build context for {esc(built.name)}/{esc(built.version)} in "
        f"{esc(built.path)} (model {how})"
    )
    console.print(
        f"  base {esc(built.base_image)}, {built.requirements} pinned requirements, "
        f"wheel {esc(built.wheel)}"
    )
    if built.not_recorded:
        console.print(
            f"  [yellow]not in the recorded environment, pinned as installed here:[/] "
            f"{esc(', '.join(built.not_recorded))}"
        )
    console.print(f"  entrypoint: {esc(' '.join(built.serve))}")
    tag = f"{built.name.lower()}:{built.version}"
    console.print(f"Build it: docker build -t {esc(tag)} {esc(built.path)}")
    if built.mode == "registry":
        console.print(
            "Run it with the registry's URL from a secret: "
            f"docker run -e SHIPYARD_DATABASE_URL -p 8080:8080 {esc(tag)}"
        )
    else:
        console.print(f"Run it: docker run -p 8080:8080 {esc(tag)}")
