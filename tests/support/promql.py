"""What a PromQL query reads: its series selectors, their matchers, and its grouping labels.

Enough of PromQL for the queries Shipyard ships (dashboards, annotations): selectors
``name{label op "value", ...}`` and bare names, range and offset suffixes, function
calls, aggregations with ``by``/``without`` and vector matching with ``on``/``ignoring``
/``group_left``/``group_right``. promtool checks the syntax; this says what the query
names, so a test can hold it to what ``GET /metrics`` exports.

    query = read_query('sum by (version) (rate(x_total{model=~"$model"}[5m]))')
    query.selectors == [Selector("x_total", {"model"})]; query.grouping == [{"version"}]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Query", "Selector", "legend_labels", "read_query"]

_STRING = r'"(?:[^"\\]|\\.)*"'
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(rf"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*{_STRING}\s*(?:,|$)")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+\d+[smhdwy]")
_WORD = re.compile(r"(?<![0-9.])\b([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
_LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class Selector:
    """One series selector: the metric's name and the labels its matchers name."""

    metric: str
    labels: frozenset[str] = frozenset()


@dataclass
class Query:
    """The selectors of a query and the label lists of its ``by``/``on``/… clauses."""

    selectors: list[Selector] = field(default_factory=list)
    grouping: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    @property
    def metrics(self) -> set[str]:
        """Every metric name the query reads."""
        return {s.metric for s in self.selectors}

    def by(self) -> frozenset[str] | None:
        """The labels an aggregated result keeps (``by`` lists, intersected), or None."""
        lists = [labels for keyword, labels in self.grouping if keyword == "by"]
        return frozenset.intersection(*lists) if lists else None


def read_query(expr: str) -> Query:
    """The selectors and grouping clauses of ``expr`` (an AssertionError if unreadable)."""
    query = Query()
    for keyword, labels in _GROUPING.findall(expr):
        names = frozenset(n.strip() for n in labels.split(",") if n.strip())
        query.grouping.append((keyword, names))
    rest = _GROUPING.sub(" ", expr)

    def selector(match: re.Match[str]) -> str:
        metric, body = match.group(1), match.group(2)
        assert metric, f"a selector without a metric name in {expr!r}"
        matchers = _MATCHER.findall(body)
        leftover = _MATCHER.sub("", body).strip()
        assert not leftover, f"unreadable matchers {body!r} in {expr!r}"
        query.selectors.append(Selector(metric, frozenset(matchers)))
        return " "

    rest = _SELECTOR.sub(selector, rest)
    rest = _OFFSET.sub(" ", _RANGE.sub(" ", rest))
    for word, call in _WORD.findall(rest):
        if not call and word not in _KEYWORDS:
            query.selectors.append(Selector(word))  # a bare metric name
    return query


def legend_labels(template: str) -> set[str]:
    """The labels a Grafana legend or annotation template names (``{{version}}``)."""
    return set(_LEGEND.findall(template))
