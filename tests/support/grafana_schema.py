"""A strict JSON Schema of the parts of Grafana's dashboard model that Shipyard's export uses.

Grafana publishes its dashboard schema in CUE (and as TypeScript types), not as a JSON
Schema, so this one is written from its JSON model for the keys the export writes:
unknown keys are refused, the Prometheus datasource variable is required on every panel
and query, the grid is Grafana's 24 columns, the variables and annotations are the ones
the dashboards rely on. Panels are checked by their ``type``, so an error names the
property at fault.

    assert problems(dashboard) == []
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from shipyard.ui.grafana import ANNOTATION_QUERIES, MODEL_QUERY

__all__ = ["SCHEMA", "problems"]

_TEXT = {"type": "string", "minLength": 1}
_REF = {
    "type": "object",
    "properties": {"type": {"const": "prometheus"}, "uid": {"const": "${datasource}"}},
    "required": ["type", "uid"],
    "additionalProperties": False,
}
_GRID = {
    "type": "object",
    "properties": {
        "x": {"type": "integer", "minimum": 0, "maximum": 23},
        "y": {"type": "integer", "minimum": 0},
        "w": {"type": "integer", "minimum": 1, "maximum": 24},
        "h": {"type": "integer", "minimum": 1},
    },
    "required": ["x", "y", "w", "h"],
    "additionalProperties": False,
}
_TARGET = {
    "type": "object",
    "properties": {
        "refId": {"type": "string", "pattern": "^[A-Z]$"},
        "datasource": _REF,
        "editorMode": {"const": "code"},
        "expr": _TEXT,
        "legendFormat": _TEXT,
        "format": {"enum": ["time_series", "table"]},
        "range": {"type": "boolean"},
        "instant": {"type": "boolean"},
    },
    "required": ["refId", "datasource", "expr", "legendFormat", "format", "range", "instant"],
    "additionalProperties": False,
}
_OVERRIDE = {
    "type": "object",
    "properties": {
        "matcher": {
            "type": "object",
            "properties": {"id": {"const": "byRegexp"}, "options": _TEXT},
            "required": ["id", "options"],
            "additionalProperties": False,
        },
        "properties": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"id": _TEXT, "value": {}},
                "required": ["id", "value"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["matcher", "properties"],
    "additionalProperties": False,
}
_QUERIED = ["timeseries", "heatmap", "stat", "table"]
_COMMON = {"id": {"type": "integer", "minimum": 1}, "title": _TEXT, "gridPos": _GRID}
_ROW = {
    "type": "object",
    "properties": {
        **_COMMON,
        "type": {"const": "row"},
        "collapsed": {"const": False},
        "panels": {"type": "array", "maxItems": 0},
    },
    "required": ["id", "type", "title", "gridPos", "collapsed", "panels"],
    "additionalProperties": False,
}
_TEXT_PANEL = {
    "type": "object",
    "properties": {
        **_COMMON,
        "type": {"const": "text"},
        "description": _TEXT,
        "options": {
            "type": "object",
            "properties": {"mode": {"const": "markdown"}, "content": _TEXT},
            "required": ["mode", "content"],
            "additionalProperties": False,
        },
    },
    "required": ["id", "type", "title", "description", "gridPos", "options"],
    "additionalProperties": False,
}
_QUERY_PANEL = {
    "type": "object",
    "properties": {
        **_COMMON,
        "type": {"enum": _QUERIED},
        "description": _TEXT,
        "datasource": _REF,
        "targets": {"type": "array", "minItems": 1, "items": _TARGET},
        "fieldConfig": {
            "type": "object",
            "properties": {
                "defaults": {
                    "type": "object",
                    "properties": {"unit": _TEXT, "custom": {"type": "object"}},
                    "required": ["unit"],
                },
                "overrides": {"type": "array", "items": _OVERRIDE},
            },
            "required": ["defaults", "overrides"],
            "additionalProperties": False,
        },
        "options": {"type": "object"},
    },
    "required": [
        "id",
        "type",
        "title",
        "description",
        "gridPos",
        "datasource",
        "targets",
        "fieldConfig",
        "options",
    ],
    "additionalProperties": False,
}
_DATASOURCE_VARIABLE = {
    "type": "object",
    "properties": {
        "name": {"const": "datasource"},
        "type": {"const": "datasource"},
        "query": {"const": "prometheus"},
    },
    "required": ["name", "type", "query", "label", "current", "hide", "refresh"],
}
_MODEL_VARIABLE = {
    "type": "object",
    "properties": {
        "name": {"const": "model"},
        "type": {"const": "query"},
        "datasource": _REF,
        "definition": {"const": MODEL_QUERY},
        "query": {
            "type": "object",
            "properties": {"query": {"const": MODEL_QUERY}, "refId": _TEXT},
            "required": ["query", "refId"],
        },
        "includeAll": {"type": "boolean"},
        "multi": {"type": "boolean"},
        "refresh": {"enum": [1, 2]},
    },
    "required": ["name", "type", "datasource", "definition", "query", "includeAll", "multi"],
}
_ANNOTATION = {
    "type": "object",
    "properties": {
        "name": _TEXT,
        "datasource": _REF,
        "enable": {"const": True},
        "hide": {"type": "boolean"},
        "iconColor": _TEXT,
        "expr": _TEXT,
        "step": {"type": "string", "pattern": r"^\d+[smh]$"},
        "titleFormat": _TEXT,
        "textFormat": _TEXT,
        "tagKeys": {"type": "string", "pattern": r"^[a-z_]+(,[a-z_]+)*$"},
        "useValueForTime": {"const": False},
        "filter": {
            "type": "object",
            "properties": {
                "exclude": {"const": False},
                "ids": {"type": "array", "minItems": 1, "items": {"type": "integer"}},
            },
            "required": ["exclude", "ids"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "datasource", "enable", "iconColor", "expr", "titleFormat", "tagKeys"],
    "additionalProperties": False,
}
_BUILTIN = {
    "type": "object",
    "properties": {"builtIn": {"const": 1}, "type": {"const": "dashboard"}},
    "required": ["builtIn", "datasource", "enable", "name", "type"],
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
        "title": _TEXT,
        "description": _TEXT,
        "tags": {"type": "array", "items": _TEXT},
        "editable": {"type": "boolean"},
        "graphTooltip": {"enum": [0, 1, 2]},
        "timezone": {"enum": ["utc", "browser", ""]},
        "schemaVersion": {"type": "integer", "minimum": 36, "maximum": 41},
        "version": {"type": "integer"},
        "refresh": {"type": "string"},
        "time": {
            "type": "object",
            "properties": {
                "from": {"type": "string", "pattern": r"^now-\d+[mhd]$"},
                "to": {"const": "now"},
            },
            "required": ["from", "to"],
            "additionalProperties": False,
        },
        "timepicker": {"type": "object"},
        "fiscalYearStartMonth": {"type": "integer"},
        "liveNow": {"type": "boolean"},
        "weekStart": {"type": "string"},
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"type": {"enum": ["dashboards", "link"]}, "title": _TEXT},
                "required": ["type", "title", "url", "tags"],
            },
        },
        "templating": {
            "type": "object",
            "properties": {
                "list": {
                    "type": "array",
                    "prefixItems": [_DATASOURCE_VARIABLE, _MODEL_VARIABLE],
                    "minItems": 2,
                    "maxItems": 2,
                }
            },
            "required": ["list"],
            "additionalProperties": False,
        },
        "annotations": {
            "type": "object",
            "properties": {
                "list": {
                    "type": "array",
                    "prefixItems": [_BUILTIN],
                    "items": _ANNOTATION,
                    "minItems": 1 + len(ANNOTATION_QUERIES),
                }
            },
            "required": ["list"],
            "additionalProperties": False,
        },
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {  # by type, so an error names the property at fault
                "type": "object",
                "properties": {"type": {"enum": ["row", "text", *_QUERIED]}},
                "required": ["type"],
                "allOf": [
                    {"if": {"properties": {"type": {"const": kind}}}, "then": schema}
                    for kind, schema in (("row", _ROW), ("text", _TEXT_PANEL))
                ]
                + [{"if": {"properties": {"type": {"enum": _QUERIED}}}, "then": _QUERY_PANEL}],
            },
        },
    },
    "required": [
        "uid",
        "title",
        "editable",
        "schemaVersion",
        "time",
        "templating",
        "annotations",
        "panels",
    ],
    "additionalProperties": False,
}
VALIDATOR = Draft202012Validator(SCHEMA)


def problems(dashboard: dict[str, Any]) -> list[str]:
    """What the schema finds wrong with ``dashboard``, one line each (none: valid)."""
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in VALIDATOR.iter_errors(dashboard)
    ]
