"""End to end: serve the churn model, send shifted traffic and labels, run the monitor."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.cli import run
from shipyard.config import Config
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.models.served import load_served_model
from shipyard.monitoring.log_window import WindowSpec
from shipyard.monitoring.run import run_monitor
from shipyard.registry.aliases import move_alias
from shipyard.serving.app import create_app
from shipyard.store import Store
from shipyard.store.monitor_runs import latest_run, monitor_history
from tests.support import (
    PD_KEY,
    AlertReceiver,
    AppClient,
    TrainedExamples,
    copy_workspace,
    in_process,
    project_of,
    wait_for,
)

SHIFTED = "monthly_charges"


@dataclass
class Served:
    config: Config
    store: Store
    client: AppClient
    golden: pd.DataFrame

    def send(self, rows: pd.DataFrame, prefix: str) -> None:
        for i, row in rows.iterrows():
            body = json.dumps({"instances": [row.drop("churned").to_dict()]}).encode()
            status, _, payload = self.client.call(
                "/v1/models/churn:predict", body, {"X-Request-ID": f"{prefix}{i}"}
            )
            assert status == 200, payload

    def label(self, rows: pd.DataFrame, prefix: str) -> None:
        feedback = [
            {"request_id": f"{prefix}{i}", "label": int(r.churned)} for i, r in rows.iterrows()
        ]
        status, _, payload = self.client.call("/v1/feedback", json.dumps(feedback).encode())
        assert status == 200, payload


@pytest.fixture(scope="module")
def served(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    config = trained_examples.copy(tmp_path_factory.mktemp("monitor") / "churn", {})
    project = project_of(config)
    store, client = project.store, project.client
    move_alias(store, client, "churn", "champion", "1", action="promote")
    model = load_served_model(client, "churn", "1")
    root = config.resolve(config.serving.logs)
    log = PredictionLogWriter(root, roll_seconds=0.1)
    labels = PredictionLogWriter(root, kind="labels", roll_seconds=0.1)
    log.start()
    labels.start()
    golden = pd.read_csv(config.root / "data" / "golden.csv")
    with in_process(create_app(model, log=log, labels=labels)) as app:
        yield Served(config, store, app, golden)
        # The writers are flushed by each test that reads the log.
        served_log = (log, labels)
    for writer in served_log:
        writer.close()


def wait_logged(config: Config, prefix: str, count: int, kind: str = "predictions") -> None:
    """Wait until ``count`` rows whose request id starts with ``prefix`` are on disk."""
    from shipyard.logs.reader import query_log

    sql = f"SELECT count(*) AS n FROM log WHERE starts_with(request_id, '{prefix}')"
    root = config.resolve(config.serving.logs)
    wait_for(
        lambda: query_log(root, "churn", kind=kind, sql=sql)["n"][0].as_py() >= count,
        what=f"{count} {kind} rows {prefix}* on disk",
        every=0.1,
    )


def about(receiver: AlertReceiver, signal: str) -> list[dict[str, object]]:
    """The events the receiver got about ``signal``."""
    return [e for e in receiver.received if str(e["dedup_key"]).count(f"/{signal}/")]


def with_pagerduty(config: Config, url: str) -> Config:
    from shipyard.config import AlertRoute

    route = AlertRoute(kind="pagerduty", url=url, routing_key=PD_KEY, min_level="retrain")
    monitoring = config.monitoring.model_copy(update={"routes": [route]})
    return config.model_copy(update={"monitoring": monitoring})


def test_shifted_traffic_drifts_pages_once_and_resolves(
    served: Served, alert_receiver: Callable[..., AlertReceiver]
) -> None:
    receiver = alert_receiver("pagerduty")
    config = with_pagerduty(served.config, receiver.url)
    shifted = served.golden.head(500).copy()
    shifted[SHIFTED] = shifted[SHIFTED] * 1.6 + 20
    served.send(shifted, "shift-")
    served.label(shifted.head(250), "shift-")
    wait_logged(config, "shift-", 500)
    wait_logged(config, "shift-", 250, kind="labels")

    result = run_monitor(project_of(config), "churn", window="last:500")
    levels = {f["feature"]: f["level"] for f in result.features}
    assert levels[SHIFTED] in ("retrain", "pause")
    assert {name for name, level in levels.items() if level != "ok"} == {SHIFTED}
    assert result.level in ("retrain", "pause") and result.rows == 500
    # One feature of several: Evidently's share rule calls the dataset not drifted.
    dataset = result.dataset or {}
    assert dataset["rule"] == "share" and not dataset["drifted"]
    assert dataset["acting_features"] == [SHIFTED]
    report = Path(result.report_path or "").read_text()
    assert report.count("data:image/png") >= 5  # one distribution per feature at least
    assert f"feature:{SHIFTED}" in report and "Feature drift over time" in report
    # Half the window is labelled: realised metrics, coverage and lag, and CBPE beside them.
    performance = result.performance or {}
    assert performance["labelled"] == 250 and performance["coverage"] == 0.5
    assert 0.0 <= performance["metrics"]["roc_auc"] <= 1.0
    assert performance["lag_seconds"]["n"] == 250 and performance["lag_seconds"]["p50"] >= 0
    estimated = result.estimated or {}
    assert set(estimated) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    auc = estimated["roc_auc"]
    assert auc["low"] <= auc["value"] <= auc["high"] and auc["realised"] is not None
    prediction = result.prediction or {}
    assert prediction["method"] == "wasserstein" and prediction["score"] > 0
    stored = latest_run(served.store, "churn")
    assert stored is not None and stored["level"] == result.level
    assert monitor_history(served.store, "churn")[-1][1][SHIFTED] >= 1.0  # ≥ retrain level
    triggers = about(receiver, f"feature:{SHIFTED}")
    assert [e["event_action"] for e in triggers] == ["trigger"]
    details = triggers[0]["payload"]["custom_details"]  # type: ignore[index]
    assert details["owner"] == "growth-analytics"
    assert served.store.events(kind="retrain_requested")[0].subject == "model:churn"

    # The same breach again: the alert is open, so nobody is paged twice.
    run_monitor(project_of(config), "churn", window="last:500")
    assert len(about(receiver, f"feature:{SHIFTED}")) == 1

    # Traffic back to normal: the alert resolves, once, with the same dedup key.
    normal = served.golden.iloc[500:1100]
    served.send(normal, "normal-")
    wait_logged(config, "normal-", len(normal))
    result = run_monitor(project_of(config), "churn", window="last:600")
    assert {f["feature"]: f["level"] for f in result.features}[SHIFTED] == "ok"
    events = about(receiver, f"feature:{SHIFTED}")
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"]
    assert set(receiver.statuses) == {202}  # PagerDuty accepted every event


def test_window_specs() -> None:
    assert WindowSpec.parse("last:10").count == 10
    since = WindowSpec.parse("since:2h")
    assert since.kind == "since" and since.start is not None
    spanned = WindowSpec.parse("range:2026-11-01/2026-11-02")
    assert spanned.start is not None and spanned.end is not None
    for bad in ("last:0", "yesterday", "range:2026-11-02/2026-11-01", "since:soon"):
        with pytest.raises(Exception, match="Write last"):
            WindowSpec.parse(bad)


def test_cli_run_and_labels_ingest(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(served.config.root)
    normal = served.golden.iloc[1000:1600]
    served.send(normal, "cli-")
    wait_logged(served.config, "cli-", len(normal))
    labels = served.config.root / "labels.csv"
    pd.DataFrame(
        {"request_id": [f"cli-{i}" for i in normal.index], "label": normal["churned"].to_list()}
    ).to_csv(labels, index=False)
    assert run(["labels", "ingest", str(labels)]) == 0
    assert "600 labels of churn ingested" in capsys.readouterr().out
    assert run(["monitor", "run", "churn", "--window", "last:600", "--json", "--no-alerts"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 600 and result["level"] == "ok", result["signals"]
    assert run(["monitor", "run", "churn", "--window", "last:600"]) == 0
    out = capsys.readouterr().out
    assert "feature:monthly_charges" in out and "OK" in out
    watch = ["monitor", "watch", "churn", "--window", "last:600", "--every", "1s", "--runs", "2"]
    assert run(watch) == 0
    assert capsys.readouterr().out.count("(600 predictions): OK") == 2
    assert run(["monitor", "watch", "churn", "--every", "soon"]) == 2
    bad = served.config.root / "bad.csv"
    pd.DataFrame({"label": [1]}).to_csv(bad, index=False)
    assert run(["labels", "ingest", str(bad)]) == 4
    assert "request_id" in capsys.readouterr().err


def test_calibrate_writes_bands_the_monitor_then_uses(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    project = copy_workspace(served.config.root, served.config.root.parent / "calibrated")
    monkeypatch.chdir(project)
    # Small windows are noisy: calibrated levels for 100 rows sit above the defaults.
    assert run(["monitor", "calibrate", "churn", "--window-size", "100", "--json"]) == 0
    levels = json.loads(capsys.readouterr().out)
    assert set(levels) == {
        "tenure_months",
        "monthly_charges",
        "contract",
        "support_calls",
        "region",
    }
    assert levels["tenure_months"]["inspect"] > 0.05 and levels["tenure_months"]["method"] == "kl"
    assert run(["monitor", "calibrate", "churn", "--window-size", "100", "--write"]) == 0
    assert "Set monitoring.bands: bands.yaml" in capsys.readouterr().out
    written = yaml.safe_load((project / "bands.yaml").read_text())
    assert written["tenure_months"]["inspect"] == levels["tenure_months"]["inspect"]
    assert yaml.safe_load((project / "shipyard.yaml").read_text())["monitoring"] == {
        "bands": "bands.yaml"
    }
    assert run(["monitor", "run", "churn", "--window", "last:100", "--json", "--no-alerts"]) == 0
    used = {f["feature"]: f["bands"] for f in json.loads(capsys.readouterr().out)["features"]}
    assert used["tenure_months"]["inspect"] == levels["tenure_months"]["inspect"]


def test_a_window_with_lost_rows_says_so_and_refuses_to_act(
    served: Served, alert_receiver: Callable[..., AlertReceiver], tmp_path: Path
) -> None:
    receiver = alert_receiver("pagerduty")
    config = with_pagerduty(served.config, receiver.url)
    root = config.resolve(config.serving.logs)
    shifted = served.golden.iloc[1600:1900].copy()
    shifted[SHIFTED] = shifted[SHIFTED] * 1.6 + 20  # would page and request a retrain
    served.send(shifted, "lossy-")
    wait_logged(config, "lossy-", len(shifted))
    # A second worker whose journal folder is unwritable: its 30 answers are lost, and
    # recorded beside the log with their time, model and version.
    blocker = tmp_path / "journal"
    blocker.write_text("a file where the journal folder should be")
    worker = PredictionLogWriter(root, journal=blocker, retry_seconds=0.05)
    worker.start()
    rows = shifted.drop(columns=["churned"]).head(30)
    for i in range(len(rows)):
        worker.log(
            PredictionBatch(
                request_id=f"lost-{i}",
                time=datetime.now(UTC),
                model="churn",
                version="1",
                role="live",
                columns=tuple(rows.columns),
                matrix=rows.iloc[[i]].to_numpy(dtype=object),
                labels=np.array([0]),
                probabilities=None,
                latency_ms=1.0,
                status="ok",
            )
        )
    wait_for(lambda: worker.dropped == 30, what="30 rows lost after their retries")
    worker.close()
    losses = root / "predictions" / "model=churn" / "losses.ndjson"
    retrains = len(served.store.events(kind="retrain_requested"))
    try:
        result = run_monitor(project_of(config), "churn", window="last:300")
    finally:
        losses.unlink()  # the other tests' windows are whole
    coverage = result.log_coverage or {}
    assert (coverage["logged"], coverage["lost"], coverage["enough"]) == (300, 30, False)
    assert coverage["ratio"] == pytest.approx(300 / 330) and coverage["minimum"] == 0.99
    assert result.level == "unknown"
    assert {s["level"] for s in result.signals} == {"unknown"}
    assert "below monitoring.min_log_coverage" in (result.alerts or {})["held"]
    assert receiver.received == []  # nobody paged on an incomplete window
    assert len(served.store.events(kind="retrain_requested")) == retrains
    stored = latest_run(served.store, "churn")
    assert stored is not None and stored["level"] == "unknown"


def test_the_alerter_holds_a_signal_from_an_incomplete_window(
    served: Served, alert_receiver: Callable[..., AlertReceiver]
) -> None:
    from shipyard.monitoring.alerting import Alerter, Signal

    receiver = alert_receiver("pagerduty")
    config = with_pagerduty(served.config, receiver.url)
    incomplete = {"logged": 90, "lost": 10, "ratio": 0.9, "minimum": 0.99, "enough": False}
    signal = Signal(
        model="churn",
        version="1",
        name="feature:held_by_coverage",
        level="pause",
        score=9.0,
        evidence={"window": "last:100", "log_coverage": incomplete},
    )
    retrains = len(served.store.events(kind="retrain_requested"))
    outcome = Alerter(config, served.store).process([signal])
    assert outcome.held == (signal,)
    assert (outcome.opened, outcome.retrain_requested, outcome.paused) == ((), (), ())
    assert receiver.received == []
    assert len(served.store.events(kind="retrain_requested")) == retrains
    # The same signal on a complete window acts: the hold is the coverage, nothing else.
    complete = {**incomplete, "lost": 0, "ratio": 1.0, "enough": True}
    evidence = {"window": "last:100", "log_coverage": complete}
    acted = Alerter(config, served.store).process(
        [Signal("churn", "1", "feature:held_by_coverage", "inspect", 9.0, evidence=evidence)]
    )
    assert acted.held == () and len(acted.opened) == 1
