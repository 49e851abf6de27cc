"""``shipyard keys``: the project's signing key pair."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json

__all__ = ["app"]

app = typer.Typer(help="Signing keys for model cards.", no_args_is_help=True)


@app.command("init")
def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(help="Replace an existing key pair.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an Ed25519 key pair: private key outside the repo, public key to commit.

    Recorded in the audit log: ``keys.created``, or ``keys.replaced`` with the old public
    key's fingerprint as the event's before digest.
    """
    from shipyard.governance.cards import private_key_path
    from shipyard.governance.signing import generate_keys
    from shipyard.store.event_kinds import EventKind

    project = acting(ctx, Scope.KEYS_ADMIN)
    config = project.config
    private = private_key_path(config)
    public = config.resolve(config.signing.public_key)
    old = _fingerprint(public)
    fingerprint = generate_keys(private, public, overwrite=force)
    replaced = old is not None and old != fingerprint
    project.store.record(
        EventKind.KEYS_REPLACED if replaced else EventKind.KEYS_CREATED,
        f"project:{config.project}",
        {"fingerprint": fingerprint, "public_key": str(public)}
        | ({"replaced": old} if replaced else {}),
        before=_hex(old) if replaced else None,
        after=_hex(fingerprint),
    )
    if as_json:
        print_json(
            {
                "private_key": str(private),
                "public_key": str(public),
                "fingerprint": fingerprint,
                "replaced": old if replaced else None,
            }
        )
        return
    console.print(f"[green]✓[/] private key {esc(private)} (keep it secret, outside the repo)")
    console.print(f"[green]✓[/] public key  {esc(public)} (commit it)")
    console.print(f"fingerprint {esc(fingerprint)}")


def _fingerprint(public: Path) -> str | None:
    """The fingerprint of the public key at ``public``, if one is there and readable."""
    from shipyard.errors import SigningError
    from shipyard.governance.signing import load_public_key, public_key_fingerprint

    try:
        return public_key_fingerprint(load_public_key(public))
    except SigningError:
        return None


def _hex(fingerprint: str | None) -> str | None:
    """A ``sha256:…`` fingerprint as the 64 hex digits a leaf's digest column holds."""
    return None if fingerprint is None else fingerprint.removeprefix("sha256:")
