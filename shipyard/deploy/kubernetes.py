"""``shipyard deploy k8s``: Kubernetes, KServe and KEDA manifests for one model.

:func:`render` turns a :class:`~shipyard.deploy.workload.KubernetesSpec` and the
project's ``shipyard.yaml`` into files; :func:`write_manifests` writes them into a new
or empty folder. The layout, so that ``kubectl apply -f`` takes one folder at a time::

    config/       ConfigMap with shipyard.yaml (no database URL, no secret values)
    kserve/       InferenceService: predictor = Shipyard's container (Standard mode)
    kserve-runtime/  ServingRuntime + an InferenceService that selects it (the alternative)
    plain/        Deployment + Service + HorizontalPodAutoscaler, or a KEDA ScaledObject
    agent/        the agent: one replica, strategy Recreate
    examples/     secret.example.yaml (placeholders only), prometheus-adapter rules
    README.md     what each file is and the order to apply them

Secrets are referenced, never written: the pods read ``SHIPYARD_DATABASE_URL`` and
``SHIPYARD_TOKEN`` (and any alert-route secrets) from a Secret with ``secretKeyRef``;
``shipyard.yaml`` in the ConfigMap loses its ``database_url``, and literal alert-route
keys, header values and webhook URLs (PagerDuty's events endpoint aside) become
``${VARIABLE}`` references that the Secret fills. A URL with a password anywhere else
in the file is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipyard.deploy.autoscaling import (
    PODS_METRIC,
    adapter_rules,
    horizontal_pod_autoscaler,
    scaled_object,
)
from shipyard.deploy.k8s_readme import readme
from shipyard.deploy.kserve import inference_service, runtime_inference_service, serving_runtime
from shipyard.deploy.workload import (
    DATABASE_KEY,
    PROJECT_DIR,
    TOKEN_KEY,
    KubernetesSpec,
    base_env,
    container_security,
    pod_security,
    scrape_annotations,
    serving_container,
    storage_env_from,
    volume_mounts,
    volumes,
)
from shipyard.errors import ConfigError

__all__ = [
    "KubernetesManifests",
    "ManifestFile",
    "portable_settings",
    "render",
    "write_manifests",
]

_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.\-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


@dataclass(frozen=True)
class ManifestFile:
    """One generated file: its path in the output folder and its text."""

    path: str
    text: str
    kinds: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The file's path and the kinds of the objects in it."""
        return {"path": self.path, "kinds": list(self.kinds)}


@dataclass(frozen=True)
class KubernetesManifests:
    """Everything :func:`render` made: the files, the Secret's keys, and what to check."""

    files: tuple[ManifestFile, ...]
    secret_keys: dict[str, str] = field(default_factory=dict)  # key -> environment variable
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Files, Secret keys and notes, for ``--json``."""
        return {
            "files": [f.to_dict() for f in self.files],
            "secret_keys": dict(self.secret_keys),
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- shipyard.yaml, portable


def portable_settings(
    settings: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """``shipyard.yaml``'s settings made safe for a ConfigMap.

    Returns the settings without ``database_url`` and with alert-route secrets (routing
    keys, header values, webhook and Slack URLs) replaced
    by ``${VARIABLE}`` references, the Secret keys those references read (key ->
    variable), and notes for the user. Raises ConfigError for a URL with a password in
    any other setting: it would land in the ConfigMap.
    """
    data = yaml.safe_load(yaml.safe_dump(dict(settings), sort_keys=False))  # a deep, plain copy
    notes: list[str] = []
    extra: dict[str, str] = {}
    url = data.pop("database_url", None)
    if not url or str(url).startswith("sqlite"):
        notes.append(
            "shipyard.yaml has no shared database: the Secret's database-url must be a "
            "PostgreSQL URL that every pod reaches (one SQLite file per pod is not one "
            "control plane)."
        )
    routes = (data.get("monitoring") or {}).get("routes") or []
    for index, route in enumerate(routes):
        if not isinstance(route, dict):
            continue
        for name in ("routing_key", "url"):
            value = route.get(name)
            # Webhook and Slack URLs often carry their token in the path: only PagerDuty's
            # events endpoint (the key travels in routing_key) is left as written.
            secret = name == "routing_key" or route.get("kind") != "pagerduty" or _has_secret(value)
            if isinstance(value, str) and secret and not _REFERENCE.match(value):
                route[name] = _to_secret(extra, f"alert-route-{index}-{name}", index, name)
        headers = route.get("headers") or {}
        for header, value in list(headers.items()):
            if isinstance(value, str) and not _REFERENCE.match(value):
                tag = re.sub(r"[^a-z0-9]+", "-", str(header).lower()).strip("-")
                headers[header] = _to_secret(extra, f"alert-route-{index}-header-{tag}", index, tag)
    for where, value in _strings(data, ()):
        if _URL_PASSWORD.search(value):
            raise ConfigError(
                f"{where} in shipyard.yaml holds a URL with a password; it would be written "
                "into the ConfigMap.",
                hint="Move the credential out of shipyard.yaml (an environment variable or "
                "the storage provider's own credentials), then generate again.",
            )
    artifact_root = str(data.get("artifact_root", ".shipyard/artifacts"))
    logs = str((data.get("serving") or {}).get("logs", ".shipyard/logs"))
    for key, value in (("artifact_root", artifact_root), ("serving.logs", logs)):
        if "://" not in value:
            notes.append(
                f"{key} is a local path ({value}): each pod has its own emptyDir, so files "
                f"are not shared between pods or kept across restarts. Set {key} to a "
                "bucket URL (s3://…, gs://…, az://…) for more than one replica."
            )
    return data, extra, notes


def _has_secret(value: Any) -> bool:
    return isinstance(value, str) and (
        "@" in value.partition("://")[2].split("/")[0] or "?" in value
    )


def _to_secret(extra: dict[str, str], key: str, index: int, name: str) -> str:
    variable = f"ALERT_ROUTE_{index}_{name.upper().replace('-', '_')}"
    extra[key] = variable  # not SHIPYARD_*: those would be read as settings
    return "${" + variable + "}"


def _strings(node: Any, where: tuple[str, ...]) -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in _strings(value, (*where, str(key)))]
    if isinstance(node, list):
        return [s for i, value in enumerate(node) for s in _strings(value, (*where, f"[{i}]"))]
    return [(".".join(where).replace(".[", "["), node)] if isinstance(node, str) else []


# ---------------------------------------------------------------- core kinds


def config_map(spec: KubernetesSpec, text: str) -> dict[str, Any]:
    """The ConfigMap that holds the portable shipyard.yaml."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": spec.meta(spec.config_map, "config"),
        "data": {"shipyard.yaml": text},
    }


