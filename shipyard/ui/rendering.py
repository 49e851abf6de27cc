"""Rendering the dashboard's pages: the Jinja2 environment, and JSON safe inside a page.

Every template autoescapes (whatever its file name); the only unescaped output is the
charts' JSON, written by :func:`script_json`, which escapes ``<``, ``>`` and ``&`` so no
value can close its ``<script>`` tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from shipyard.jsonable import to_json
from shipyard.ui import evidence, formatting
from shipyard.ui.auth import DashboardAuth

if TYPE_CHECKING:
    from starlette.requests import Request

    from shipyard.config import Config
    from shipyard.project import Project
    from shipyard.ui.views import Chart

__all__ = ["Dashboard", "chart_data", "dashboard_of", "script_json", "templates"]

TEMPLATES = Path(__file__).parent / "templates"


def script_json(value: Any) -> Markup:
    """``value`` as JSON text safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e`` and ``\\u0026`` (and the two
    line separators JavaScript once refused), so ``</script>`` in any value stays text.
    """
    text = to_json(value)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    # Safe: every character that could end the tag is escaped above.
    return Markup(text)


def chart_data(chart: Chart) -> dict[str, Any]:
    """What ``static/dashboard.js`` needs to draw ``chart`` (the panel without its PromQL)."""
    data = chart.to_dict()
    panel = chart.panel
    data["panel"] = {
        "id": panel.id,
        "title": panel.title,
        "kind": panel.kind,
        "unit": panel.unit,
        "by_arm": panel.by_arm,
    }
    return data


@dataclass
class Dashboard:
    """What every page needs: configuration, the project it reads, auth and templates."""

    config: Config
    project: Project
    auth: DashboardAuth
    templates: jinja2.Environment

    def render(self, name: str, **context: Any) -> str:
        """The HTML of template ``name`` with ``context`` (autoescaped)."""
        context.setdefault("path", "")
        context.setdefault("visitor", None)
        return self.templates.get_template(name).render(**context)


def dashboard_of(request: Request) -> Dashboard:
    """The :class:`Dashboard` of the app serving ``request``."""
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def templates() -> jinja2.Environment:
    """The pages' Jinja2 environment: autoescaping on for every template."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The URL names plotly's version: the file is cached for a year, and an upgrade is a new URL.
    env.globals["plotly_version"] = _version("plotly")
    env.filters["script_json"] = script_json
    env.filters["chart_data"] = chart_data
    env.filters.update(formatting.FILTERS)
    env.filters.update(evidence.FILTERS)
    return env
