"""``shipyard audit``: verify the tamper-evident log, sign checkpoints, read it, prove an event."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.output import console, esc, print_json
from shipyard.errors import AuditFailed

if TYPE_CHECKING:
    from shipyard.governance.audit import AuditReport
    from shipyard.governance.audit_verify import Progress as OnProgress

__all__ = ["app"]

app = typer.Typer(
    help="The tamper-evident audit log: verify, checkpoint, log, proof.", no_args_is_help=True
)

_BIG = 200_000  # leaves: below this a verification is over before a bar would help


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="Check against this checkpoint file (repeatable); default: every file "
            "in security.checkpoints.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recompute every leaf, the tree and the consistency proofs; exit 7 naming the first
    row that was edited, deleted, reordered or inserted."""
    from shipyard.governance.audit import verify

    project = acting(ctx, Scope.AUDIT_READ)
    with _progress(quiet=as_json) as progress:
        report = verify(project, checkpoint or None, progress=progress)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if not report.ok:
        raise AuditFailed(
            report.summary(),
            hint="Restore the database from a backup taken before the first finding, and keep "
            "the checkpoint folder where the database's writers cannot reach it.",
        )


@app.command("checkpoint")
def checkpoint_cmd(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Sign the log's current size and root with the project's key, into a file."""
    from shipyard.governance.audit import write_checkpoint

    saved = write_checkpoint(acting(ctx, Scope.AUDIT_WRITE))
    if as_json:
        print_json(saved.to_dict())
        return
    console.print(f"[green]✓[/] checkpoint of {saved.size:,} leaves, root {esc(saved.root)}")
    console.print(f"  {esc(saved.path)}")
    console.print("  Copy it off this host: whoever can write the database must not reach it.")


@app.command("log")
def log_cmd(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="Only this kind, e.g. alias.promote.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only what this principal did.")] = None,
    subject: Annotated[
        str | None, typer.Option(help="Only subjects starting with this, e.g. model:churn.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only since this time: 2026-11-24, or 7d, 12h.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The log's leaves, newest first: who did what, how they authenticated, and why."""
    from rich.table import Table

    from shipyard.governance.audit import audit_log
    from shipyard.moments import parse_moment

    project = acting(ctx, Scope.AUDIT_READ)
    moment = parse_moment(since) if since else None
    found = audit_log(
        project.store, kind=kind, actor=actor, subject=subject, since=moment, limit=limit
    )
    if as_json:
        print_json([event.to_dict() for event in found])
        return
    table = Table()
    table.add_column("seq", justify="right", no_wrap=True)
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("who (role, token)", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("subject", overflow="fold")
    table.add_column("reason", overflow="fold")
    for event in found:
        when = event.to_dict()["at"][:19].replace("T", " ")
        how = ", ".join(part for part in (event.role, event.token_id) if part)
        who = f"{event.actor} ({how})" if how else event.actor
        table.add_row(str(event.seq), when, who, event.kind, event.subject, event.reason)
    console.print(table, markup=False)  # every cell is data


@app.command("proof")
def proof_cmd(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(help="The leaf's seq (see `shipyard audit log`).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The inclusion proof of one leaf: its hash, index, the tree size and root, the path."""
    from shipyard.governance.audit import inclusion

    proof = inclusion(acting(ctx, Scope.AUDIT_READ), seq)
    if as_json:
        print_json(proof.to_dict())
        return
    console.print(
        f"leaf       seq {esc(proof.seq)} (event id {esc(proof.event_id)}), "
        f"index {esc(proof.index)}"
    )
    console.print(f"leaf hash  {esc(proof.leaf_hash)}")
    console.print(f"tree size  {proof.tree_size:,}")
    console.print(f"root       {esc(proof.root)}")
    console.print("path (from the leaf up):")
    for node in proof.path:
        console.print(f"  {esc(node)}")
    console.print("[green]✓[/] the path leads from the leaf to the root (RFC 6962)")


@contextmanager
def _progress(*, quiet: bool) -> Iterator[OnProgress]:
    """A progress bar on a terminal, for a log big enough to wait for; else nothing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    if quiet or not console.is_terminal:
        yield _silent
        return
    columns = ("Verifying", BarColumn(), MofNCompleteColumn(), "leaves", TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = None

        def advance(done: int, total: int) -> None:
            nonlocal task
            if total < _BIG:
                return
            if task is None:
                task = bar.add_task("verify", total=total)
            bar.update(task, completed=done)

        yield advance


def _silent(_done: int, _total: int) -> None:
    return None


def _print_report(report: AuditReport) -> None:
    """The verdict, every checkpoint and proof, and every finding."""
    from rich.markup import escape

    for check in report.checkpoints:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        console.print(f"{mark} {esc(check.name)}: {check.size:,} leaves at {esc(check.at)}")
    for proof in report.proofs:
        mark = "[green]✓[/]" if proof.ok else "[red]✗[/]"
        console.print(
            f"{mark} consistency {proof.old_size:,} → {proof.new_size:,} ({esc(proof.new)}): "
            f"{esc(len(proof.proof))} hashes"
        )
    if report.ok:
        console.print(f"[green]✓[/] {esc(report.summary())}")
        return
    console.print(f"[red]✗[/] {esc(report.summary())}")
    for finding in report.findings:
        console.print(
            f"  - {escape(f'[{finding.problem}]')} {escape(finding.message)}", soft_wrap=True
        )
    if report.omitted:
        console.print(f"  … and {report.omitted:,} more")
