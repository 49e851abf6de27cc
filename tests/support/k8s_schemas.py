"""Validators for generated Kubernetes manifests, offline: no cluster is reachable here.

- Custom resources (KServe ``InferenceService`` and ``ServingRuntime``, KEDA
  ``ScaledObject``) are checked against the CRDs pinned in ``../shared/k8s/`` (their
  ``spec.versions[*].schema.openAPIV3Schema``), made *strict*: every object schema that
  lists ``properties`` and does not set ``x-kubernetes-preserve-unknown-fields`` gets
  ``additionalProperties: false``, so a misspelt or invented field fails, as the API
  server's field validation (``kubectl apply --validate=strict``) would reject it.
- Core kinds (Deployment, Service, HorizontalPodAutoscaler, ConfigMap, Secret) are
  checked with the schemas the ``kubernetes-validate`` package ships, in its strict mode.

Both are loaded once per test session: the KServe CRD alone is 2 MB of YAML (read with
libyaml's loader where PyYAML has it), and ``kubernetes_validate.validate`` re-reads its
1.8 MB ``_definitions.json`` on every call, so the same validation is done here with a
validator built once per kind.
"""

from __future__ import annotations

import copy
import functools
import os
import re
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

# The CRDs of ../shared/k8s/, copied unchanged into tests/support/k8s/ (its README names the
# upstream commits) so a clone alone runs the suite; SHIPYARD_TEST_K8S_SCHEMAS points elsewhere.
SCHEMA_ROOT = Path(os.environ.get("SHIPYARD_TEST_K8S_SCHEMAS", Path(__file__).parent / "k8s"))
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
    return _tightened(schema)


def _tightened(node: Any) -> Any:
    """``node`` rebuilt, with ``additionalProperties: false`` where the module doc says."""
    if isinstance(node, list):
        return [_tightened(item) for item in node]
    if not isinstance(node, dict):
        return node
    # enum values are data, never schemas: copied as they are
    tight = {k: copy.deepcopy(v) if k == "enum" else _tightened(v) for k, v in node.items()}
    if "properties" in node and not node.get(_PRESERVE) and "additionalProperties" not in node:
        tight["additionalProperties"] = False
    return tight


# libyaml parses the 2 MB InferenceService CRD several times faster than pure Python.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _crd_versions(path: str) -> dict[str, Any]:
    document = yaml.load((SCHEMA_ROOT / path).read_text(encoding="utf-8"), Loader=_YAML_LOADER)
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
    version, validator = _core_validator(document["apiVersion"], document["kind"])
    try:
        validator.validate(document)
    except jsonschema.ValidationError as error:
        raise jsonschema.ValidationError(
            f"{document['kind']} {document['metadata'].get('name')}: {error.message} "
            f"at {'/'.join(str(p) for p in error.absolute_path)}"
        ) from error
    return f"kubernetes-validate {version} (strict)"


@functools.cache
def _core_validator(api_version: str, kind: str) -> tuple[str, jsonschema.protocols.Validator]:
    """What ``kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)``
    checks ``kind`` with (the same files, the same draft), built once: its version and
    validator. An unknown kind raises the package's ``SchemaNotFoundError``, as it does."""
    import referencing
    from kubernetes_validate import utils

    version = [
        v
        for v in utils.all_versions()
        if utils.major_minor(v) <= utils.major_minor(KUBERNETES_VERSION)
    ][-1]
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as the package names its files
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{api}.json", KUBERNETES_VERSION)
    except FileNotFoundError as error:
        raise utils.SchemaNotFoundError(
            version=utils.major_minor(KUBERNETES_VERSION), kind=kind, api_version=api_version
        ) from error
    definitions = utils.schema_contents(f"{folder}/_definitions.json", KUBERNETES_VERSION)
    registry: referencing.Registry[Any] = (
        referencing.Resource.from_contents(schema) @ referencing.Registry()
    )
    registry = referencing.Resource.from_contents(definitions) @ registry
    validator = jsonschema.validators.Draft202012Validator(schema, registry=registry)
    return utils.major_minor(version), validator


def yaml_documents(path: Path) -> Iterator[dict[str, Any]]:
    """The non-empty YAML documents of a file."""
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if document:
            yield document
