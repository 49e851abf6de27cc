"""The dashboard: web pages (``shipyard ui``), the panel list, and the Grafana export.

The pages are server-rendered (Starlette + Jinja2) with plotly's bundled JavaScript for
the charts; the panels (:mod:`shipyard.ui.panels`) are one list that both the pages and
``shipyard grafana export`` draw.
"""

from __future__ import annotations

from shipyard.ui.panels import PANELS, Panel, Target, panel_named, panels_for

__all__ = ["PANELS", "Panel", "Target", "panel_named", "panels_for"]
