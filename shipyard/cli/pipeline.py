"""``shipyard pipeline export NAME --to kfp|argo|airflow``: the CT cycle on an orchestrator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.errors import ConfigError

if TYPE_CHECKING:
    from shipyard.pipelines.export import SecretRef

__all__ = ["app", "export_cmd"]

app = typer.Typer(
    help="Export the continuous-training cycle to Kubeflow Pipelines, Argo Workflows or Airflow.",
    no_args_is_help=True,
)


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    to: Annotated[str, typer.Option("--to", help="kfp, argo or airflow.")],
    image: Annotated[
        str | None,
        typer.Option(help="The image `shipyard build` made; every step runs the CLI in it."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the pipeline here (default: standard output).")
    ] = None,
    cause: Annotated[
        str | None,
        typer.Option(help="The pipeline's default trigger, as JSON (see `shipyard ct start`)."),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            help="ENV=SECRET/KEY: one more environment variable read from a Kubernetes "
            "Secret, or another Secret for SHIPYARD_DATABASE_URL (default shipyard/database-url) "
            "or SHIPYARD_TOKEN (default shipyard/token). Repeatable."
        ),
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Namespace of the workflow or the pods.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0, help="Seconds each roll-out step waits for the agent."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Compile NAME's continuous-training cycle for an orchestrator, one step per gate.

    Steps: start (the trigger's cause, the guards), then validate → retrain → scorecard →
    feature_skew → shadow → canary → promote, each `shipyard ct …` in the image. Secrets
    are passed by reference only. The agent must run beside it: it moves the roll-out.
    """
    from shipyard.pipelines.export import (
        DEFAULT_CAUSE,
        TARGETS,
        export_pipeline,
        pipeline_spec,
    )
    from shipyard.pipelines.gates import ROLLOUT_GATES, gate_names
    from shipyard.pipelines.steps import parse_cause_text

    if to not in TARGETS:
        raise ConfigError(
            f"--to {to!r} is not an orchestrator Shipyard exports to.",
            hint=f"Pass one of: {', '.join(TARGETS)}.",
        )
    if not image:
        raise ConfigError(
            "--image is required: every step runs the image `shipyard build` made.",
            hint=f"Build it (`shipyard build {name}@champion`), push it, and pass "
            f"--image registry.example.com/{name.lower()}:TAG.",
        )
    config = ctx.obj.config()  # the configuration only: nothing is read from the database
    if name != config.model.name:
        raise ConfigError(
            f"This project trains {config.model.name!r}, not {name!r}.",
            hint=f"Run from {name}'s project folder, or pass --config its shipyard.yaml.",
        )
    if cause is not None:
        parse_cause_text(cause)  # refuse a malformed default now, not in the cluster
    spec = pipeline_spec(
        name,
        image,
        gates=gate_names(),
        rollout_gates=ROLLOUT_GATES,
        cause=cause or DEFAULT_CAUSE,
        secrets=_secrets(secret or []),
        timeout=timeout,
        namespace=namespace,
    )
    text = export_pipeline(spec, to)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    if as_json:
        print_json(
            {
                "model": name,
                "to": to,
                "image": image,
                "out": str(out) if out else None,
                "steps": [
                    {"name": s.name, "command": [_shown(part) for part in s.command()]}
                    for s in spec.steps
                ],
                "secrets": [{"env": r.env, "secret": r.secret, "key": r.key} for r in spec.secrets],
                **({} if out else {"pipeline": text}),
            }
        )
    elif out is None:
        typer.echo(text, nl=False)
    else:
        steps = " → ".join(step.name for step in spec.steps)
        console.print(f"Wrote {esc(out)} ({esc(to)}): {esc(steps)}")
        console.print(_next(to, out, spec.name))


def _default_secrets() -> tuple[SecretRef, ...]:
    """The Secret `shipyard deploy k8s` documents: the same name and keys."""
    from shipyard.cli.state import TOKEN_VARIABLE
    from shipyard.pipelines.export import SecretRef

    return (
        SecretRef("SHIPYARD_DATABASE_URL", "shipyard", "database-url"),
        SecretRef(TOKEN_VARIABLE, "shipyard", "token"),
    )


def _shown(part: object) -> str:
    """A step's argument; what the orchestrator fills in as ``{cause}``, ``{cycle}``…"""
    value = getattr(part, "value", None)
    return f"{{{value}}}" if value is not None else str(part)


def _secrets(values: list[str]) -> tuple[SecretRef, ...]:
    """The default references, each replaced by a ``--secret`` for the same variable."""
    from shipyard.pipelines.export import SecretRef

    found = {ref.env: ref for ref in _default_secrets()}
    for value in values:
        env, _, rest = value.partition("=")
        secret, _, key = rest.partition("/")
        if not env or not secret or not key:
            raise ConfigError(
                f"--secret {value!r} is not ENV=SECRET/KEY.",
                hint="Pass e.g. --secret AWS_ACCESS_KEY_ID=shipyard-storage/AWS_ACCESS_KEY_ID.",
            )
        found[env] = SecretRef(env, secret, key)
    return tuple(found.values())


def _next(to: str, out: Path, name: str) -> str:
    if to == "kfp":
        return f"Upload it: kfp pipeline create -p {esc(name)} {esc(out)} (or the KFP UI)."
    if to == "argo":
        return f'Run it: argo submit {esc(out)} -p cause=\'{{"kind": "drift"}}\''
    return f"Copy {esc(out.name)} to Airflow's dags/ folder, then trigger the DAG {esc(name)}."
