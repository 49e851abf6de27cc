"""``shipyard llm``: LLM versions, prices and cost, caps, evaluations, traces.

The group's commands live in one module per concern and register themselves here:
:mod:`~shipyard.cli.llm_versions` (register, show), :mod:`~shipyard.cli.llm_costs`
(prices, cost, traces), :mod:`~shipyard.cli.llm_caps` (caps) and
:mod:`~shipyard.cli.llm_evals` (evaluate, evals). Prompts have their own group,
``shipyard prompts`` (:mod:`~shipyard.cli.llm_prompts`).
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "prompts_app"]

app = typer.Typer(
    help="LLM versions, the price table and cost, per-tenant caps, judge evaluations, traces.",
    no_args_is_help=True,
)
prompts_app = typer.Typer(
    help="The prompt registry: versions, labels (production is protected), rollback.",
    no_args_is_help=True,
)

for _module in ("llm_versions", "llm_costs", "llm_caps", "llm_evals"):
    importlib.import_module(f"shipyard.cli.{_module}").register(app)

importlib.import_module("shipyard.cli.llm_prompts").register(prompts_app)
