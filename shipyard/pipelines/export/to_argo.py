"""Argo Workflows: the cycle as a ``Workflow``, built with ``hera``.

One container template per step, run in order by a ``steps`` template. The first step
writes the cycle id to a file that becomes its output parameter; each gate takes it as
an input. The trigger is the workflow parameter ``cause`` (``argo submit … -p
cause='{"kind": "drift"}'``). The database URL and token come from ``secretKeyRef``.
"""

from __future__ import annotations

from typing import Any

from shipyard.errors import ConfigError
from shipyard.pipelines.export.spec import Param, PipelineSpec

__all__ = ["to_argo"]

EXTRA = "pip install 'shipyard-mlops[argo]'"
ID_FILE = "/tmp/shipyard-cycle-id"


def to_argo(spec: PipelineSpec) -> str:
    """The Workflow as YAML."""
    try:
        from hera.workflows import Container, Parameter, SecretEnv, Steps, Workflow
        from hera.workflows import models as m
    except ImportError as error:
        raise ConfigError(
            f"Exporting to Argo Workflows needs hera ({error.name} is missing).",
            hint=f"Install the extra: {EXTRA}",
        ) from error

    env = [SecretEnv(name=r.env, secret_name=r.secret, secret_key=r.key) for r in spec.secrets]
    security = m.SecurityContext(
        run_as_non_root=True,
        allow_privilege_escalation=False,
        capabilities=m.Capabilities(drop=["ALL"]),
    )
    values = {
        Param.CAUSE: "{{inputs.parameters.cause}}",
        Param.CYCLE: "{{inputs.parameters.cycle}}",
        Param.ID_FILE: ID_FILE,
    }
    with Workflow(
        generate_name=f"{spec.name}-",
        namespace=spec.namespace,
        entrypoint="cycle",
        arguments=[Parameter(name="cause", value=spec.cause)],
        labels={"app.kubernetes.io/part-of": "shipyard", "shipyard.dev/model": spec.slug},
    ) as workflow:
        templates: list[Any] = []
        for step in spec.steps:
            command = [values[p] if isinstance(p, Param) else p for p in step.command()]
            opening = Param.CAUSE in step.command()
            templates.append(
                Container(
                    name=step.name,
                    image=spec.image,
                    command=command[:1],
                    args=command[1:],
                    env=env,
                    security_context=security,
                    inputs=[Parameter(name="cause" if opening else "cycle")],
                    outputs=(
                        [Parameter(name="cycle", value_from=m.ValueFrom(path=ID_FILE))]
                        if opening
                        else []
                    ),
                )
            )
        with Steps(name="cycle"):
            first = spec.steps[0].name
            for step, template in zip(spec.steps, templates, strict=True):
                if step.name == first:
                    template(name=step.name, arguments={"cause": "{{workflow.parameters.cause}}"})
                else:
                    cycle = f"{{{{steps.{first}.outputs.parameters.cycle}}}}"
                    template(name=step.name, arguments={"cycle": cycle})
    return str(workflow.to_yaml())
