"""The continuous-training pipeline as each orchestrator renders it: steps, order, CLI.

One :class:`PipelineSpec` says what runs: a first step that opens the cycle (``shipyard
ct start NAME --cause …``, writing the cycle id where the orchestrator picks it up), then
one step per gate (``shipyard ct step CYCLE GATE``), in the order a cycle records them,
each in the image ``shipyard build`` made, with the database URL and token taken from a
Kubernetes Secret by reference. The exporters only translate it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from shipyard.errors import ConfigError

__all__ = [
    "DEFAULT_CAUSE",
    "TARGETS",
    "Param",
    "PipelineSpec",
    "PipelineStep",
    "SecretRef",
    "Target",
    "pipeline_spec",
]

Target = Literal["kfp", "argo", "airflow"]
TARGETS: tuple[Target, ...] = ("kfp", "argo", "airflow")
DEFAULT_CAUSE = '{"kind": "manual", "reason": "pipeline run"}'


class Param(Enum):
    """A value the orchestrator fills in when the step runs."""

    CAUSE = "cause"  # the pipeline's parameter: the trigger, as JSON
    CYCLE = "cycle"  # the first step's output: the cycle id
    ID_FILE = "id_file"  # where the first step writes the cycle id for the orchestrator


Arg = str | Param


@dataclass(frozen=True)
class SecretRef:
    """An environment variable read from a key of a Kubernetes Secret (never its value)."""

    env: str
    secret: str
    key: str


@dataclass(frozen=True)
class PipelineStep:
    """One step: its name, the ``shipyard`` arguments it runs, and what it does."""

    name: str
    args: tuple[Arg, ...]
    description: str

    def command(self) -> tuple[Arg, ...]:
        """The full command line: ``shipyard`` and its arguments."""
        return ("shipyard", *self.args)


@dataclass(frozen=True)
class PipelineSpec:
    """The cycle of one model as an orchestrator runs it, one step after another."""

    model: str
    image: str
    steps: tuple[PipelineStep, ...]
    secrets: tuple[SecretRef, ...]
    cause: str = DEFAULT_CAUSE
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        """The model's name as a DNS label (lower case, digits, '-')."""
        slug = re.sub(r"[^a-z0-9-]+", "-", self.model.lower()).strip("-")
        return re.sub(r"-{2,}", "-", slug)[:40].rstrip("-") or "model"

    @property
    def name(self) -> str:
        """A DNS-label name for the pipeline: ``shipyard-ct-<model>``."""
        return f"shipyard-ct-{self.slug}"


def pipeline_spec(
    model: str,
    image: str,
    *,
    gates: tuple[str, ...],
    rollout_gates: tuple[str, ...],
    secrets: tuple[SecretRef, ...],
    cause: str = DEFAULT_CAUSE,
    timeout: float | None = None,
    namespace: str | None = None,
) -> PipelineSpec:
    """The steps of ``model``'s cycle: start, then every gate in ``gates`` in order.

    ``rollout_gates`` (shadow, canary, promote) wait for the roll-out, each up to
    ``timeout`` seconds (the CLI's default when None). ``secrets`` are the environment
    variables every step reads from Secrets: the database URL and the token it acts with.
    """
    if not image or any(c.isspace() for c in image):
        raise ConfigError(
            f"--image {image!r} is not an image reference.",
            hint="Pass the image `shipyard build` made, e.g. --image registry.example.com/"
            f"{model.lower()}:1.",
        )
    for ref in secrets:
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", ref.env) or not ref.secret or not ref.key:
            raise ConfigError(
                f"Secret reference {ref.env}={ref.secret}/{ref.key} is not ENV=SECRET/KEY.",
                hint="Pass e.g. --secret SHIPYARD_DATABASE_URL=shipyard/database-url.",
            )
    first = PipelineStep(
        "start",
        ("ct", "start", model, "--cause", Param.CAUSE, "--id-file", Param.ID_FILE),
        "open the cycle for the trigger, after the cooldown and other guards",
    )
    steps = [first]
    for gate in gates:
        args: tuple[Arg, ...] = ("ct", "step", Param.CYCLE, gate)
        if gate in rollout_gates and timeout is not None:
            args += ("--timeout", f"{timeout:g}")
        what = (
            f"wait for the roll-out to pass its {gate} gate (the agent moves it), and record it"
            if gate in rollout_gates
            else f"run the {gate} gate and record it; a failure halts the cycle"
        )
        steps.append(PipelineStep(gate, args, what))
    return PipelineSpec(model, image, tuple(steps), secrets, cause, namespace)