def _pod_spec(spec: KubernetesSpec, containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "securityContext": pod_security(),
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 45,
        "containers": containers,
        "volumes": volumes(spec),
    }


def deployment(spec: KubernetesSpec, digest: str, extra: dict[str, str]) -> dict[str, Any]:
    """The serving Deployment: ``shipyard serve`` on every replica, rolled without a gap."""
    container = serving_container(spec, extra_secrets=extra)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": spec.meta(spec.name, "serving"),
        "spec": {
            "replicas": spec.min_replicas,
            "selector": {"matchLabels": spec.selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": spec.labels_of("serving"),
                    "annotations": {
                        **scrape_annotations(spec.port),
                        "shipyard.dev/config-sha256": digest,
                    },
                },
                "spec": _pod_spec(spec, [container]),
            },
        },
    }


def service(spec: KubernetesSpec) -> dict[str, Any]:
    """A ClusterIP Service in front of the serving pods (port 80 → the pods' http port)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": spec.meta(spec.name, "serving"),
        "spec": {
            "type": "ClusterIP",
            "selector": spec.selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def agent_deployment(spec: KubernetesSpec, digest: str, extra: dict[str, str]) -> dict[str, Any]:
    """The agent: one replica, replaced with Recreate so two never overlap (a lease also
    guards that), running roll-outs, monitors and continuous training."""
    container = {
        "name": "agent",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["shipyard"],
        "args": ["agent"],
        "workingDir": PROJECT_DIR,
        "env": base_env(spec, extra),
        "envFrom": storage_env_from(spec),
        "resources": {
            # The agent mostly waits; when it retrains it needs what a server would.
            "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request},
            "limits": {"cpu": spec.cpu_limit, "memory": spec.memory_limit},
        },
        "securityContext": container_security(spec),
        "volumeMounts": volume_mounts(spec),
    }
    selector = {"app.kubernetes.io/instance": spec.name, "app.kubernetes.io/component": "agent"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": spec.meta(f"{spec.name}-agent", "agent"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {
                    "labels": spec.labels_of("agent"),
                    "annotations": {"shipyard.dev/config-sha256": digest},
                },
                "spec": _pod_spec(spec, [container]),
            },
        },
    }


def secret_example(spec: KubernetesSpec, extra: dict[str, str]) -> dict[str, Any]:
    """A Secret TEMPLATE with placeholders only; fill it in (or create it with kubectl)."""
    data = {
        DATABASE_KEY: "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE",
        TOKEN_KEY: "REPLACE-WITH: shipyard tokens create --name k8s --role operator",
    }
    data.update({key: f"REPLACE-WITH: the value of {var}" for key, var in extra.items()})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": spec.meta(spec.secret_name, "config"),
        "type": "Opaque",
        "stringData": data,
    }


# ---------------------------------------------------------------- rendering and writing


class _Dumper(yaml.SafeDumper):
    """YAML without anchors: every object written out in full, as kubectl shows it."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_presenter)


