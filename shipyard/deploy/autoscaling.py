"""Autoscaling for the plain Deployment: a HorizontalPodAutoscaler or a KEDA ScaledObject.

The request-rate signals are Shipyard's own ``/metrics`` series (``shipyard/serving/
metrics.py``):

- ``shipyard_requests_total{model, version, role, protocol, status}``: every answered
  prediction request, per worker; its rate without ``role="shadow"`` (shadow copies run
  off the request path) is the load a replica carries;
- ``shipyard_batch_queue_rows``: rows waiting for the micro-batcher's next predict call;
  a queue that stays long means the replicas cannot keep up.

An HPA reads the rate as the Pods metric ``shipyard_requests_per_second``, which the
Prometheus adapter derives with the rule :func:`adapter_rules` writes. KEDA queries
Prometheus itself. The minimum is never below one replica: a warm replica is always kept.
"""

from __future__ import annotations

from typing import Any

from shipyard.deploy.workload import KubernetesSpec

__all__ = [
    "PODS_METRIC",
    "QUEUE_SERIES",
    "REQUEST_SERIES",
    "adapter_rules",
    "horizontal_pod_autoscaler",
    "keda_query",
    "scaled_object",
]

REQUEST_SERIES = "shipyard_requests_total"
QUEUE_SERIES = "shipyard_batch_queue_rows"
PODS_METRIC = "shipyard_requests_per_second"  # what the adapter rule names the rate
RATE_WINDOW = "2m"


def _behaviour() -> dict[str, Any]:
    # Scale up at once, down slowly: a model load is the expensive part of a new replica.
    return {
        "scaleUp": {"stabilizationWindowSeconds": 0},
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        },
    }


def horizontal_pod_autoscaler(spec: KubernetesSpec) -> dict[str, Any]:
    """An autoscaling/v2 HPA on CPU utilisation, or on requests per second per pod."""
    if spec.autoscale == "rps":
        metric: dict[str, Any] = {
            "type": "Pods",
            "pods": {
                "metric": {"name": PODS_METRIC},
                "target": {"type": "AverageValue", "averageValue": _quantity(spec.target_rps)},
            },
        }
    else:
        metric = {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": spec.target_cpu_percent},
            },
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": spec.meta(spec.name, "serving"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [metric],
            "behavior": _behaviour(),
        },
    }


def keda_query(spec: KubernetesSpec) -> str:
    """The PromQL KEDA (or KServe's KEDA autoscaler) scales on, for this model's pods."""
    where = f'namespace="{spec.namespace}"'
    if spec.keda_metric == "queue":
        return f'sum({QUEUE_SERIES}{{{where}, pod=~"{spec.name}-.*"}})'
    return (
        f'sum(rate({REQUEST_SERIES}{{{where}, model="{spec.model}", role!="shadow"}}'
        f"[{RATE_WINDOW}]))"
    )


def keda_target(spec: KubernetesSpec) -> str:
    """The per-replica target of :func:`keda_query`."""
    if spec.keda_metric == "queue":
        return str(spec.target_queue_rows)
    return _quantity(spec.target_rps)


def scaled_object(spec: KubernetesSpec) -> dict[str, Any]:
    """A KEDA ScaledObject with a Prometheus trigger; KEDA makes and owns the HPA."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": spec.meta(spec.name, "serving"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicaCount": spec.min_replicas,
            "maxReplicaCount": spec.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behaviour()}},
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "requests" if spec.keda_metric == "rps" else "queue",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": spec.prometheus_url,
                        "query": keda_query(spec),
                        "threshold": keda_target(spec),
                        "ignoreNullValues": "true",
                    },
                }
            ],
        },
    }


def adapter_rules(spec: KubernetesSpec) -> dict[str, Any]:
    """The prometheus-adapter rule that serves :data:`PODS_METRIC` to the HPA.

    Not a Kubernetes object: merge it into the adapter's ``rules.custom`` (Helm values)
    or its config file.
    """
    return {
        "rules": [
            {
                "seriesQuery": f'{REQUEST_SERIES}{{namespace!="",pod!=""}}',
                "resources": {
                    "overrides": {
                        "namespace": {"resource": "namespace"},
                        "pod": {"resource": "pod"},
                    }
                },
                "name": {"matches": f"^{REQUEST_SERIES}$", "as": PODS_METRIC},
                "metricsQuery": (
                    f'sum(rate(<<.Series>>{{<<.LabelMatchers>>,role!="shadow"}}[{RATE_WINDOW}])) '
                    "by (<<.GroupBy>>)"
                ),
            }
        ]
    }


def _quantity(value: float) -> str:
    """A Kubernetes quantity for a rate: whole numbers plain, fractions in milli-units."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"
