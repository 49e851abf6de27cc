"""What every Shipyard pod on Kubernetes shares: the deployment settings, names, labels,
the serving container, its probes, its security context and its volumes.

A pod runs the image ``shipyard build`` made, with the command spelled out
(``shipyard serve NAME --host 0.0.0.0 --port 8080``), so the manifests do not depend on
the image's entrypoint. The project's ``shipyard.yaml`` comes from a ConfigMap, mounted
as one file into a writable ``emptyDir`` (the project folder, ``/srv/shipyard``), so the
root filesystem can stay read-only while the workspace beside the file is writable. The
database URL and the API token come from a Secret by reference (``secretKeyRef``): no
value is ever written into a manifest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from shipyard.errors import ConfigError

__all__ = [
    "AUTOSCALERS",
    "DATABASE_KEY",
    "KEDA_METRICS",
    "MODES",
    "PROJECT_DIR",
    "TOKEN_KEY",
    "Autoscale",
    "KedaMetric",
    "KubernetesSpec",
    "Mode",
    "dns_name",
    "serving_container",
]

Mode = Literal["kserve", "plain", "all"]
Autoscale = Literal["cpu", "rps", "keda"]
KedaMetric = Literal["rps", "queue"]
MODES: tuple[Mode, ...] = ("kserve", "plain", "all")
AUTOSCALERS: tuple[Autoscale, ...] = ("cpu", "rps", "keda")
KEDA_METRICS: tuple[KedaMetric, ...] = ("rps", "queue")

# The image's project folder (`shipyard build` puts shipyard.yaml, the scorecard and the
# public key there, and a baked model with its workspace), and the workspace in it.
PROJECT_DIR = "/srv/shipyard"
CONFIG_FILE = f"{PROJECT_DIR}/shipyard.yaml"
WORKSPACE_DIR = f"{PROJECT_DIR}/.shipyard"
# The Secret's keys for the database URL and the API token. Which environment variables
# carry them is the CLI's to say (``KubernetesSpec.secret_variables``): nothing below the
# CLI names the variable a token is read from.
DATABASE_KEY = "database-url"
TOKEN_KEY = "token"
UID = 10001  # a non-root user; the image's own user need not match (files are world-readable)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def quantity(text: str, *, flag: str) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``512Mi``) as a number, or a ConfigError."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ConfigError(
            f"{flag} {text!r} is not a Kubernetes quantity.",
            hint="Write CPU as 500m or 2, memory as 512Mi or 2Gi.",
        )
    return float(match[1]) * _UNITS[match[2] or ""]


def dns_name(text: str, *, what: str, limit: int = 50) -> str:
    """``text`` as a DNS-1123 label (lower case, digits, '-'), or a ConfigError naming ``what``.

    ``limit`` leaves room for the suffixes the generators add (``-agent``, ``-runtime``).
    """
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:limit].rstrip("-")
    if not name or not _DNS_LABEL.match(name):
        raise ConfigError(
            f"{what} {text!r} cannot be made a Kubernetes name.",
            hint="Names need letters or digits: pass --name with a DNS label such as churn-api.",
        )
    return name


@dataclass(frozen=True)
class KubernetesSpec:
    """How to deploy one model: image, namespace, replicas, autoscaling and resources.

    ``secret_variables`` maps :data:`DATABASE_KEY` and :data:`TOKEN_KEY` to the
    environment variables the CLI reads them from. ``ref`` is what ``shipyard serve`` is
    given in the pod: the model's NAME (the pod
    follows its champion and traffic settings, so promotions and rollbacks need no new
    manifest) or a pinned NAME/VERSION.
    """

    model: str
    image: str
    secret_variables: dict[str, str]  # Secret key -> the variable the CLI reads it from
    ref: str = ""
    name: str = ""
    namespace: str = "default"
    mode: Mode = "all"
    min_replicas: int = 1
    max_replicas: int = 4
    autoscale: Autoscale = "cpu"
    keda_metric: KedaMetric = "rps"
    target_cpu_percent: int = 70
    target_rps: float = 50.0
    target_queue_rows: int = 64
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    secret_name: str = "shipyard"
    port: int = 8080
    workers: int = 1
    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "1Gi"
    memory_limit: str = "2Gi"
    agent: bool = True
    baked: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.ref:
            object.__setattr__(self, "ref", self.model)
        object.__setattr__(self, "name", dns_name(self.name or self.model, what="Model name"))
        dns_name(self.namespace, what="--namespace", limit=63)
        if self.namespace != dns_name(self.namespace, what="--namespace", limit=63):
            raise ConfigError(
                f"--namespace {self.namespace!r} is not a Kubernetes namespace name.",
                hint="Use lower-case letters, digits and '-', e.g. ml-serving.",
            )
        if not self.image.strip() or any(c.isspace() for c in self.image):
            raise ConfigError(
                f"--image {self.image!r} is not an image reference.",
                hint="Pass the image `shipyard build` made, e.g. "
                "registry.example.com/churn-serving:1.",
            )
        missing = {DATABASE_KEY, TOKEN_KEY} - set(self.secret_variables)
        if missing:
            raise ConfigError(f"secret_variables lacks {', '.join(sorted(missing))}.")
        if self.baked and "/" not in self.ref:
            raise ConfigError(
                f"A baked image serves the one version baked into it: {self.ref!r} needs "
                "a version.",
                hint="Pass the NAME/VERSION that `shipyard build --bake` baked, e.g. churn/3.",
            )
        if self.baked and self.agent:
            raise ConfigError(
                "A baked image has no shared control plane for an agent to act on.",
                hint="Drop --agent with --baked; deploy a registry image to run the agent.",
            )
        _choice("--mode", self.mode, MODES)
        _choice("--autoscale", self.autoscale, AUTOSCALERS)
        _choice("--keda-metric", self.keda_metric, KEDA_METRICS)
        if self.min_replicas < 1:
            raise ConfigError(
                f"--min-replicas is {self.min_replicas}: at least 1 warm replica is always kept.",
                hint="Scaling to zero would make the next request wait for a model load; "
                "pass --min-replicas 1 or more.",
            )
        if self.max_replicas < self.min_replicas:
            raise ConfigError(
                f"--max-replicas {self.max_replicas} is below --min-replicas {self.min_replicas}.",
                hint="Pass a --max-replicas at least as large as --min-replicas.",
            )
        if not 1 <= self.target_cpu_percent <= 100:
            raise ConfigError(
                f"--target-cpu {self.target_cpu_percent} is not a percentage of the CPU request.",
                hint="Pass a whole number from 1 to 100, e.g. 70.",
            )
        if self.target_rps <= 0 or self.target_queue_rows < 1:
            raise ConfigError(
                "--target-rps and --target-queue must be positive.",
                hint="They are the load one replica should carry, e.g. 50 requests per second.",
            )
        if not 1 <= self.port <= 65535 or self.workers < 1:
            raise ConfigError(
                f"port {self.port} / workers {self.workers} are out of range.",
                hint="serving.port is 1-65535 in a pod, serving.workers at least 1.",
            )
        for what, request, limit in (
            ("cpu", self.cpu_request, self.cpu_limit),
            ("memory", self.memory_request, self.memory_limit),
        ):
            asked = quantity(request, flag=f"--{what}-request")
            if asked > quantity(limit, flag=f"--{what}-limit") or asked <= 0:
                raise ConfigError(
                    f"--{what}-request {request} must be above 0 and at most --{what}-limit "
                    f"{limit}: Kubernetes refuses a pod that requests more than its limit.",
                    hint=f"Raise --{what}-limit or lower --{what}-request.",
                )

    @property
    def config_map(self) -> str:
        """The ConfigMap that holds shipyard.yaml."""
        return f"{self.name}-config"

    @property
    def selector(self) -> dict[str, str]:
        """The labels that select the serving pods."""
        return {"app.kubernetes.io/instance": self.name, "app.kubernetes.io/component": "serving"}

    def meta(self, name: str, component: str) -> dict[str, Any]:
        """``metadata`` of an object of this deployment: name, namespace and labels."""
        return {"name": name, "namespace": self.namespace, "labels": self.labels_of(component)}

    def labels_of(self, component: str) -> dict[str, str]:
        """The recommended labels, plus the model's name and the user's own labels."""
        return {
            "app.kubernetes.io/name": "shipyard",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "shipyard",
            "shipyard.dev/model": self.name,
            **self.labels,
        }

    def resources(self) -> dict[str, Any]:
        """Requests and limits of the serving container."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


