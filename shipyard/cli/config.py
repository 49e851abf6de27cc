"""``shipyard config``: show the resolved configuration and generate its reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.output import console, esc, print_json
from shipyard.cli.state import CliState
from shipyard.config.secrets import hidden

__all__ = ["app"]

app = typer.Typer(
    help="Show the resolved configuration; generate its documentation.", no_args_is_help=True
)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    show_secrets: Annotated[
        bool,
        typer.Option(
            "--show-secrets",
            help="Print passwords in URLs, alert-route keys, header values and Slack webhook "
            "paths as they are (hidden as *** by default).",
        ),
    ] = False,
) -> None:
    """Print the configuration after defaults, file, environment and flags.

    Secrets are shown as ``***`` unless ``--show-secrets`` is given: a password in any URL,
    alert routes' ``routing_key`` and header values, and a Slack webhook's path.
    ``${ENV_VAR}`` references are shown as written: they are not the secret.
    """
    state: CliState = ctx.obj
    config = state.config(require_file=False)
    resolved = {
        **config.model_dump(mode="json", by_alias=True),
        "database_url": config.db_url,
        "root": str(config.root),
    }
    if not show_secrets:
        resolved = hidden(resolved)
    if as_json:
        print_json(resolved)
        return
    import yaml

    # Plain text, not Rich: YAML holds brackets ([], ^[a-z]+$) that are not markup, and a
    # long value must stay on its line for the file to parse.
    typer.echo(yaml.safe_dump(resolved, sort_keys=False, width=float("inf")), nl=False)


@app.command("docs")
def docs(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Generate the configuration reference (docs/config.md) from the declarations."""
    from shipyard.config.reference import render_markdown

    text = render_markdown()
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"Wrote {esc(output)}")
