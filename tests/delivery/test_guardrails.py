"""Each guardrail breaches on a worse candidate and passes on an equal one.

The prediction and label logs are real Parquet files written by the serving log writer;
the guardrails read them back with DuckDB, as the agent does at every poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.config import DeliverySettings
from shipyard.delivery.guardrails import GUARDRAILS, GuardrailReport, evaluate_guardrails
from shipyard.delivery.rollout import Rollout, Strategy
from shipyard.logs.writer import LabelRecord, PredictionBatch, PredictionLogWriter

SINCE = datetime.now(UTC) - timedelta(minutes=5)


def rollout(strategy: Strategy = "canary", *, started: datetime = SINCE) -> Rollout:
    steps = {"canary": (10.0, 50.0, 100.0), "shadow": (100.0,)}[strategy]
    return Rollout(
        id=7,
        model="churn",
        candidate="2",
        champion="1",
        strategy=strategy,
        steps=steps,
        step_index=0,
        step_seconds=0.0,
        min_requests=0,
        state="running",
        reason="",
        step_started_at=SINCE,
        history=({"at": started.isoformat(), "to": "running", "evidence": {}},),
    )


def log(
    root: Path,
    version: str,
    outputs: Sequence[Any],
    *,
    prefix: str,
    latencies: Sequence[float] | None = None,
    failed: Sequence[bool] | None = None,
    role: str = "live",
    time: datetime | None = None,
) -> None:
    """What a server logs: one single-row request per output (None output: a failure)."""
    latencies = latencies if latencies is not None else [10.0] * len(outputs)
    failed = failed if failed is not None else [False] * len(outputs)
    with PredictionLogWriter(root) as writer:
        for i, (output, latency, fail) in enumerate(zip(outputs, latencies, failed, strict=True)):
            writer.log(
                PredictionBatch(
                    request_id=f"{prefix}{i}",
                    time=time or datetime.now(UTC),
                    model="churn",
                    version=version,
                    role=role,
                    columns=("x",),
                    matrix=np.array([[float(i)]]),
                    labels=None if fail else np.array([output]),
                    probabilities=None,
                    latency_ms=float(latency),
                    status="error" if fail else "ok",
                )
            )


def label(root: Path, prefix: str, labels: Sequence[Any]) -> None:
    """Ground truth for requests ``prefix0``, ``prefix1``, … as POST /v1/feedback stores it."""
    with PredictionLogWriter(root, kind="labels") as writer:
        for i, value in enumerate(labels):
            writer.log(LabelRecord(f"{prefix}{i}", datetime.now(UTC), "churn", value))


def classes(rng: np.random.Generator, n: int, p_one: float) -> list[int]:
    return [int(x) for x in rng.random(n) < p_one]


def evaluate(root: Path, strategy: Strategy = "canary", **settings: Any) -> GuardrailReport:
    return evaluate_guardrails(
        root,
        rollout(strategy),
        since=SINCE,
        settings=DeliverySettings.model_validate(settings),
    )


def verdicts(report: GuardrailReport) -> dict[str, str]:
    return {name: check["verdict"] for name, check in report.checks.items()}


# --- errors and latency -------------------------------------------------------------


def test_errors_breach_when_the_candidate_fails_more(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    log(tmp_path, "1", [0] * 600, prefix="c", failed=list(rng.random(600) < 0.01))
    log(tmp_path, "2", [0] * 300, prefix="k", failed=list(rng.random(300) < 0.15))
    report = evaluate(tmp_path)
    assert report.verdict == "breach" and verdicts(report)["errors"] == "breach"
    errors = report.checks["errors"]
    assert errors["value"] > errors["limit"] > errors["champion"]
    assert errors["limit"] == pytest.approx(errors["champion"] + 0.01)
    assert report.reason.startswith("errors: candidate") and "vs limit" in report.reason


def test_errors_and_latency_pass_for_an_equal_candidate(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    log(tmp_path, "1", [0] * 600, prefix="c", latencies=list(rng.normal(10, 1, 600)))
    log(tmp_path, "2", [0] * 300, prefix="k", latencies=list(rng.normal(10, 1, 300)))
    report = evaluate(tmp_path)
    assert report.verdict == "pass", report.reason
    assert report.requests == 300
    for name in ("errors", "latency", "latency_p99", "prediction_drift"):
        assert report.checks[name]["verdict"] == "ok" and report.checks[name]["samples"] == 300
    assert set(report.checks) == set(GUARDRAILS)
    assert report.checks["disagreement"]["verdict"] == "n/a"  # canary: no pairs


def test_mean_latency_breaches_when_the_candidate_is_slower(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    log(tmp_path, "1", [0] * 400, prefix="c", latencies=list(rng.normal(10, 1, 400)))
    log(tmp_path, "2", [0] * 200, prefix="k", latencies=list(rng.normal(16, 1, 200)))
    report = evaluate(tmp_path)
    latency = report.checks["latency"]
    assert latency["verdict"] == "breach" and latency["unit"] == "ms"
    assert latency["limit"] == pytest.approx(1.25 * latency["champion"])
    assert latency["value"] > latency["limit"]


# --- latency p99 --------------------------------------------------------------------


def tail(rng: np.random.Generator, n: int, share_slow: float) -> list[float]:
    """Latencies around 10 ms with ``share_slow`` of them at 40 ms."""
    fast = rng.normal(10, 1, n)
    return list(np.where(rng.random(n) < share_slow, 40.0, fast))


def test_p99_breaches_on_a_slow_tail_that_the_mean_does_not_show(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    log(tmp_path, "1", [0] * 1500, prefix="c", latencies=tail(rng, 1500, 0.0))
    log(tmp_path, "2", [0] * 600, prefix="k", latencies=tail(rng, 600, 0.05))
    report = evaluate(tmp_path)
    assert verdicts(report)["latency"] == "ok"  # +15 % on the mean: within the 25 %
    p99 = report.checks["latency_p99"]
    assert p99["verdict"] == "breach" and report.verdict == "breach"
    assert p99["limit"] == pytest.approx(1.5 * p99["champion"])
    assert p99["value"] > p99["limit"]
    assert p99["share_above_limit"] > 0.03 and p99["champion_share_above_p99"] <= 0.011
    assert "latency_p99: candidate" in report.reason


def test_p99_passes_a_tail_within_the_margin(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    log(tmp_path, "1", [0] * 1500, prefix="c", latencies=tail(rng, 1500, 0.02))
    log(tmp_path, "2", [0] * 600, prefix="k", latencies=tail(rng, 600, 0.02))
    report = evaluate(tmp_path)
    assert verdicts(report)["latency_p99"] == "ok" and report.verdict == "pass"
    # Equal tails pass even with no margin at all.
    assert verdicts(evaluate(tmp_path, p99_margin=0.0))["latency_p99"] == "ok"


# --- prediction drift ---------------------------------------------------------------


def test_drift_of_predicted_classes_breaches(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    log(tmp_path, "1", classes(rng, 800, 0.3), prefix="c")
    log(tmp_path, "2", classes(rng, 400, 0.9), prefix="k")
    drift = evaluate(tmp_path).checks["prediction_drift"]
    assert drift["verdict"] == "breach" and drift["bins"] == 2
    assert drift["value"] > drift["lower"] > drift["limit"] == 0.2


def test_drift_passes_for_the_same_class_mix(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    log(tmp_path, "1", classes(rng, 800, 0.3), prefix="c")
    log(tmp_path, "2", classes(rng, 400, 0.3), prefix="k")
    drift = evaluate(tmp_path).checks["prediction_drift"]
    assert drift["verdict"] == "ok" and drift["value"] < 0.05 and drift["lower"] == 0.0


def test_drift_of_a_regressor_is_measured_on_the_champion_deciles(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    log(tmp_path, "1", list(rng.normal(100, 10, 1000)), prefix="c")
    log(tmp_path, "2", list(rng.normal(115, 10, 500)), prefix="k")
    log(tmp_path, "3", list(rng.normal(100, 10, 500)), prefix="s")  # another candidate
    shifted = evaluate(tmp_path).checks["prediction_drift"]
    assert shifted["verdict"] == "breach" and shifted["bins"] == 10
    same = evaluate_guardrails(tmp_path, replace(rollout(), candidate="3"), since=SINCE).checks[
        "prediction_drift"
    ]
    assert same["verdict"] == "ok" and same["bins"] == 10
    assert evaluate(tmp_path).checks["quality"]["verdict"] == "n/a"  # regressors: no quality


# --- shadow steps: disagreement and drift on the same requests -----------------------


def shadow_pair(
    root: Path, champion: Sequence[Any], candidate: Sequence[Any], prefix: str = "r"
) -> None:
    """Each request answered live by the champion and in shadow by the candidate."""
    log(root, "1", champion, prefix=prefix)
    log(root, "2", candidate, prefix=prefix, role="shadow")


def test_disagreement_breaches_when_the_shadow_answers_differently(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    live = classes(rng, 500, 0.5)
    flipped = [1 - y if flip else y for y, flip in zip(live, rng.random(500) < 0.4, strict=True)]
    shadow_pair(tmp_path, live, flipped)
    log(tmp_path, "1", classes(rng, 300, 0.5), prefix="unshadowed")  # live only: no pair
    report = evaluate(tmp_path, "shadow")
    disagreement = report.checks["disagreement"]
    assert disagreement["verdict"] == "breach" and disagreement["samples"] == 500
    assert 0.3 < disagreement["value"] < 0.5 and disagreement["limit"] == 0.2
    # The limit comes from the settings: 40 % is fine when 60 % is allowed.
    assert verdicts(evaluate(tmp_path, "shadow", max_disagreement=0.6))["disagreement"] == "ok"


def test_disagreement_passes_when_shadow_and_live_mostly_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    live = classes(rng, 500, 0.5)
    flipped = [1 - y if flip else y for y, flip in zip(live, rng.random(500) < 0.05, strict=True)]
    shadow_pair(tmp_path, live, flipped)
    report = evaluate(tmp_path, "shadow")
    assert verdicts(report)["disagreement"] == "ok" and report.verdict == "pass"
    assert report.checks["prediction_drift"]["samples"] == 500  # the pairs only


def test_a_regressor_disagrees_beyond_the_relative_tolerance(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    live = list(rng.normal(100, 10, 400))
    shadow_pair(tmp_path, live, [v * 1.02 for v in live], prefix="close")
    close = evaluate(tmp_path, "shadow").checks["disagreement"]
    assert close["verdict"] == "ok" and close["value"] == 0.0  # 2 % apart: agree
    shadow_pair(tmp_path, live, [v * 1.5 for v in live], prefix="far")
    far = evaluate(tmp_path, "shadow").checks["disagreement"]
    assert (
        far["verdict"] == "breach" and far["value"] == pytest.approx(0.5) and far["samples"] == 800
    )


def test_drift_in_a_shadow_step_compares_the_same_requests(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    live = classes(rng, 600, 0.3)
    shadow_pair(tmp_path, live, [1] * 600)
    drift = evaluate(tmp_path, "shadow").checks["prediction_drift"]
    assert drift["verdict"] == "breach" and drift["samples"] == 600


# --- labelled quality ---------------------------------------------------------------


def test_quality_breaches_when_the_candidate_is_wrong_more_often(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    truth_c, truth_k = classes(rng, 600, 0.5), classes(rng, 300, 0.5)
    champion = [y if ok else 1 - y for y, ok in zip(truth_c, rng.random(600) < 0.9, strict=True)]
    candidate = [y if ok else 1 - y for y, ok in zip(truth_k, rng.random(300) < 0.6, strict=True)]
    log(tmp_path, "1", champion, prefix="c")
    log(tmp_path, "2", candidate, prefix="k")
    label(tmp_path, "c", truth_c)
    label(tmp_path, "k", [str(y) for y in truth_k])  # "1" names the same class as 1
    report = evaluate(tmp_path)
    quality = report.checks["quality"]
    assert quality["verdict"] == "breach" and report.verdict == "breach"
    assert quality["samples"] == 300 and quality["required"] is True
    assert 0.3 < quality["value"] < 0.5 and quality["champion"] < 0.15
    assert quality["limit"] == pytest.approx(quality["champion"] + 0.03)
    assert verdicts(report)["prediction_drift"] == "ok"  # same class mix: only labels tell


@pytest.mark.parametrize(("rows", "verdict"), [(300, "gathering"), (4000, "ok")])
def test_quality_passes_an_equally_accurate_candidate_once_the_labels_decide(
    tmp_path: Path, rows: int, verdict: str
) -> None:
    """300 labels per side have not shown "not worse by 3 points" yet; 4,000 have."""
    rng = np.random.default_rng(13)
    truth_c, truth_k = classes(rng, rows, 0.5), classes(rng, rows, 0.5)
    champion = [y if ok else 1 - y for y, ok in zip(truth_c, rng.random(rows) < 0.9, strict=True)]
    candidate = [y if ok else 1 - y for y, ok in zip(truth_k, rng.random(rows) < 0.9, strict=True)]
    log(tmp_path, "1", champion, prefix="c")
    log(tmp_path, "2", candidate, prefix="k")
    label(tmp_path, "c", truth_c)
    label(tmp_path, "k", truth_k)
    report = evaluate(tmp_path)
    assert verdicts(report)["quality"] == verdict
    assert report.verdict == ("pass" if verdict == "ok" else "continue")


def test_quality_holds_a_step_only_once_its_labels_arrive(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    truth_c, truth_k = classes(rng, 400, 0.5), classes(rng, 200, 0.5)
    log(tmp_path, "1", truth_c, prefix="c")
    log(tmp_path, "2", truth_k, prefix="k")
    report = evaluate(tmp_path)
    quality = report.checks["quality"]
    assert quality["verdict"] == "gathering" and quality["reason"] == "No labels yet."
    assert quality["required"] is False
    assert report.verdict == "pass"  # labels may take days: the step does not wait
    label(tmp_path, "c", truth_c[:50])  # some labels, fewer than min_samples per side
    label(tmp_path, "k", truth_k[:50])
    waiting = evaluate(tmp_path)
    assert waiting.checks["quality"]["verdict"] == "gathering"
    assert waiting.checks["quality"]["required"] is True
    assert waiting.checks["quality"]["samples"] == 50
    assert waiting.verdict == "continue" and "quality" in waiting.reason
    label(tmp_path, "c", truth_c)
    label(tmp_path, "k", truth_k)
    assert evaluate(tmp_path).verdict == "pass"


def test_quality_counts_labels_since_the_roll_out_began_not_the_step(tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    earlier = SINCE - timedelta(minutes=30)  # an earlier step of the same roll-out
    truth = classes(rng, 300, 0.5)
    log(tmp_path, "1", truth, prefix="c", time=earlier)
    log(tmp_path, "2", [1 - y for y in truth], prefix="k", time=earlier)
    label(tmp_path, "c", truth)
    label(tmp_path, "k", truth)
    log(tmp_path, "1", classes(rng, 300, 0.5), prefix="now-c")
    log(tmp_path, "2", classes(rng, 300, 0.5), prefix="now-k")
    report = evaluate_guardrails(
        tmp_path, rollout(started=earlier - timedelta(minutes=1)), since=SINCE
    )
    assert report.checks["quality"]["verdict"] == "breach"
    assert report.checks["quality"]["samples"] == 300


# --- labels judge drift and disagreement ---------------------------------------------


def retrained_after_a_change(root: Path, rng: np.random.Generator, n: int) -> list[int]:
    """A shadow step after the world changed: the stale champion is right half the time,
    the retrained candidate 95 % of the time, so they disagree on about half the requests."""
    truth = classes(rng, n, 0.5)
    champion = [y if ok else 1 - y for y, ok in zip(truth, rng.random(n) < 0.5, strict=True)]
    candidate = [y if ok else 1 - y for y, ok in zip(truth, rng.random(n) < 0.95, strict=True)]
    shadow_pair(root, champion, candidate)
    return truth


def test_labels_excuse_a_better_candidate_that_disagrees(tmp_path: Path) -> None:
    truth = retrained_after_a_change(tmp_path, np.random.default_rng(30), 400)
    label(tmp_path, "r", truth)
    report = evaluate(tmp_path, "shadow")
    disagreement = report.checks["disagreement"]
    assert disagreement["value"] > 0.4 and disagreement["excused_by"] == "quality"
    assert disagreement["verdict"] == "ok" and "Excused" in disagreement["reason"]
    assert report.checks["quality"]["test"]["verdict"] == "pass"  # shown not worse
    assert report.verdict == "pass"


def test_disagreement_waits_for_labels_once_they_flow(tmp_path: Path) -> None:
    truth = retrained_after_a_change(tmp_path, np.random.default_rng(31), 400)
    label(tmp_path, "r", truth[:40])  # labels are coming, too few yet to judge
    held = evaluate(tmp_path, "shadow")
    assert held.checks["disagreement"]["verdict"] == "gathering"
    assert held.checks["disagreement"]["held_for"] == "quality"
    assert held.verdict == "continue" and "disagreement" in held.reason


def test_labels_for_earlier_requests_already_hold_disagreement(tmp_path: Path) -> None:
    rng = np.random.default_rng(34)
    earlier = classes(rng, 50, 0.5)
    log(tmp_path, "1", earlier, prefix="before", time=SINCE - timedelta(minutes=1))
    retrained_after_a_change(tmp_path, rng, 400)
    label(tmp_path, "before", earlier)  # labels keep coming, so the step's will too
    held = evaluate(tmp_path, "shadow")
    quality = held.checks["quality"]
    assert quality["labelled"] == 0 and quality["arriving"] == 50
    assert "50 arrived for earlier ones" in quality["reason"]
    assert held.checks["disagreement"]["held_for"] == "quality" and held.verdict == "continue"


def test_without_labels_disagreement_acts_alone(tmp_path: Path) -> None:
    retrained_after_a_change(tmp_path, np.random.default_rng(32), 400)
    report = evaluate(tmp_path, "shadow")
    assert report.verdict == "breach" and report.checks["disagreement"]["verdict"] == "breach"
    assert "excused_by" not in report.checks["disagreement"]


def test_labels_do_not_excuse_a_candidate_that_is_worse(tmp_path: Path) -> None:
    rng = np.random.default_rng(33)
    truth = classes(rng, 400, 0.5)
    wrong = [y if ok else 1 - y for y, ok in zip(truth, rng.random(400) < 0.5, strict=True)]
    shadow_pair(tmp_path, truth, wrong)  # the champion is right, the candidate guesses
    label(tmp_path, "r", truth)
    report = evaluate(tmp_path, "shadow")
    assert report.verdict == "breach"
    assert verdicts(report)["disagreement"] == "breach" and verdicts(report)["quality"] == "breach"


# --- a step with all live traffic on the candidate --------------------------------------


def test_at_canary_100_the_champion_side_is_what_it_answered_earlier(tmp_path: Path) -> None:
    """The champion answers nothing at 100 %: compare with its earlier steps' answers."""
    rng = np.random.default_rng(40)
    began = SINCE - timedelta(minutes=10)
    last_step = replace(rollout(started=began), steps=(10.0, 100.0), step_index=1)
    earlier = SINCE - timedelta(minutes=5)  # during the 10 % step
    log(tmp_path, "1", [0] * 400, prefix="c", latencies=list(rng.normal(10, 1, 400)), time=earlier)
    log(tmp_path, "2", [0] * 300, prefix="k", latencies=list(rng.normal(10, 1, 300)))
    report = evaluate_guardrails(tmp_path, last_step, since=SINCE)
    assert report.verdict == "pass", report.reason
    assert report.checks["latency"]["samples"] == 300  # the champion's 400 count
    assert report.champion_since == began
    assert report.evidence()["champion_since"] == began.isoformat()
    # A slow candidate is still caught against that baseline.
    log(tmp_path, "2", [0] * 300, prefix="slow", latencies=list(rng.normal(30, 1, 300)))
    slow = evaluate_guardrails(tmp_path, last_step, since=SINCE)
    assert slow.verdict == "breach" and verdicts(slow)["latency"] == "breach"
    # In a 10 % step the champion answers too: only the step's own rows count.
    assert evaluate_guardrails(tmp_path, rollout(), since=SINCE).champion_since is None


