"""What the dashboard's pages show: the functions that fill :mod:`shipyard.ui.views`' records.

    window = parse_range("6h", None, None, default=config.ui.default_range)
    rows = fleet_rows(project, window)              # what needs attention first
    view = model_view(project, "churn", window)     # a chart per panel, roll-outs, cycles
    version = version_view(project, "churn", "2")   # lineage, scorecards, card, serving
    audit = audit_view(project, "rollback", None, 50, 0)
    llm = llm_view(project, "assistant", window)    # an LLM model's section (else None)

The pages only render these. Charts come from :data:`SERIES`, one function per model
panel of :mod:`shipyard.ui.panels`. Unknown models and versions raise
:class:`~shipyard.errors.NotFoundError` naming what exists; a malformed range raises
:class:`RangeError` listing the accepted forms.
"""

from __future__ import annotations

from shipyard.ui.data.audit import audit_view
from shipyard.ui.data.context import ChartContext
from shipyard.ui.data.extent import x_extent
from shipyard.ui.data.fleet import fleet_rows
from shipyard.ui.data.llm import LlmView, llm_view
from shipyard.ui.data.models import known_models, kpi_view, model_view
from shipyard.ui.data.ranges import ACCEPTED, RangeError, TimeRange, parse_range
from shipyard.ui.data.series import SERIES
from shipyard.ui.data.versions import version_view

__all__ = [
    "ACCEPTED",
    "SERIES",
    "ChartContext",
    "LlmView",
    "RangeError",
    "TimeRange",
    "audit_view",
    "fleet_rows",
    "known_models",
    "kpi_view",
    "llm_view",
    "model_view",
    "parse_range",
    "version_view",
    "x_extent",
]
