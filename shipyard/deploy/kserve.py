"""KServe manifests: an InferenceService with Shipyard as its custom predictor container,
and the alternative, a ServingRuntime with an InferenceService that selects it.

Both run in KServe's *Standard* deployment mode (the annotation
``serving.kserve.io/deploymentMode: Standard``; releases before 0.15 called it
``RawDeployment``, which newer ones still accept as an alias): a plain Deployment,
Service and autoscaler, no Knative. Both declare the Open Inference (V2) protocol,
which ``shipyard serve`` speaks: the custom container through KServe's ``PROTOCOL``
environment variable, the runtime through ``protocolVersions`` and the model's
``protocolVersion``. ``minReplicas`` is at least 1, so one warm replica is always kept.

Canary, shadow and sticky routing stay in Shipyard's own router, so they behave the
same on a laptop and in a cluster: the manifests set no ``canaryTrafficPercent``.
"""

from __future__ import annotations

from typing import Any

from shipyard.deploy.autoscaling import keda_query, keda_target
from shipyard.deploy.workload import (
    KubernetesSpec,
    pod_security,
    scrape_annotations,
    serving_container,
    volumes,
)

__all__ = [
    "KSERVE_API",
    "MODEL_FORMAT",
    "inference_service",
    "runtime_inference_service",
    "serving_runtime",
]

KSERVE_API = "serving.kserve.io/v1beta1"
MODEL_FORMAT = "shipyard"  # the format a Shipyard ServingRuntime declares it can serve
_CONTAINER = "kserve-container"  # KServe's name for the predictor's main container


def _annotations(spec: KubernetesSpec) -> dict[str, str]:
    keda = spec.autoscale != "cpu"
    return {
        "serving.kserve.io/deploymentMode": "Standard",
        "serving.kserve.io/autoscalerClass": "keda" if keda else "hpa",
        **scrape_annotations(spec.port),
    }


def _autoscaling(spec: KubernetesSpec) -> dict[str, Any]:
    """``minReplicas``/``maxReplicas`` and ``autoScaling.metrics`` of a predictor."""
    if spec.autoscale == "cpu":
        metric: dict[str, Any] = {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": spec.target_cpu_percent},
            },
        }
    else:  # request rate (or queue depth) through KServe's KEDA autoscaler class
        metric = {
            "type": "External",
            "external": {
                "metric": {
                    "backend": "prometheus",
                    "serverAddress": spec.prometheus_url,
                    "query": keda_query(spec),
                },
                "target": {"type": "AverageValue", "averageValue": keda_target(spec)},
            },
        }
    return {
        "minReplicas": spec.min_replicas,
        "maxReplicas": spec.max_replicas,
        "autoScaling": {"metrics": [metric]},
    }


def _pod(spec: KubernetesSpec) -> dict[str, Any]:
    return {
        "securityContext": pod_security(),
        "terminationGracePeriodSeconds": 45,
        "automountServiceAccountToken": False,
        "volumes": volumes(spec),
    }


def inference_service(spec: KubernetesSpec, extra_secrets: dict[str, str]) -> dict[str, Any]:
    """An InferenceService whose predictor is Shipyard's container running ``shipyard serve``."""
    container = serving_container(
        spec,
        name=_CONTAINER,
        extra_secrets=extra_secrets,
        extra_env=[{"name": "PROTOCOL", "value": "v2"}],
    )
    return {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": {**spec.meta(spec.name, "serving"), "annotations": _annotations(spec)},
        "spec": {
            "predictor": {
                **_autoscaling(spec),
                **_pod(spec),
                "containers": [container],
            }
        },
    }


def serving_runtime(spec: KubernetesSpec, extra_secrets: dict[str, str]) -> dict[str, Any]:
    """A namespaced ServingRuntime that serves the ``shipyard`` model format over V2."""
    container = serving_container(spec, name=_CONTAINER, extra_secrets=extra_secrets)
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {
            **spec.meta(f"{spec.name}-runtime", "serving"),
            "annotations": scrape_annotations(spec.port),
        },
        "spec": {
            "supportedModelFormats": [{"name": MODEL_FORMAT, "version": "1", "autoSelect": True}],
            "protocolVersions": ["v2"],
            "multiModel": False,
            "containers": [container],
            "volumes": volumes(spec),
        },
    }


def runtime_inference_service(spec: KubernetesSpec) -> dict[str, Any]:
    """An InferenceService that selects :func:`serving_runtime` for the ``shipyard`` format.

    There is no ``storageUri``: the runtime's ``shipyard serve`` loads the model from the
    registry (the database and artifact store in the Secret and ConfigMap).
    """
    return {
        "apiVersion": KSERVE_API,
        "kind": "InferenceService",
        "metadata": {**spec.meta(spec.name, "serving"), "annotations": _annotations(spec)},
        "spec": {
            "predictor": {
                **_autoscaling(spec),
                "securityContext": pod_security(),
                "terminationGracePeriodSeconds": 45,
                "automountServiceAccountToken": False,
                "model": {
                    "modelFormat": {"name": MODEL_FORMAT, "version": "1"},
                    "runtime": f"{spec.name}-runtime",
                    "protocolVersion": "v2",
                    "resources": spec.resources(),
                },
            }
        },
    }
