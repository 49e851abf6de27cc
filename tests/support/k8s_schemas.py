"""Validators for generated Kubernetes manifests, offline: no cluster is reachable here.

- Custom resources (KServe ``InferenceService`` and ``ServingRuntime``, KEDA
  ``ScaledObject``) are checked against the CRDs pinned in ``../shared/k8s/`` (their
  ``spec.versions[*].schema.openAPIV3Schema``), made *strict*: every object schema that
  lists ``properties`` and does not set ``x-kubernetes-preserve-unknown-fields`` gets
  ``additionalProperties: false``, so a misspelt or invented field fails, as the API
  server's field validation (``kubectl apply --validate=strict``) would reject it.
- Core kinds (Deployment, Service, HorizontalPodAutoscaler, ConfigMap, Secret) are
  checked with the schemas the ``kubernetes-validate`` package ships, in its strict mode.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = [
    "CRD_FILES",
    "KUBERNETES_VERSION",
    "SCHEMA_ROOT",
    "crd_schema",
    "strict",
    "validate_manifest",
    "yaml_documents",
]

# ../shared/k8s/ next to the repository (override with SHIPYARD_TEST_K8S_SCHEMAS).
SCHEMA_ROOT = Path(
    os.environ.get(
        "SHIPYARD_TEST_K8S_SCHEMAS", Path(__file__).resolve().parents[3] / "shared" / "k8s"
    )
)
# The newest Kubernetes minor kubernetes-validate ships schemas for (checked in a test).
KUBERNETES_VERSION = "1.37.0"

# (apiVersion group, kind) → the pinned CRD file that defines it.
CRD_FILES: dict[tuple[str, str], str] = {
    ("serving.kserve.io", "InferenceService"): "kserve/serving.kserve.io_inferenceservices.yaml",
    ("serving.kserve.io", "ServingRuntime"): "kserve/serving.kserve.io_servingruntimes.yaml",
    (
        "serving.kserve.io",
        "ClusterServingRuntime",
    ): "kserve/serving.kserve.io_clusterservingruntimes.yaml",
    ("keda.sh", "ScaledObject"): "keda/keda.sh_scaledobjects.yaml",
}

_PRESERVE = "x-kubernetes-preserve-unknown-fields"


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 ``schema`` that rejects unknown fields (see the module doc)."""
    schema = copy.deepcopy(schema)
    _tighten(schema)
    return schema


def _tighten(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _tighten(item)
        return
    if not isinstance(node, dict):
        return
    if "properties" in node and not node.get(_PRESERVE) and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for key, value in node.items():
        if key != "enum":  # enum values are data, never schemas
            _tighten(value)


@functools.cache
def _crd_versions(path: str) -> dict[str, Any]:
    document = yaml.safe_load((SCHEMA_ROOT / path).read_text(encoding="utf-8"))
    return {v["name"]: v["schema"]["openAPIV3Schema"] for v in document["spec"]["versions"]}


@functools.cache
def _strict_crd(path: str, version: str) -> Any:
    return strict(_crd_versions(path)[version])


def crd_schema(api_version: str, kind: str, *, strict_mode: bool = True) -> Any:
    """The pinned schema of a custom resource (strict unless told otherwise)."""
    group, _, version = api_version.partition("/")
    path = CRD_FILES.get((group, kind))
    if path is None:
        raise LookupError(f"no pinned CRD for {kind} in {group}")
    if version not in _crd_versions(path):
        raise LookupError(f"the pinned {kind} CRD has no version {version}")
    return _strict_crd(path, version) if strict_mode else _crd_versions(path)[version]


def validate_manifest(document: dict[str, Any]) -> str:
    """Validate one manifest; returns what checked it, raises ``jsonschema.ValidationError``."""
    group = document["apiVersion"].partition("/")[0] if "/" in document["apiVersion"] else ""
    if (group, document["kind"]) in CRD_FILES:
        schema = crd_schema(document["apiVersion"], document["kind"])
        jsonschema.Draft7Validator(schema).validate(document)
        return f"pinned CRD {CRD_FILES[(group, document['kind'])]} (strict)"
    import kubernetes_validate

    try:
        version = kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        raise jsonschema.ValidationError(
            f"{document['kind']} {document['metadata'].get('name')}: {error.message} "
            f"at {'/'.join(str(p) for p in error.absolute_path)}"
        ) from error
    return f"kubernetes-validate {version} (strict)"


def yaml_documents(path: Path) -> Iterator[dict[str, Any]]:
    """The non-empty YAML documents of a file."""
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if document:
            yield document
