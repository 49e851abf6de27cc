"""Off one machine: a container build context and Kubernetes / KServe / KEDA manifests."""

from __future__ import annotations

__all__: list[str] = []
