"""Kubeflow Pipelines v2: the cycle as IR YAML, compiled by ``kfp`` itself.

Each step is a container component running the ``shipyard`` CLI in the image; the first
step's output parameter (the cycle id, written to the file KFP names) feeds every gate,
and each gate runs ``.after()`` the previous one. Caching is off: a gate is an action on
the control plane, never a pure function of its inputs. The Secret references are the
``kfp-kubernetes`` platform config (``use_secret_as_env``), so no value is ever in the
YAML.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError
from shipyard.pipelines.export.spec import Param, PipelineSpec, PipelineStep

if TYPE_CHECKING:
    from kfp.dsl.base_component import BaseComponent

__all__ = ["to_kfp"]

EXTRA = "pip install 'shipyard-mlops[kfp]'"


def to_kfp(spec: PipelineSpec) -> str:
    """The compiled pipeline (KFP v2 IR, YAML with the Kubernetes platform spec)."""
    try:
        from kfp import compiler, dsl
    except ImportError as error:
        raise ConfigError(
            "Exporting to Kubeflow Pipelines needs kfp, which is not installed.",
            hint=f"Install the extra: {EXTRA}",
        ) from error
    try:
        from kfp import kubernetes as k8s
    except ImportError as error:
        raise ConfigError(
            "Exporting to Kubeflow Pipelines needs kfp-kubernetes (the Secret references "
            "are its platform config), which is not installed.",
            hint=f"Install the extra: {EXTRA}",
        ) from error

    components = {step.name: _component(spec, step) for step in spec.steps}
    by_secret: dict[str, dict[str, str]] = {}
    for ref in spec.secrets:
        by_secret.setdefault(ref.secret, {})[ref.key] = ref.env

    def pipeline(cause: str = spec.cause) -> None:
        previous: Any = None
        cycle: Any = None
        for step in spec.steps:
            if cycle is None:
                task = components[step.name](cause=cause)
                cycle = task.outputs["cycle"]
            else:
                task = components[step.name](cycle=cycle)
            task.set_display_name(step.name)
            task.set_caching_options(False)
            for secret, keys in by_secret.items():
                k8s.use_secret_as_env(task, secret_name=secret, secret_key_to_env=keys)
            if previous is not None:
                task.after(previous)
            previous = task

    pipeline.__name__ = spec.name.replace("-", "_")
    pipeline.__annotations__ = {"cause": str}  # as objects, for KFP (see _component)
    compiled = dsl.pipeline(
        name=spec.name,
        description=f"Shipyard continuous training of {spec.model}: "
        + " → ".join(step.name for step in spec.steps),
    )(pipeline)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pipeline.yaml"
        compiler.Compiler().compile(compiled, str(path))
        return path.read_text()


def _component(spec: PipelineSpec, step: PipelineStep) -> BaseComponent:
    from kfp import dsl

    image, command = spec.image, step.command()
    # KFP reads each component's interface from its annotations, as objects: this module's
    # postponed (string) annotations are replaced by the real types below.

    def render(values: dict[Param, Any]) -> list[Any]:
        return [values[part] if isinstance(part, Param) else part for part in command]

    if Param.CAUSE in command:

        def opening(cause: str, cycle: dsl.OutputPath(str)) -> dsl.ContainerSpec:  # type: ignore[valid-type]
            line = render({Param.CAUSE: cause, Param.ID_FILE: cycle})
            return dsl.ContainerSpec(image=image, command=line[:1], args=line[1:])

        opening.__name__ = _name(step)
        opening.__annotations__ = {"cause": str, "cycle": dsl.OutputPath(str)}
        return dsl.container_component(opening)

    def gate(cycle: str) -> dsl.ContainerSpec:
        line = render({Param.CYCLE: cycle})
        return dsl.ContainerSpec(image=image, command=line[:1], args=line[1:])

    gate.__name__ = _name(step)
    gate.__annotations__ = {"cycle": str}
    return dsl.container_component(gate)


def _name(step: PipelineStep) -> str:
    return f"shipyard_ct_{step.name}".replace("-", "_")
