"""``shipyard features``: definitions, training sets, the online store, skew, Feast import.

The group's commands live in one module per concern and register themselves here:
:mod:`~shipyard.cli.features_defs` (apply, list, show, diff),
:mod:`~shipyard.cli.features_sets` (training-set), :mod:`~shipyard.cli.features_online`
(materialize, get), :mod:`~shipyard.cli.features_skew` (skew) and
:mod:`~shipyard.cli.features_feast` (import-feast).
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Feature store: views, point-in-time training sets, online features, skew.",
    no_args_is_help=True,
)

for _module in (
    "features_defs",
    "features_sets",
    "features_online",
    "features_skew",
    "features_feast",
):
    importlib.import_module(f"shipyard.cli.{_module}").register(app)
