"""The HTML report: one self-contained file with the verdict, the criteria and every plot."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from shipyard.evaluation import compare, write_report
from tests.support.synthetic import (
    binary_frame,
    card,
    logistic,
    measured,
    regression_frame,
    ridge,
    tree_regressor,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _images(html: str) -> dict[str, bytes]:
    """Each section's embedded PNG, by section id."""
    found = {}
    for anchor, body in re.findall(r'<section id="([^"]+)">(.*?)</section>', html, flags=re.S):
        image = re.search(r'src="data:image/png;base64,([^"]+)"', body)
        if image:
            found[anchor] = base64.b64decode(image.group(1))
    return found


def _self_contained(html: str) -> None:
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html


def test_classification_report_against_a_champion(tmp_path: Path) -> None:
    frame = binary_frame(rows=1500)
    scorecard = card(
        primary={"metric": "roc_auc", "min": 0.6, "min_margin": 0.0},
        metrics=[{"metric": "recall", "slice": {"column": "region", "value": "west"}, "min": 0.3}],
        calibration={"max_ece": 0.2},
        fairness=[{"metric": "recall", "column": "region", "max_gap": 0.5}],
        latency={"batch_size": 16, "repeats": 10, "max_p99_ms": 1e4},
        max_size_mb=10,
    )
    candidate = measured(logistic(frame), frame, scorecard)
    champion = measured(logistic(frame, ["x1"]), frame, scorecard)
    result = compare(scorecard, candidate, champion)
    assert result.passed
    path = write_report(
        tmp_path / "reports" / "churn-v2.html",
        title="churn/2 <golden>",
        result=result,
        candidate=candidate,
        champion=champion,
    )
    assert path == tmp_path / "reports" / "churn-v2.html"
    html = path.read_text(encoding="utf-8")
    _self_contained(html)
    assert '<header class="pass">' in html and "PASSED" in html
    assert "churn/2 &lt;golden&gt;" in html
    images = _images(html)
    assert set(images) == {"roc", "pr", "calibration", "slices", "latency"}
    assert all(png.startswith(PNG) for png in images.values())
    criteria = html.split('<section id="criteria">')[1].split("</section>")[0]
    assert criteria.count('<tr class="pass">') == len(result.rows)
    assert "recall on region == &#x27;west&#x27;" in criteria
    assert "≥ champion<" in criteria
    assert '<section id="metrics">' in html and "log_loss" in html


def test_failing_report_without_champion_or_probabilities(tmp_path: Path) -> None:
    frame = binary_frame(rows=600)
    scorecard = card(primary={"metric": "accuracy", "min": 0.99})
    candidate = measured(ridge(frame), frame, scorecard)
    result = compare(scorecard, candidate, None)
    html = write_report(
        tmp_path / "r.html", title="strict", result=result, candidate=candidate, champion=None
    ).read_text(encoding="utf-8")
    _self_contained(html)
    assert '<header class="fail">' in html and "FAILED" in html and "1 of 1 criteria fail" in html
    assert '<tr class="fail">' in html
    assert _images(html) == {}
    assert html.count("The model gives no probabilities.") == 3
    assert "no slices or fairness groups" in html and "no latency criterion" in html


def test_regression_report_has_scatter_and_residuals(tmp_path: Path) -> None:
    frame = regression_frame(rows=800)
    scorecard = card(
        primary={"metric": "rmse", "max": 5.0, "min_margin": 0.0},
        metrics=[{"metric": "mae", "slice": {"query": "region == 'north'"}, "max": 5.0}],
    )
    candidate = measured(tree_regressor(frame, depth=6), frame, scorecard, "regression")
    champion = measured(tree_regressor(frame, depth=2), frame, scorecard, "regression")
    result = compare(scorecard, candidate, champion)
    assert result.passed, result.failing
    html = write_report(
        tmp_path / "reg.html", title="price", result=result, candidate=candidate, champion=champion
    ).read_text(encoding="utf-8")
    _self_contained(html)
    images = _images(html)
    assert set(images) == {"predicted-vs-actual", "residuals", "slices"}
    assert 'id="roc"' not in html and 'id="calibration"' not in html
    assert "≤ champion<" in html
