"""``shipyard prompts``: register prompt versions, move labels, read the history, roll back.

shipyard prompts register support --file support.txt -m "shorter answers"
shipyard prompts label support production --version 2 --reason "judge 4.3 vs 4.1"
shipyard prompts show support@production
shipyard prompts history support --at 2026-11-24
shipyard prompts rollback support
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt, parse_moment
from shipyard.cli.output import console, esc, print_json

__all__ = ["register"]

NameArg = Annotated[str, typer.Argument(help="The prompt's name.")]


def register(app: typer.Typer) -> None:
    """Add the prompt commands to the ``shipyard prompts`` group."""
    app.command("register")(register_cmd)
    app.command("label")(label_cmd)
    app.command("list")(list_cmd)
    app.command("show")(show_cmd)
    app.command("history")(history_cmd)
    app.command("rollback")(rollback_cmd)


def _read_template(file: Path | None, template: str | None) -> Any:
    from shipyard.errors import ConfigError

    if (file is None) == (template is None):
        raise ConfigError(
            "Give the template with --file PATH or --template TEXT (one of them).",
            hint="A .json file holds a chat template: a list of {role, content} messages.",
        )
    if template is not None:
        return template
    assert file is not None
    if not file.is_file():
        raise ConfigError(f"--file: {file} is not a file.")
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".json":
        import orjson

        try:
            loaded = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"--file: {file} is not valid JSON: {exc}.") from None
        return loaded.get("messages", loaded) if isinstance(loaded, dict) else loaded
    return text


def register_cmd(
    ctx: typer.Context,
    name: NameArg,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Template file: text, or .json chat messages."),
    ] = None,
    template: Annotated[
        str | None, typer.Option("--template", "-t", help="The template text itself.")
    ] = None,
    message: Annotated[
        str, typer.Option("--message", "-m", help="What changed (the commit message).")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Add a version of a prompt (variables are written {{name}})."""
    from shipyard.llm.prompts import register_prompt

    text = _read_template(file, template)
    project = acting(ctx, Scope.MODELS_TRAIN, name)
    version = register_prompt(project, name, text, message)
    if as_json:
        print_json(version.to_dict())
        return
    needs = ", ".join(version.variables) or "no variables"
    console.print(
        f"[green]✓[/] registered {esc(version.ref)} ({esc(needs)}; digest {esc(version.digest)})"
    )


