"""``shipyard grafana export``: the dashboards' structure, and every query against a real /metrics.

- The JSON holds to a strict JSON Schema of the parts of Grafana's dashboard model it
  uses (written here: Grafana publishes its schema in CUE, not as a JSON Schema), with
  unique panel ids, panels that do not overlap on the grid, the Prometheus datasource
  variable on every query, the ``model`` variable and the alert annotations.
- The panels are the web UI's :data:`~shipyard.ui.panels.PANELS`, in order, one for one.
- Every PromQL query (panels, annotations, the ``model`` variable) names only series and
  labels that ``GET /metrics`` of a real ``shipyard serve`` exports, with a challenger
  and a shadow taking traffic and a stored monitor run (so the arm labels and the monitor
  gauges exist); ``promtool check rules`` parses every query.
- deploy/grafana/ holds the export of the default configuration, and docs/grafana.md the
  panel table, both up to date.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from jsonschema import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families

from shipyard.cli import run
from shipyard.config import Config
from shipyard.ui.grafana import (
    DATASOURCE,
    MODEL_QUERY,
    dashboard_file,
    grafana_dashboards,
)
from shipyard.ui.panels import PANELS, panels_for
from tests.support import (
    ServeProcess,
    TrainedExamples,
    call,
    project_of,
    server_environment,
    token_for,
    wait_for,
)
from tests.support.grafana_schema import SCHEMA, problems
from tests.support.promql import legend_labels, read_query

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "deploy" / "grafana"
ALERT_RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DOCS = ROOT / "docs" / "grafana.md"


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    return dict(grafana_dashboards(Config()))


def queried(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if "targets" in p]


# ---------------------------------------------------------------- structure ------------


def test_the_schema_is_itself_valid_and_strict(dashboards: dict[str, dict[str, Any]]) -> None:
    Draft202012Validator.check_schema(SCHEMA)
    broken = json.loads(json.dumps(dashboards["model"]))
    first = queried(broken)[0]
    del first["datasource"]
    first["targets"][0]["datasource"] = {"type": "prometheus", "uid": "prom-1"}
    broken["panels"][0]["gridPos"]["w"] = 25
    broken["stray"] = 1
    found = "\n".join(problems(broken))
    assert "'datasource' is a required property" in found
    assert "'${datasource}' was expected" in found
    assert "25 is greater than the maximum of 24" in found
    assert "'stray' was unexpected" in found


@pytest.mark.parametrize("page", ["fleet", "model"])
def test_each_dashboard_holds_to_the_schema(
    dashboards: dict[str, dict[str, Any]], page: str
) -> None:
    assert problems(dashboards[page]) == []
    assert dashboards[page]["uid"] == f"shipyard-{page}"


@pytest.mark.parametrize("page", ["fleet", "model"])
def test_panel_ids_are_unique_and_panels_do_not_overlap(
    dashboards: dict[str, dict[str, Any]], page: str
) -> None:
    panels = dashboards[page]["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for one, other in combinations(panels, 2):
        a, b = one["gridPos"], other["gridPos"]
        assert a["x"] + a["w"] <= 24 and b["x"] + b["w"] <= 24
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, f"{one['title']} {a} overlaps {other['title']} {b}"
    # Rows come first in their section: every panel below a row until the next one.
    rows = [p for p in panels if p["type"] == "row"]
    assert rows and rows[0]["gridPos"]["y"] == 0
    for row in rows:
        assert row["gridPos"]["w"] == 24 and row["gridPos"]["x"] == 0


def test_the_panels_are_the_web_uis_panels_one_for_one(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for page, dashboard in dashboards.items():
        drawn = [p for p in dashboard["panels"] if p["type"] != "row"]
        mine = [panel for panel in PANELS if panel.page == page]
        assert [(p["title"], p["description"]) for p in drawn] == [
            (panel.title, panel.description) for panel in mine
        ]
        for item, panel in zip(drawn, mine, strict=True):
            if not panel.targets:  # a KPI: a text panel pointing at the web UI
                assert item["type"] == "text"
                assert "http://127.0.0.1:8600/models/${model}" in item["options"]["content"]
                continue
            assert item["type"] == panel.kind
            assert [(t["expr"], t["legendFormat"]) for t in item["targets"]] == [
                (t.expr, t.legend or "__auto") for t in panel.targets
            ]
            refs = [t["refId"] for t in item["targets"]]
            assert len(refs) == len(set(refs))
            assert item["datasource"] == DATASOURCE
            assert all(t["datasource"] == DATASOURCE for t in item["targets"])
            unit = item["fieldConfig"]["defaults"]["unit"]
            assert unit == panel.unit, panel.id  # the default currency is USD
            arms = item["fieldConfig"]["overrides"]
            assert bool(arms) == (panel.by_arm and panel.kind == "timeseries"), panel.id


def test_money_is_in_the_projects_currency() -> None:
    for currency, unit in (("EUR", "currencyEUR"), ("GBP", "currencyGBP"), ("CAD", "suffix: CAD")):
        config = Config.model_validate({"cost": {"currency": currency}})
        units = {
            p["title"]: p["fieldConfig"]["defaults"]["unit"]
            for dashboard in grafana_dashboards(config).values()
            for p in queried(dashboard)
        }
        assert units["Compute cost per 1,000 predictions"] == unit
        assert units["Cost per 1,000 predictions"] == unit
        assert units["Throughput"] == "reqps"  # other units are the panels' own


def test_variables_and_annotations(dashboards: dict[str, dict[str, Any]]) -> None:
    for page, dashboard in dashboards.items():
        datasource, model = dashboard["templating"]["list"]
        assert datasource["query"] == "prometheus"
        assert model["definition"] == "label_values(shipyard_requests_total, model)"
        # The fleet shows every model at once; a model page one model.
        assert model["multi"] is model["includeAll"] is (page == "fleet")
        for panel in queried(dashboard):
            for target in panel["targets"]:
                uses_model = "$model" in target["expr"]
                assert uses_model or "shipyard_degraded" in target["expr"], target["expr"]
        builtin, *queries = dashboard["annotations"]["list"]
        assert builtin["builtIn"] == 1
        exprs = {a["name"]: a["expr"] for a in queries}
        assert exprs["Alerts"].startswith('ALERTS{alertstate="firing", model=~"$model"}')
        assert "shipyard_traffic_weight" in exprs["Traffic changes"]
        assert "role" in next(a for a in queries if a["name"] == "Traffic changes")["tagKeys"]
    # The annotations show on the model page's annotated panels, and only there.
    model = dashboards["model"]
    drawn = [p for p in model["panels"] if p["type"] != "row"]
    pairs = zip(drawn, panels_for("model"), strict=True)
    annotated = {item["id"] for item, panel in pairs if panel.annotated}
    assert annotated
    for query in model["annotations"]["list"][1:]:
        assert set(query["filter"]["ids"]) == annotated


# ---------------------------------------------------------------- the CLI and the example


def test_export_writes_one_file_per_dashboard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dashboards"
    assert run(["grafana", "export", "--out", str(out), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [d["page"] for d in answer["dashboards"]] == ["fleet", "model"]
    for item in answer["dashboards"]:
        written = json.loads(Path(item["path"]).read_text())
        assert written["uid"] == item["uid"] and problems(written) == []
        assert item["panels"] == len([p for p in written["panels"] if p["type"] != "row"])
    assert sorted(p.name for p in out.iterdir()) == ["shipyard-fleet.json", "shipyard-model.json"]
    assert run(["grafana", "export", "--out", str(out)]) == 0  # again: replaced
    printed = capsys.readouterr().out
    assert "shipyard-model.json" in printed and "Import" in printed


def test_export_into_a_file_says_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    assert run(["grafana", "export", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "--out" in err
    assert "Traceback" not in err


def test_the_committed_example_is_up_to_date(dashboards: dict[str, dict[str, Any]]) -> None:
    for page, dashboard in dashboards.items():
        path = EXAMPLES / dashboard_file(page)  # type: ignore[arg-type]
        assert path.exists(), f"{path} is missing: run `shipyard grafana export --out {EXAMPLES}`"
        assert json.loads(path.read_text()) == dashboard, (
            f"{path} is stale: run `shipyard grafana export --out deploy/grafana` outside a "
            "project (the default configuration) and commit it"
        )


def panel_table(dashboards: dict[str, dict[str, Any]]) -> str:
    """The panel table of docs/grafana.md, from the exported dashboards."""
    lines = [
        "| dashboard | row | panel | Grafana panel | unit | shows | series |",
        "|---|---|---|---|---|---|---|",
    ]
    for page, dashboard in dashboards.items():
        row = ""
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                row = panel["title"]
                continue
            exprs = " ".join(t["expr"] for t in panel.get("targets", []))
            names = sorted(set(re.findall(r"\bshipyard_[a-z_]+", exprs)))
            series = ", ".join(f"`{n}`" for n in names) or "the web UI (KPIs from your tables)"
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            shown = f"`{unit}`" if unit else "—"
            lines.append(
                f"| {page} | {row} | {panel['title']} | {panel['type']} | {shown} "
                f"| {panel['description']} | {series} |"
            )
    return "\n".join(lines)


def test_the_docs_panel_table_is_up_to_date(dashboards: dict[str, dict[str, Any]]) -> None:
    table = panel_table(dashboards)
    assert table in DOCS.read_text(), f"docs/grafana.md: replace the panel table with\n{table}"


# ---------------------------------------------------------------- PromQL ---------------

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool is None and not os.environ.get("CI"),
    reason="promtool is not installed (Debian package prometheus); the other checks ran",
)


def every_query(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, str, set[str]]]:
    """(where, PromQL, labels its legend, titles and tags name) of every query."""
    found = []
    for page, dashboard in dashboards.items():
        for panel in queried(dashboard):
            for target in panel["targets"]:
                where = f"{page}: {panel['title']} {target['refId']}"
                found.append((where, target["expr"], legend_labels(target["legendFormat"])))
        for query in dashboard["annotations"]["list"][1:]:
            named = legend_labels(query["titleFormat"] + query["textFormat"])
            named |= set(query["tagKeys"].split(","))
            found.append((f"{page}: annotation {query['name']}", query["expr"], named))
    return found


def as_promql(expr: str) -> str:
    """A Grafana query as Prometheus runs it: the variables replaced by values."""
    for variable, value in (("$__rate_interval", "1m"), ("$__interval", "1m"), ("$model", "churn")):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a variable left in {expr!r}"
    return expr


def check_rules(rules: Path, exprs: list[str]) -> subprocess.CompletedProcess[str]:
    alerts = [{"alert": f"Query{i}", "expr": as_promql(e)} for i, e in enumerate(exprs)]
    rules.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": alerts}]}))
    assert promtool is not None, "promtool is missing in CI: .ci/run installs prometheus"
    return subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )


@needs_promtool
def test_promtool_parses_every_query(dashboards: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    exprs = [expr for _, expr, _ in every_query(dashboards)]
    checked = check_rules(tmp_path / "queries.yaml", exprs)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout
    # The check can fail: a query with a typo is refused.
    broken = check_rules(tmp_path / "broken.yaml", ["sum by (model (shipyard_requests_total)"])
    assert broken.returncode != 0


SENT = 160  # single-row requests; the champion answers about 70 % of them
MIN_ROWS, MIN_LABELLED = 50, 20  # the monitor gauges' evidence floors, lowered for the test


@pytest.fixture(scope="module")
def exported(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, set[str]]]:
    """Each series name a real server's ``/metrics`` exports, with the labels it carries.

    churn/1 the champion, churn/2 a 30 % challenger, churn/3 the shadow; requests sent
    and labelled, and a monitor run of the champion stored, so the monitor gauges exist.
    """
    from shipyard.access import Scope
    from shipyard.logs.reader import query_log
    from shipyard.monitoring.run import run_monitor
    from shipyard.registry.aliases import move_alias
    from shipyard.store.traffic import TrafficSettings, write_traffic

    evidence = {"monitoring": {"min_rows": MIN_ROWS, "min_labelled": MIN_LABELLED}}
    root = tmp_path_factory.mktemp("grafana") / "churn"
    config = trained_examples.copy(root, {}, {}, {}, overrides=evidence)
    config_file = config.root / "shipyard.yaml"
    project = project_of(config)
    try:
        move_alias(project.store, project.client, "churn", "champion", "1", action="promote")
        # As `shipyard traffic set churn --challenger 2=30% --shadow 3` does.
        project.authorize(Scope.MODELS_DEPLOY, "churn")
        settings = TrafficSettings(challengers={"2": 0.3}, shadow="3", shadow_share=1.0)
        write_traffic(project.store, "churn", settings)
        labeller = {"Authorization": f"Bearer {token_for(project, 'labeller')}"}
        environ = server_environment(
            SHIPYARD_MONITORING__MIN_ROWS=str(MIN_ROWS),
            SHIPYARD_MONITORING__MIN_LABELLED=str(MIN_LABELLED),
            SHIPYARD_SERVING__LOG_ROLL_SECONDS="0.2",
        )
        golden = pd.read_csv(config.root / "data" / "golden.csv").head(SENT)
        with ServeProcess(config_file, "churn", environ=environ) as server:
            for i, row in golden.iterrows():
                body = json.dumps({"instances": [row.drop("churned").to_dict()]}).encode()
                status, _, answer = call(
                    f"{server.url}/v1/models/churn:predict", body, {"X-Request-ID": f"g-{i}"}
                )
                assert status == 200, answer
            logs = config.resolve(config.serving.logs)
            live = "SELECT count(*) AS n FROM log WHERE role <> 'shadow'"
            wait_for(
                lambda: query_log(logs, "churn", sql=live)["n"][0].as_py() >= SENT,
                what=f"{SENT} live predictions in the log",
                every=0.1,
            )
            feedback = [
                {"request_id": f"g-{i}", "label": int(r.churned)} for i, r in golden.iterrows()
            ]
            status, _, answer = call(
                f"{server.url}/v1/feedback", json.dumps(feedback).encode(), labeller
            )
            assert status == 200, answer
            result = run_monitor(project, "churn", version="1", window=f"last:{SENT}", alerts=False)
            assert result.rows >= MIN_ROWS, result.rows

            def scraped() -> dict[str, set[str]] | None:
                status, _, text = call(f"{server.url}/metrics")
                assert status == 200
                found: dict[str, set[str]] = {}
                for family in text_string_to_metric_families(text.decode()):
                    for sample in family.samples:
                        found.setdefault(sample.name, set()).update(sample.labels)
                # The monitor gauges are read from the store, at most every 15 s.
                return found if "shipyard_realized_performance" in found else None

            found: dict[str, set[str]] = wait_for(
                scraped, what="the monitor gauges on /metrics", every=0.5
            )
            roles = {
                s.labels["role"]
                for family in text_string_to_metric_families(
                    call(f"{server.url}/metrics")[2].decode()
                )
                for s in family.samples
                if s.name == "shipyard_requests_total"
            }
            assert roles == {"champion", "challenger", "shadow"}, roles
            yield found
    finally:
        project.close()


def alert_labels(exported: dict[str, set[str]]) -> set[str]:
    """The labels Prometheus's ``ALERTS`` series carry for the shipped rules: the rule's
    own labels, ``alertname`` and ``alertstate``, and those of the series the rules read."""
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    labels = {"alertname", "alertstate"} | {k for rule in rules for k in rule["labels"]}
    read = {m for rule in rules for m in read_query(rule["expr"]).metrics}
    for name in read:
        labels |= exported.get(name, set())
    return labels


def unexported(queries: list[tuple[str, str, set[str]]], series: dict[str, set[str]]) -> list[str]:
    """What each query names that ``series`` (name → labels) lacks: a series, a label in a
    matcher, a ``by``/``on`` label missing on one of its series, a label its legend names
    that the result does not keep."""
    wrong: list[str] = []
    for where, expr, named in queries:
        query = read_query(expr)
        assert query.selectors, f"{where}: no series in {expr!r}"
        for selector in query.selectors:
            if selector.metric not in series:
                wrong.append(f"{where}: /metrics exports no {selector.metric}")
                continue
            missing = selector.labels - series[selector.metric]
            if missing:
                wrong.append(f"{where}: {selector.metric} has no label {sorted(missing)}")
        known = [series[m] for m in query.metrics if m in series]
        common = set.intersection(*known) if known else set()
        for keyword, labels in query.grouping:
            if labels - common:
                wrong.append(f"{where}: {keyword} {sorted(labels - common)} not on every series")
        kept = query.by()
        result = set(kept) if kept is not None else common
        if named - result:
            wrong.append(f"{where}: the legend names {sorted(named - result)}, not kept")
    return wrong


def test_the_check_finds_what_metrics_lacks() -> None:
    series = {"shipyard_requests_total": {"model", "version", "role", "status"}}
    queries = [
        ("fine", 'sum by (version) (rate(shipyard_requests_total{model=~"$model"}[1m]))', set()),
        ("series", "rate(shipyard_request_total[1m])", set()),
        ("matcher", 'shipyard_requests_total{arm="shadow"}', set()),
        ("by", "sum by (arm) (shipyard_requests_total)", set()),
        ("legend", "sum by (version) (shipyard_requests_total)", {"role"}),
    ]
    assert unexported(queries, series) == [
        "series: /metrics exports no shipyard_request_total",
        "matcher: shipyard_requests_total has no label ['arm']",
        "by: by ['arm'] not on every series",
        "legend: the legend names ['role'], not kept",
    ]


def test_every_query_names_series_and_labels_that_metrics_exports(
    dashboards: dict[str, dict[str, Any]], exported: dict[str, set[str]]
) -> None:
    series = {**exported, "ALERTS": alert_labels(exported)}
    wrong = unexported(every_query(dashboards), series)
    metric, label = MODEL_QUERY.removeprefix("label_values(").removesuffix(")").split(", ")
    if label not in exported.get(metric, set()):
        wrong.append(f"the model variable: {metric} has no label {label}")
    assert not wrong, "\n".join(wrong)


def test_the_cost_series_is_exported(exported: dict[str, set[str]]) -> None:
    """The cost panels read ``shipyard_compute_cost_total`` by model, version and arm."""
    assert {"model", "version", "role"} <= exported.get("shipyard_compute_cost_total", set())
