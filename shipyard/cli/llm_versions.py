"""``shipyard llm register`` and ``shipyard llm show``: LLM versions in the model registry.

    shipyard llm register --provider openai --model gpt-4o-mini \\
        --prompt support@production --param temperature=0 --description "v1 prompt"
    shipyard llm show assistant@champion

A registered LLM version is promoted, approved, rolled out and rolled back with the
same commands as a trained model (``shipyard promote assistant/2 --to challenger``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, RefArg
from shipyard.cli.output import console, esc, print_json

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``register`` and ``show`` to the ``shipyard llm`` group."""
    app.command("register")(register_cmd)
    app.command("show")(show_cmd)


def register_cmd(
    ctx: typer.Context,
    provider: Annotated[str, typer.Option(help="One of llm.providers.")],
    model: Annotated[str, typer.Option(help="The provider's model name.")],
    prompt: Annotated[
        str | None,
        typer.Option(help="NAME@label or NAME/VERSION (default: llm.prompt@production)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="NAME=VALUE, e.g. temperature=0 (repeatable)."),
    ] = None,
    description: Annotated[str, typer.Option(help="What this version changes.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a new LLM version: provider + model + a pinned prompt version + parameters."""
    from shipyard.llm.registry import parse_params, register_llm

    params = parse_params(param or [])
    state = ctx.obj
    name = state.project().config.model.name
    project = acting(ctx, Scope.MODELS_TRAIN, name)
    version = register_llm(
        project,
        provider=provider,
        model=model,
        prompt=prompt,
        params=params,
        description=description,
    )
    if as_json:
        print_json(version.to_dict())
        return
    console.print(
        f"[green]✓[/] registered {esc(version.ref)}: {esc(version.provider)}/{esc(version.model)}"
        f" with prompt {esc(version.prompt)}/{esc(version.prompt_version)}"
    )
    console.print(f"next: shipyard promote {esc(version.ref)} --to challenger")


def show_cmd(ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """One LLM version: provider, model, pinned prompt version, parameters and template."""
    from shipyard.llm.registry import show_llm
    from shipyard.registry import parse_ref

    parsed = parse_ref(ref)
    version = show_llm(acting(ctx, Scope.MODELS_READ, parsed.name), parsed)
    if as_json:
        print_json(version.to_dict())
        return
    aliases = ", ".join(version.aliases) or "none"
    console.print(f"[bold]{esc(version.ref)}[/]  aliases: {esc(aliases)}")
    console.print(f"provider: {esc(version.provider)}  model: {esc(version.model)}")
    console.print(
        f"prompt: {esc(version.prompt)}/{esc(version.prompt_version)} "
        f"(digest {esc(version.prompt_digest)})"
    )
    params = ", ".join(f"{k}={v}" for k, v in sorted(version.params.items())) or "none"
    console.print(f"params: {esc(params)}")
    if version.description:
        console.print(f"description: {esc(version.description)}")
    template = version.template
    if isinstance(template, str):
        console.print(template, markup=False)
    else:
        for message in template:
            console.print(f"[{message['role']}] {message['content']}", markup=False)