# --- evidence -----------------------------------------------------------------------


def test_too_few_requests_keep_the_step_gathering(tmp_path: Path) -> None:
    log(tmp_path, "1", [0] * 400, prefix="c")
    log(tmp_path, "2", [0] * 60, prefix="k")
    report = evaluate(tmp_path)
    assert report.verdict == "continue" and "60 of 100" in report.reason
    assert verdicts(report)["errors"] == "gathering"
    assert evaluate(tmp_path, min_samples=50).verdict == "pass"


def test_the_evidence_is_json(tmp_path: Path) -> None:
    import json

    rng = np.random.default_rng(16)
    log(tmp_path, "1", [0] * 300, prefix="c", latencies=list(rng.normal(10, 1, 300)))
    log(tmp_path, "2", [0] * 300, prefix="k", latencies=list(rng.normal(30, 1, 300)))
    report = evaluate(tmp_path)
    again = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert again["verdict"] == "breach" and again["checks"]["latency"]["verdict"] == "breach"
    assert {"value", "limit", "verdict", "samples"} <= set(again["checks"]["latency_p99"])


# --- the new tests stay valid under peeking (the mSPRT itself: test_sequential.py) -----


def test_p99_false_alarms_stay_near_alpha_when_peeked_at_every_50_requests() -> None:
    """The docs' claim: the champion's running p99 as the line keeps the test valid."""
    from shipyard.delivery.sequential import SequentialTest

    test = SequentialTest(alpha=0.05, margin=0.0, min_samples=100, kind="proportion")
    rng = np.random.default_rng(20)
    looks = np.arange(100, 3001, 50)
    alarms = 0
    for _ in range(300):
        # On the null boundary: the candidate is the champion slowed by 1 + p99_margin.
        champion, candidate = rng.lognormal(1.0, 1.0, (2, looks[-1]))
        candidate = candidate * 1.5
        lines = np.array([np.quantile(champion[:n], 0.99) for n in looks])
        above_own = np.array([(champion[:n] > q).sum() for n, q in zip(looks, lines, strict=True)])
        above_limit = np.array(
            [(candidate[:n] > 1.5 * q).sum() for n, q in zip(looks, lines, strict=True)]
        )
        verdicts = test.verdicts((looks, above_own), (looks, above_limit))
        alarms += bool((verdicts == "breach").any())
    assert alarms / 300 < 0.08  # 5 % nominal; about 3 % measured


def test_the_drift_bound_holds_alpha_for_a_drift_at_the_limit_when_peeked() -> None:
    """Class shares of 30 % and 52 %: a drift D of 0.2, the limit itself."""
    from shipyard.delivery.guardrails import _distance_lower_bound

    shares = (np.array([0.7, 0.3]), np.array([0.48, 0.52]))
    pooled = (shares[0] + shares[1]) / 2
    assert np.sum((shares[0] - shares[1]) ** 2 / pooled) == pytest.approx(0.2, rel=0.01)
    rng = np.random.default_rng(21)
    alarms = 0
    for _ in range(300):
        a, b = (rng.random(3000) < share[1] for share in shares)
        for n in range(100, 3001, 50):
            counts_a = [int(n - a[:n].sum()), int(a[:n].sum())]
            counts_b = [int(n - b[:n].sum()), int(b[:n].sum())]
            if _distance_lower_bound(counts_a, counts_b, 0.05, 0.2) > 0.2:
                alarms += 1
                break
    assert alarms / 300 <= 0.05