def _choice(flag: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(
            f"{flag} {value!r} is not one of {', '.join(allowed)}.",
            hint=f"Pass {flag} {allowed[0]}, or see `shipyard deploy k8s --help`.",
        )


def secret_env(spec: KubernetesSpec, extra: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Environment variables read from the Secret by reference (never a value)."""
    keys = {**spec.secret_variables, **(extra or {})}
    return [
        {
            "name": variable,
            "valueFrom": {"secretKeyRef": {"name": spec.secret_name, "key": key}},
        }
        for key, variable in keys.items()
    ]


def base_env(spec: KubernetesSpec, extra_secrets: dict[str, str] | None) -> list[dict[str, Any]]:
    """What every Shipyard container is told: its config file, a writable HOME, the Secret.

    A baked image needs no Secret: it serves from its own workspace.
    """
    return [
        {"name": "SHIPYARD_CONFIG", "value": CONFIG_FILE},
        {"name": "HOME", "value": "/tmp"},  # the credentials file and caches go to tmpfs
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        *([] if spec.baked else secret_env(spec, extra_secrets)),
    ]


def container_security(spec: KubernetesSpec) -> dict[str, Any]:
    """Non-root, no privilege escalation, no capabilities, a read-only root filesystem.

    A baked image keeps its SQLite workspace in the image, which the server writes to:
    its root filesystem stays writable (still non-root, nothing else is granted).
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": not spec.baked,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    """The pod's security context: the same non-root user owns the mounted volumes."""
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def volumes(spec: KubernetesSpec) -> list[dict[str, Any]]:
    """/tmp (writable); from the registry also the workspace (writable) and the ConfigMap."""
    tmp = {"name": "tmp", "emptyDir": {}}
    if spec.baked:
        return [tmp]
    return [
        {"name": "workspace", "emptyDir": {}},
        tmp,
        {"name": "config", "configMap": {"name": spec.config_map}},
    ]


def volume_mounts(spec: KubernetesSpec) -> list[dict[str, Any]]:
    """The image's project folder stays as built (its scorecard, its public key); the
    workspace ``.shipyard/`` beside it is writable, and shipyard.yaml is the ConfigMap's."""
    tmp = {"name": "tmp", "mountPath": "/tmp"}
    if spec.baked:
        return [tmp]
    return [
        {"name": "workspace", "mountPath": WORKSPACE_DIR},
        {
            "name": "config",
            "mountPath": CONFIG_FILE,
            "subPath": "shipyard.yaml",
            "readOnly": True,
        },
        tmp,
    ]


def probes(port: int | str) -> dict[str, Any]:
    """Startup, liveness and readiness as docs/kubernetes-probes.md sets them out.

    Liveness and startup ask ``/v2/health/live`` (the process answers); readiness asks
    ``/v2/health/ready`` (503 only when this worker should get no traffic). Both stay
    open when ``serving.auth`` is on, so the probes need no token.
    """
    return {
        "startupProbe": {
            "httpGet": {"path": "/v2/health/live", "port": port},
            "periodSeconds": 5,
            "failureThreshold": 60,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": port},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": port},
            "periodSeconds": 5,
            "timeoutSeconds": 5,
            "failureThreshold": 2,
        },
    }


def serve_args(spec: KubernetesSpec) -> list[str]:
    """``shipyard serve``'s arguments in a pod: every interface, the pod's port."""
    return [
        "serve",
        spec.ref,
        "--host",
        "0.0.0.0",  # every interface: the pod's port is reached through its Service
        "--port",
        str(spec.port),
        "--workers",
        str(spec.workers),
    ]


def serving_container(
    spec: KubernetesSpec,
    *,
    name: str = "shipyard",
    extra_secrets: dict[str, str] | None = None,
    extra_env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The container that runs ``shipyard serve`` (KServe wants it named kserve-container)."""
    return {
        "name": name,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["shipyard"],
        "args": serve_args(spec),
        "workingDir": PROJECT_DIR,
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "env": [*(extra_env or []), *base_env(spec, extra_secrets)],
        "envFrom": storage_env_from(spec),
        "resources": spec.resources(),
        **probes(spec.port),
        # Let the endpoints controller take the pod out of rotation before SIGTERM; the
        # server then drains in-flight requests and flushes its logs.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "securityContext": container_security(spec),
        "volumeMounts": volume_mounts(spec),
    }


def storage_env_from(spec: KubernetesSpec) -> list[dict[str, Any]]:
    """Object-storage credentials (AWS_*, GOOGLE_*, AZURE_*) where no workload identity
    gives them: every key of this optional Secret becomes an environment variable."""
    return [{"secretRef": {"name": f"{spec.secret_name}-storage", "optional": True}}]


def scrape_annotations(port: int) -> dict[str, str]:
    """The prometheus.io annotations most scrape configs read, for ``/metrics``."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
