"""Off one machine: a container build context and Kubernetes / KServe / KEDA manifests.

    build_context(project, "churn/3", Path("build/churn-3"))        # shipyard build
    write_manifests(render(spec, settings), Path("k8s"))             # shipyard deploy k8s

Canary, shadow and sticky routing stay inside Shipyard's router, so a roll-out behaves the
same on a laptop and in a cluster; the manifests only run and scale ``shipyard serve``.
"""

from __future__ import annotations

from shipyard.deploy.container import BuildContext, build_context
from shipyard.deploy.kubernetes import KubernetesManifests, ManifestFile, render, write_manifests
from shipyard.deploy.pins import Pin, Pins, pin_requirements
from shipyard.deploy.workload import KubernetesSpec

__all__ = [
    "BuildContext",
    "KubernetesManifests",
    "KubernetesSpec",
    "ManifestFile",
    "Pin",
    "Pins",
    "build_context",
    "pin_requirements",
    "render",
    "write_manifests",
]