def label_cmd(
    ctx: typer.Context,
    name: NameArg,
    label: Annotated[str, typer.Argument(help="production, staging, …")],
    version: Annotated[int, typer.Option("--version", "-v", help="The version to point at.")],
    reason: Annotated[str, typer.Option(help="Why; recorded in the history.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Point a label at a version (production needs models:deploy)."""
    from shipyard.llm.prompts import PRODUCTION, label_prompt

    scope = Scope.MODELS_DEPLOY if label == PRODUCTION else Scope.MODELS_TRAIN
    project = acting(ctx, scope, name)
    move = label_prompt(project, name, label, str(version), reason)
    if as_json:
        print_json(move.to_dict())
        return
    was = f" (was {move.from_version})" if move.from_version else ""
    console.print(f"[green]✓[/] {esc(name)}@{esc(label)} → {esc(move.to_version)}{esc(was)}")


def list_cmd(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A prompt: list its versions instead.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every prompt with its labels; or, given NAME, every version of that prompt."""
    from shipyard.llm.prompts import list_prompts, prompt_versions

    if name is not None:
        versions = prompt_versions(acting(ctx, Scope.MODELS_READ, name), name)
        if as_json:
            print_json([v.to_dict() for v in versions])
            return
        for version in versions:
            labels = f"  [{', '.join(version.labels)}]" if version.labels else ""
            console.print(
                f"{esc(version.ref)}  {esc(version.created_at or '')}  {esc(version.digest)}"
                f"{esc(labels)}  {esc(version.message)}"
            )
        return
    prompts = list_prompts(acting(ctx, Scope.MODELS_READ))
    if as_json:
        print_json([p.to_dict() for p in prompts])
        return
    if not prompts:
        console.print("No prompts yet: `shipyard prompts register NAME --file template.txt`.")
        return
    for prompt in prompts:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(prompt.labels.items())) or "no labels"
        console.print(
            f"{esc(prompt.name)}  {prompt.versions} version(s), latest {esc(prompt.latest_version)}"
            f"  {esc(f'[{labels}]')}"
        )


def show_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME, NAME@label or NAME/VERSION.")],
    as_json: JsonOpt = False,
) -> None:
    """One prompt version: its template, variables and labels."""
    from shipyard.llm.prompts import parse_prompt_ref, resolve_prompt

    parsed = parse_prompt_ref(ref)
    version = resolve_prompt(acting(ctx, Scope.MODELS_READ, parsed.name), parsed)
    if as_json:
        print_json(version.to_dict())
        return
    labels = ", ".join(version.labels) or "none"
    console.print(f"[bold]{esc(version.ref)}[/]  labels: {esc(labels)}  digest {version.digest}")
    if version.message:
        console.print(f"message: {esc(version.message)}")
    console.print(f"variables: {esc(', '.join(version.variables) or 'none')}")
    if isinstance(version.template, str):
        console.print(version.template, markup=False)
    else:
        for message in version.template:
            console.print(f"[{message['role']}] {message['content']}", markup=False)


def history_cmd(
    ctx: typer.Context,
    name: NameArg,
    label: Annotated[str | None, typer.Option(help="Only this label's moves.")] = None,
    at: Annotated[
        str | None,
        typer.Option(help="Which version the label (default production) held then: ISO or 7d."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every label move of a prompt, oldest first; or the version a label held at a time."""
    from shipyard.llm.prompts import PRODUCTION, prompt_history, prompt_label_at

    project = acting(ctx, Scope.MODELS_READ, name)
    if at is not None:
        moment = parse_moment(at, flag="--at")
        held = prompt_label_at(project, name, moment, label or PRODUCTION)
        if as_json:
            print_json({"prompt": name, "label": label or PRODUCTION, "at": moment,
                        "version": held})  # fmt: skip
        else:
            console.print(
                f"{esc(name)}@{esc(label or PRODUCTION)} at {moment.isoformat()}: "
                f"{esc(held or 'not set yet')}"
            )
        return
    moves = prompt_history(project, name, label)
    if as_json:
        print_json([m.to_dict() for m in moves])
        return
    if not moves:
        console.print(f"No label moves recorded for {esc(name)}.")
    for move in moves:
        frm = move.from_version or "-"
        why = f"  {move.reason}" if move.reason else ""
        console.print(
            f"{move.at.isoformat(timespec='seconds')}  {esc(move.alias)}  {esc(frm)} → "
            f"{esc(move.to_version)}  {esc(move.action)} by {esc(move.actor)}{esc(why)}"
        )


def rollback_cmd(
    ctx: typer.Context,
    name: NameArg,
    label: Annotated[str, typer.Option(help="The label to move back.")] = "production",
    to: Annotated[int | None, typer.Option(help="An earlier version (default: previous).")] = None,
    reason: Annotated[str, typer.Option(help="Why; recorded in the history.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Move a label back to the version it held before (twice walks further back)."""
    from shipyard.llm.prompts import PRODUCTION, rollback_prompt

    scope = Scope.MODELS_DEPLOY if label == PRODUCTION else Scope.MODELS_TRAIN
    project = acting(ctx, scope, name)
    move = rollback_prompt(project, name, label, to=None if to is None else str(to), reason=reason)
    if as_json:
        print_json(move.to_dict())
        return
    console.print(
        f"[green]✓[/] {esc(name)}@{esc(label)} rolled back {esc(move.from_version)} → "
        f"{esc(move.to_version)}"
    )
