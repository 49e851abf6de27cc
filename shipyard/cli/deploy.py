"""``shipyard deploy``: manifests that run a registered model on Kubernetes or KServe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.acting import Scope, acting
from shipyard.cli.options import JsonOpt
from shipyard.cli.output import console, esc, print_json
from shipyard.cli.state import CliState
from shipyard.errors import ConfigError, NotFoundError

__all__ = ["app"]

app = typer.Typer(
    help="Deploy a model off one machine: Kubernetes, KServe and KEDA manifests.",
    no_args_is_help=True,
)


@app.command("k8s")
def k8s_cmd(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            help="NAME (the pods follow its champion and traffic settings) or a pinned "
            "NAME/VERSION."
        ),
    ],
    emit: Annotated[
        Path, typer.Option("--emit", help="New or empty folder to write the manifests to.")
    ],
    image: Annotated[
        str | None,
        typer.Option(help="Image `shipyard build` made, e.g. registry.example.com/churn:1."),
    ] = None,
    namespace: Annotated[str, typer.Option(help="Kubernetes namespace.")] = "default",
    name: Annotated[
        str | None,
        typer.Option(help="Name of the objects (default: the model's name as a DNS label)."),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="kserve, plain (Deployment + Service + autoscaler) or all.")
    ] = "all",
    min_replicas: Annotated[
        int, typer.Option(help="Fewest serving replicas; at least 1 (a warm replica).")
    ] = 1,
    max_replicas: Annotated[int, typer.Option(help="Most serving replicas.")] = 4,
    autoscale: Annotated[
        str,
        typer.Option(
            help="cpu (HPA on CPU), rps (HPA on requests/s through the Prometheus adapter) "
            "or keda (a KEDA ScaledObject on Prometheus)."
        ),
    ] = "cpu",
    keda_metric: Annotated[
        str, typer.Option(help="What KEDA scales on: rps (request rate) or queue (batch queue).")
    ] = "rps",
    target_cpu: Annotated[int, typer.Option(help="CPU utilisation target, % of request.")] = 70,
    target_rps: Annotated[float, typer.Option(help="Requests per second per replica.")] = 50.0,
    target_queue: Annotated[int, typer.Option(help="Queued rows per replica (KEDA).")] = 64,
    prometheus_url: Annotated[
        str, typer.Option(help="Prometheus that KEDA queries.")
    ] = "http://prometheus-operated.monitoring.svc:9090",
    secret: Annotated[
        str, typer.Option(help="Secret holding database-url and token (referenced, never read).")
    ] = "shipyard",
    cpu_request: Annotated[str, typer.Option(help="CPU request per serving pod.")] = "500m",
    cpu_limit: Annotated[str, typer.Option(help="CPU limit per serving pod.")] = "2",
    memory_request: Annotated[str, typer.Option(help="Memory request per serving pod.")] = "1Gi",
    memory_limit: Annotated[str, typer.Option(help="Memory limit per serving pod.")] = "2Gi",
    agent: Annotated[
        bool | None,
        typer.Option(
            help="Also deploy the agent (one replica, strategy Recreate); default: yes, "
            "unless --baked."
        ),
    ] = None,
    baked: Annotated[
        bool,
        typer.Option(
            "--baked",
            help="The image was built with `shipyard build --bake`: it serves the pinned "
            "NAME/VERSION from its own workspace (no ConfigMap, Secret or agent).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write Kubernetes, KServe and KEDA manifests that serve NAME; secrets are referenced."""
    from shipyard import __version__
    from shipyard.cli.state import TOKEN_VARIABLE
    from shipyard.config.loading import ENV_PREFIX
    from shipyard.deploy.kubernetes import render, write_manifests
    from shipyard.deploy.workload import DATABASE_KEY, TOKEN_KEY, KubernetesSpec
    from shipyard.registry import parse_ref

    if image is None:
        raise ConfigError(
            "--image is required: the pods run the image `shipyard build` made.",
            hint=f"Build one with `shipyard build {ref}`, push it, then pass "
            "--image registry.example.com/NAME:TAG.",
        )
    state: CliState = ctx.obj
    config = state.config()
    model_ref = parse_ref(ref)
    if model_ref.alias:
        raise ConfigError(
            f"{ref}: pods serve NAME (its champion and traffic) or a pinned NAME/VERSION.",
            hint=f"Pass {model_ref.name} or {model_ref.name}/VERSION.",
        )
    spec = KubernetesSpec(
        model=model_ref.name,
        ref=str(model_ref),
        image=image,
        # The variables the CLI reads the database URL and the token from, in the pod too.
        secret_variables={DATABASE_KEY: f"{ENV_PREFIX}DATABASE_URL", TOKEN_KEY: TOKEN_VARIABLE},
        namespace=namespace,
        name=name or "",
        mode=mode,  # type: ignore[arg-type]  # KubernetesSpec checks it
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        autoscale=autoscale,  # type: ignore[arg-type]
        keda_metric=keda_metric,  # type: ignore[arg-type]
        target_cpu_percent=target_cpu,
        target_rps=target_rps,
        target_queue_rows=target_queue,
        prometheus_url=prometheus_url,
        secret_name=secret,
        port=config.serving.port or 8080,
        workers=config.serving.workers,
        cpu_request=cpu_request,
        cpu_limit=cpu_limit,
        memory_request=memory_request,
        memory_limit=memory_limit,
        agent=not baked if agent is None else agent,
        baked=baked,
    )
    _check_output(emit)
    _require_model(ctx, model_ref.name, model_ref.version)
    manifests = render(spec, _settings(state), version=__version__)
    write_manifests(manifests, emit)
    if as_json:
        print_json({"folder": str(emit), **manifests.to_dict()})
        return
    console.print(f"Wrote {len(manifests.files)} files for {esc(spec.model)} to {esc(emit)}:")
    for manifest in manifests.files:
        kinds = f"  ({', '.join(manifest.kinds)})" if manifest.kinds else ""
        console.print(f"  {esc(manifest.path)}{esc(kinds)}")
    console.print(
        f"Secret {esc(spec.secret_name)} needs the keys "
        f"{esc(', '.join(manifests.secret_keys))} (see README.md there)."
    )
    for note in manifests.notes:
        console.print(f"[yellow]![/] {esc(note)}", soft_wrap=True)


def _check_output(folder: Path) -> None:
    """Refuse a file or a non-empty folder before anything is read or written."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(
            f"--emit {folder} is not a new or empty folder; nothing was written.",
            hint="Pass --emit a new or empty folder, so no old manifest is mixed in.",
        )


def _require_model(ctx: typer.Context, name: str, version: str | None) -> None:
    """The model (and the pinned version) must be registered in this project."""
    from shipyard.registry.mlflow_tables import list_models

    with acting(ctx, Scope.MODELS_READ, name).store.session() as session:
        models = {m.name: m for m in list_models(session)}
    found = models.get(name)
    if found is None:
        known = ", ".join(sorted(models)) or "none yet"
        raise NotFoundError(
            f"No registered model named {name!r} in this project.",
            hint=f"Registered models: {known}. Train one with `shipyard train`.",
        )
    if version is not None and int(version) > int(found.latest_version or 0):
        raise NotFoundError(
            f"{name} has no version {version} (newest: {found.latest_version}).",
            hint=f"`shipyard models show {name}` lists its versions.",
        )


def _settings(state: CliState) -> dict[str, Any]:
    """The mapping in the project's shipyard.yaml, as the user wrote it."""
    import yaml

    from shipyard.config.loading import find_config_file

    path = state.config_path or find_config_file()
    if path is None:
        return {}
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}