def _dump(documents: list[dict[str, Any]], header: str) -> str:
    body = "---\n".join(
        yaml.dump(d, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        for d in documents
    )
    return f"# {header}\n" + body


def render(
    spec: KubernetesSpec, settings: Mapping[str, Any], *, version: str = ""
) -> KubernetesManifests:
    """The manifests for ``spec``, with ``settings`` (shipyard.yaml's mapping) in the ConfigMap.

    A baked image (``spec.baked``) brings its own shipyard.yaml and workspace: no
    ConfigMap, no Secret, no agent.
    """
    made = f"Generated by `shipyard deploy k8s {spec.ref}`"
    made += f" (shipyard {version})" if version else ""
    files: list[ManifestFile] = []

    def add(path: str, documents: list[dict[str, Any]], what: str) -> None:
        kinds = tuple(str(d.get("kind", "")) for d in documents if "kind" in d)
        files.append(ManifestFile(path, _dump(documents, f"{made}: {what}"), kinds))

    if spec.baked:
        extra: dict[str, str] = {}
        digest = hashlib.sha256(spec.image.encode()).hexdigest()
        notes = [
            f"{spec.image} serves {spec.ref} from the workspace baked into it: every pod "
            "answers alone, with its own prediction log, and a promotion or rollback "
            "needs a new image. Deploy an image that fetches from the registry to follow "
            "the champion, roll out and monitor across pods."
        ]
    else:
        portable, extra, notes = portable_settings(settings)
        config_text = yaml.safe_dump(portable, sort_keys=False, allow_unicode=True)
        digest = hashlib.sha256(config_text.encode()).hexdigest()
        add("config/configmap.yaml", [config_map(spec, config_text)], "shipyard.yaml, no secrets")
    if spec.mode in ("kserve", "all"):
        add(
            "kserve/inferenceservice.yaml",
            [inference_service(spec, extra)],
            "KServe InferenceService, Shipyard as the predictor container (Standard mode)",
        )
        add(
            "kserve-runtime/servingruntime.yaml",
            [serving_runtime(spec, extra), runtime_inference_service(spec)],
            "KServe ServingRuntime and an InferenceService that selects it (the alternative)",
        )
    if spec.mode in ("plain", "all"):
        add("plain/deployment.yaml", [deployment(spec, digest, extra)], "serving Deployment")
        add("plain/service.yaml", [service(spec)], "Service in front of the serving pods")
        if spec.autoscale == "keda":
            add("plain/scaledobject.yaml", [scaled_object(spec)], "KEDA ScaledObject")
        else:
            add("plain/hpa.yaml", [horizontal_pod_autoscaler(spec)], "HorizontalPodAutoscaler")
    if spec.agent:
        add("agent/deployment.yaml", [agent_deployment(spec, digest, extra)], "the agent")
    if not spec.baked:
        add(
            "examples/secret.example.yaml",
            [secret_example(spec, extra)],
            "TEMPLATE with placeholders only: never commit it filled in",
        )
    if spec.autoscale == "rps" and spec.mode in ("plain", "all"):
        add(
            "examples/prometheus-adapter-rules.yaml",
            [adapter_rules(spec)],
            f"prometheus-adapter rule serving {PODS_METRIC} (adapter config, not an object)",
        )
    keys = {} if spec.baked else {**spec.secret_variables, **extra}
    files.append(ManifestFile("README.md", readme(spec, keys, notes)))
    return KubernetesManifests(tuple(files), keys, tuple(notes))


def write_manifests(manifests: KubernetesManifests, directory: Path) -> list[Path]:
    """Write the files into ``directory``, which must not exist or be empty."""
    if directory.exists():
        if not directory.is_dir():
            raise ConfigError(
                f"{directory} is a file, not a folder.", hint="Pass --emit a new folder."
            )
        if any(directory.iterdir()):
            raise ConfigError(
                f"{directory} is not empty; nothing was written.",
                hint="Pass --emit a new or empty folder, so no old manifest is mixed in.",
            )
    written = []
    for manifest in manifests.files:
        path = directory / manifest.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(manifest.text, encoding="utf-8")
        written.append(path)
    return written
