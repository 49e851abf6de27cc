"""Continuous training exported to an orchestrator: Kubeflow Pipelines, Argo, Airflow.

:func:`pipeline_spec` describes the steps once (each a ``shipyard`` CLI call in the
image); :func:`export_pipeline` renders them for one target. ``kfp`` and ``hera`` are
optional extras, imported only here, inside the exporter that needs them.
"""

from __future__ import annotations

from shipyard.pipelines.export.spec import (
    DEFAULT_CAUSE,
    TARGETS,
    Param,
    PipelineSpec,
    PipelineStep,
    SecretRef,
    Target,
    pipeline_spec,
)

__all__ = [
    "DEFAULT_CAUSE",
    "TARGETS",
    "Param",
    "PipelineSpec",
    "PipelineStep",
    "SecretRef",
    "Target",
    "export_pipeline",
    "pipeline_spec",
]


def export_pipeline(spec: PipelineSpec, target: Target) -> str:
    """The pipeline for ``target``, as the text of its file (YAML, or a Python DAG)."""
    if target == "kfp":
        from shipyard.pipelines.export.to_kfp import to_kfp

        return to_kfp(spec)
    if target == "argo":
        from shipyard.pipelines.export.to_argo import to_argo

        return to_argo(spec)
    from shipyard.pipelines.export.to_airflow import to_airflow

    return to_airflow(spec)
