"""``shipyard keys``: the project's signing key pair."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.output import console
from shipyard.cli.state import CliState
from shipyard.store.event_kinds import EventKind

__all__ = ["app"]

app = typer.Typer(help="Signing keys for model cards.", no_args_is_help=True)


@app.command("init")
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(help="Replace an existing key pair.")] = False,
) -> None:
    """Create an Ed25519 key pair: private key outside the repo, public key to commit."""
    from shipyard.governance.cards import private_key_path
    from shipyard.governance.signing import generate_keys

    state: CliState = ctx.obj
    config = state.config()
    private = private_key_path(config)
    public = config.resolve(config.signing.public_key)
    fingerprint = generate_keys(private, public, overwrite=force)
    state.store().record(
        EventKind.KEYS_CREATED,
        f"project:{config.project}",
        {"fingerprint": fingerprint, "public_key": str(public)},
    )
    console.print(f"[green]✓[/] private key {private} (keep it secret, outside the repo)")
    console.print(f"[green]✓[/] public key  {public} (commit it)")
    console.print(f"fingerprint {fingerprint}")
