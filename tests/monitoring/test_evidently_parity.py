"""``method="auto"`` gives Evidently 0.7's verdicts, scores and dataset drift on the same data.

Evidently 0.7.23 does not import under pandas 3 (it imports
``pandas.core.dtypes.common.infer_dtype_from_object``), so its results on these
datasets are recorded below. To record them again, in an environment with
``evidently==0.7.23`` and ``pandas<3`` (same NumPy and SciPy as here)::

    PYTHONPATH=. python tests/monitoring/test_evidently_parity.py > /tmp/recorded.py
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.monitoring import AutoDriftDetector, Bands, DatasetDrift, detector

Verdicts = dict[str, Any]


def _frame(rng: np.random.Generator, rows: int, shift: float, nan_rows: int = 0) -> pd.DataFrame:
    """One synthetic window: every column type Evidently's auto mode distinguishes."""
    p = 0.5 + shift / 2
    cat_probs = np.array([0.4, 0.3, 0.2, 0.1]) + np.array([-shift, 0, 0, shift]) / 2
    columns: dict[str, np.ndarray] = {
        "num_same": rng.normal(0.0, 1.0, rows),
        "num_shift": rng.normal(shift, 1.0 + shift, rows),
        "num_dirty": rng.lognormal(shift / 4, 1.0, rows),
        "num_flat": rng.normal(5.0, 1e-4, rows),
        "int_many": rng.integers(0, 50 + int(40 * shift), rows),
        "int_few": rng.choice(4, rows, p=cat_probs),
        "float_few": rng.choice([0.5, 1.5, 2.5, 3.5], rows, p=cat_probs),
        "float_binary": (rng.random(rows) < p).astype(np.float64),
        "cat": rng.choice(np.array(["a", "b", "c", "d"]), rows, p=cat_probs),
        "cat_same": rng.choice(np.array(["u", "v", "w"]), rows),
        "bool": rng.random(rows) < p,
        "yes_no": np.where(rng.random(rows) < 0.3, "yes", "no"),
    }
    dirty = columns["num_dirty"]
    dirty[rng.choice(rows, rows // 20, replace=False)] = np.nan
    dirty[rng.choice(rows, 3, replace=False)] = np.inf
    dirty[rng.choice(rows, 2, replace=False)] = -np.inf
    if nan_rows:  # make the reference size after cleaning differ from the row count
        columns["num_same"][:nan_rows] = np.nan
    if shift:  # a category the reference never saw
        cat = columns["cat"]
        cat[rng.choice(rows, rows // 25, replace=False)] = "new"
    return pd.DataFrame(columns)


def parity_datasets() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """(reference, current) pairs: small and large references, with and without drift."""
    rng = np.random.default_rng(20240607)
    return {
        "small_drift": (_frame(rng, 600, 0.0), _frame(rng, 500, 0.3)),
        "small_stable": (_frame(rng, 800, 0.0), _frame(rng, 700, 0.0)),
        "exactly_1000": (_frame(rng, 1000, 0.0), _frame(rng, 900, 0.2)),
        "1003_rows_3_nan": (_frame(rng, 1003, 0.0, nan_rows=3), _frame(rng, 1000, 0.05)),
        "large_drift": (_frame(rng, 5000, 0.0), _frame(rng, 3000, 0.3)),
        "large_stable": (_frame(rng, 4000, 0.0), _frame(rng, 4000, 0.0)),
        "large_slight": (_frame(rng, 3000, 0.0), _frame(rng, 6000, 0.08)),
    }


# Evidently's display name of an auto-chosen test -> Shipyard's method name.
_AUTO_METHODS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}
# Evidently's name of a method given explicitly -> Shipyard's method name.
HISTOGRAM_METHODS = {"psi": "psi", "kl_div": "kl", "jensenshannon": "jensenshannon"}
_EVIDENTLY_METHODS = {**_AUTO_METHODS, **HISTOGRAM_METHODS}
HISTOGRAM_DATASETS = ["small_drift", "large_drift"]


def evidently_verdicts(
    reference: pd.DataFrame, current: pd.DataFrame, method: str | None = None
) -> Verdicts:
    """Run Evidently's ``Report([DataDriftPreset(method)])``; keep its per-column verdicts."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    report = Report([DataDriftPreset(method=method)], include_tests=True)
    snapshot = report.run(current, reference)
    data = snapshot.dict()
    status = {test["name"]: test["status"] for test in data["tests"]}
    columns: dict[str, tuple[str, float, bool]] = {}
    share = math.nan
    for metric in data["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith("ValueDrift"):
            name = config["column"]
            drifted = status[f"Value Drift for column {name}"] == "FAIL"
            method = _EVIDENTLY_METHODS[config["method"]]
            columns[name] = (method, float(metric["value"]), drifted)
    dataset = next(value for key, value in status.items() if key.startswith("Share of Drifted"))
    return {"columns": columns, "share": share, "drifted": dataset == "FAIL"}


def shipyard_verdicts(drift: DatasetDrift) -> Verdicts:
    """The same shape from a Shipyard result."""
    columns = {
        result.feature: (result.method, _number(result.drift_score), result.drifted)
        for result in drift.columns
    }
    return {"columns": columns, "share": drift.share, "drifted": drift.drifted}


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def assert_same(ours: Verdicts, theirs: Verdicts) -> None:
    assert set(ours["columns"]) == set(theirs["columns"])
    for name, (method, score, drifted) in theirs["columns"].items():
        our_method, our_score, our_drifted = ours["columns"][name]
        assert (name, our_method, our_drifted) == (name, method, drifted)
        assert our_score == pytest.approx(score, rel=1e-9, abs=1e-12), name
    assert ours["share"] == pytest.approx(theirs["share"], abs=1e-12)
    assert ours["drifted"] == theirs["drifted"]


# Recorded with evidently 0.7.23, pandas 2.3.3, numpy 2.4.6, scipy 1.17.1.
EVIDENTLY_0_7_23: dict[str, Verdicts] = {
    "small_drift": {
        "columns": {
            "num_same": ("ks", 0.5303789066725965, False),
            "num_shift": ("ks", 0.0028208592916446618, True),
            "num_dirty": ("ks", 0.004145900458392635, True),
            "num_flat": ("ks", 0.3321992101355704, False),
            "int_many": ("ks", 5.114320337570603e-10, True),
            "float_few": ("chisquare", 2.7529845355440056e-21, True),
            "float_binary": ("z", 1.1989174097948307e-09, True),
            "int_few": ("chisquare", 1.3176031220531728e-32, True),
            "cat": ("chisquare", 0.0, True),
            "cat_same": ("chisquare", 0.2812974584402239, False),
            "bool": ("z", 2.961985012817081e-08, True),
            "yes_no": ("z", 0.006292638237053172, True),
        },
        "share": 0.75,
        "drifted": True,
    },
    "small_stable": {
        "columns": {
            "num_same": ("ks", 0.08407261957537218, False),
            "num_shift": ("ks", 0.7460133829268868, False),
            "num_dirty": ("ks", 0.8059286198675747, False),
            "num_flat": ("ks", 0.33840302265440897, False),
            "int_many": ("ks", 0.1804382990797651, False),
            "float_few": ("chisquare", 0.0632622597876934, False),
            "float_binary": ("z", 0.184970649585269, False),
            "int_few": ("chisquare", 0.9011813344784393, False),
            "cat": ("chisquare", 0.7210196149306435, False),
            "cat_same": ("chisquare", 0.5184624462524738, False),
            "bool": ("z", 0.599711322686191, False),
            "yes_no": ("z", 0.4895579316617398, False),
        },
        "share": 0.0,
        "drifted": False,
    },
    "exactly_1000": {
        "columns": {
            "num_same": ("ks", 0.1547321754301404, False),
            "num_shift": ("ks", 2.444129138384414e-05, True),
            "num_dirty": ("ks", 0.8537057573089036, False),
            "num_flat": ("ks", 0.9953124329820883, False),
            "int_many": ("ks", 6.297883860504827e-08, True),
            "float_few": ("chisquare", 1.4559268971284377e-22, True),
            "float_binary": ("z", 2.3243984180743027e-05, True),
            "int_few": ("chisquare", 1.1495423213115495e-49, True),
            "cat": ("chisquare", 0.0, True),
            "cat_same": ("chisquare", 0.005056744406458744, True),
            "bool": ("z", 3.296297141774929e-05, True),
            "yes_no": ("z", 0.8553534056510201, False),
        },
        "share": 0.6666666666666666,
        "drifted": True,
    },
    "1003_rows_3_nan": {
        "columns": {
            "num_same": ("ks", 0.21939649929677082, False),
            "num_shift": ("wasserstein", 0.054425302702518684, False),
            "num_dirty": ("ks", 0.16357821856488775, False),
            "num_flat": ("wasserstein", 0.005486450882020179, False),
            "int_many": ("wasserstein", 0.09746399014081648, False),
            "float_few": ("jensenshannon", 0.04136409150362497, False),
            "float_binary": ("jensenshannon", 0.00034615827268141716, False),
            "int_few": ("jensenshannon", 0.050088973606308776, False),
            "cat": ("jensenshannon", 0.12125627898036258, True),
            "cat_same": ("jensenshannon", 0.020185173897963343, False),
            "bool": ("jensenshannon", 0.0038238220988092452, False),
            "yes_no": ("jensenshannon", 0.02199150890088493, False),
        },
        "share": 0.08333333333333333,
        "drifted": False,
    },
    "large_drift": {
        "columns": {
            "num_same": ("wasserstein", 0.03405979427099041, False),
            "num_shift": ("wasserstein", 0.37885282790309366, True),
            "num_dirty": ("wasserstein", 0.05275433271647131, False),
            "num_flat": ("wasserstein", 0.0027153298414050423, False),
            "int_many": ("wasserstein", 0.39151168853962093, True),
            "float_few": ("jensenshannon", 0.16221580953575018, True),
            "float_binary": ("jensenshannon", 0.11327269169084597, True),
            "int_few": ("jensenshannon", 0.16921658494479894, True),
            "cat": ("jensenshannon", 0.20436891010230104, True),
            "cat_same": ("jensenshannon", 0.013956494073889983, False),
            "bool": ("jensenshannon", 0.09960666637553896, False),
            "yes_no": ("jensenshannon", 0.013544473192728848, False),
        },
        "share": 0.5,
        "drifted": True,
    },
    "large_stable": {
        "columns": {
            "num_same": ("wasserstein", 0.02747976678283481, False),
            "num_shift": ("wasserstein", 0.013088236584733851, False),
            "num_dirty": ("wasserstein", 0.029691976921546844, False),
            "num_flat": ("wasserstein", 0.0020262895947593673, False),
            "int_many": ("wasserstein", 0.031066298109148925, False),
            "float_few": ("jensenshannon", 0.029218351964900236, False),
            "float_binary": ("jensenshannon", 0.004419448480356704, False),
            "int_few": ("jensenshannon", 0.025705868948721608, False),
            "cat": ("jensenshannon", 0.010233183085625548, False),
            "cat_same": ("jensenshannon", 0.011460189031744634, False),
            "bool": ("jensenshannon", 0.011314040412242723, False),
            "yes_no": ("jensenshannon", 0.0068505030003088285, False),
        },
        "share": 0.0,
        "drifted": False,
    },
    "large_slight": {
        "columns": {
            "num_same": ("wasserstein", 0.019716401189810884, False),
            "num_shift": ("wasserstein", 0.11112956268108014, True),
            "num_dirty": ("wasserstein", 0.019962725733840656, False),
            "num_flat": ("wasserstein", 0.0018424355089126851, False),
            "int_many": ("wasserstein", 0.09112370922802816, False),
            "float_few": ("jensenshannon", 0.04220171603375997, False),
            "float_binary": ("jensenshannon", 0.037493210589909926, False),
            "int_few": ("jensenshannon", 0.056707894238489355, False),
            "cat": ("jensenshannon", 0.12545056152920026, True),
            "cat_same": ("jensenshannon", 0.014997196253655037, False),
            "bool": ("jensenshannon", 0.0300116886544017, False),
            "yes_no": ("jensenshannon", 0.0037051046594167364, False),
        },
        "share": 0.16666666666666666,
        "drifted": False,
    },
}
EVIDENTLY_0_7_23_HISTOGRAMS: dict[str, Verdicts] = {
    "small_drift/psi": {
        "columns": {
            "num_same": ("psi", 0.035176158773245585, False),
            "num_shift": ("psi", 0.17507786969288175, True),
            "num_dirty": ("psi", 0.0669287286442699, False),
            "num_flat": ("psi", 0.052331886593042734, False),
            "int_many": ("psi", 1.3472751035128674, True),
            "float_few": ("psi", 0.15446903970685935, True),
            "float_binary": ("psi", 0.13814632636178018, True),
            "int_few": ("psi", 0.22125510570585727, True),
            "cat": ("psi", 0.4052877955590338, True),
            "cat_same": ("psi", 0.0049239521240721975, False),
            "bool": ("psi", 0.11428843048414934, True),
            "yes_no": ("psi", 0.027295171147248568, False),
        },
        "share": 0.5833333333333334,
        "drifted": True,
    },
    "small_drift/kl_div": {
        "columns": {
            "num_same": ("kl", 0.018177155146788047, False),
            "num_shift": ("kl", 0.06502004686464936, False),
            "num_dirty": ("kl", 0.024560536095191442, False),
            "num_flat": ("kl", 0.02936466005928656, False),
            "int_many": ("kl", 0.21850038794382218, True),
            "float_few": ("kl", 0.07231240517937337, False),
            "float_binary": ("kl", 0.07066304334336707, False),
            "int_few": ("kl", 0.1020323536729246, True),
            "cat": ("kl", 0.11490035840702544, True),
            "cat_same": ("kl", 0.002438245454237334, False),
            "bool": ("kl", 0.058028318357690456, False),
            "yes_no": ("kl", 0.013302924093902588, False),
        },
        "share": 0.25,
        "drifted": False,
    },
    "small_drift/jensenshannon": {
        "columns": {
            "num_same": ("jensenshannon", 0.06585485364399522, False),
            "num_shift": ("jensenshannon", 0.1370679017994013, True),
            "num_dirty": ("jensenshannon", 0.0869887993378168, False),
            "num_flat": ("jensenshannon", 0.07913600774185739, False),
            "int_many": ("jensenshannon", 0.2697777312446353, True),
            "float_few": ("jensenshannon", 0.13773514417544255, True),
            "float_binary": ("jensenshannon", 0.13097661941312924, True),
            "int_few": ("jensenshannon", 0.16418413693949224, True),
            "cat": ("jensenshannon", 0.184797393869767, True),
            "cat_same": ("jensenshannon", 0.024804844575107746, False),
            "bool": ("jensenshannon", 0.1192169642877828, True),
            "yes_no": ("jensenshannon", 0.05835029651991193, False),
        },
        "share": 0.5833333333333334,
        "drifted": True,
    },
    "large_drift/psi": {
        "columns": {
            "num_same": ("psi", 0.005789025340846303, False),
            "num_shift": ("psi", 0.24470733945167983, True),
            "num_dirty": ("psi", 0.005875784046412299, False),
            "num_flat": ("psi", 0.0056152638069068535, False),
            "int_many": ("psi", 0.969256796369844, True),
            "float_few": ("psi", 0.21668691746353347, True),
            "float_binary": ("psi", 0.10313716384792318, True),
            "int_few": ("psi", 0.23554362252426703, True),
            "cat": ("psi", 0.4676116527329246, True),
            "cat_same": ("psi", 0.0015584225470561574, False),
            "bool": ("psi", 0.07965799557201583, False),
            "yes_no": ("psi", 0.0014677748218134023, False),
        },
        "share": 0.5,
        "drifted": True,
    },
    "large_drift/kl_div": {
        "columns": {
            "num_same": ("kl", 0.002688032556821717, False),
            "num_shift": ("kl", 0.09568922952436017, False),
            "num_dirty": ("kl", 0.002826702383243348, False),
            "num_flat": ("kl", 0.00286654619679861, False),
            "int_many": ("kl", 0.16893315648011542, True),
            "float_few": ("kl", 0.09884877615311992, False),
            "float_binary": ("kl", 0.05246946538938008, False),
            "int_few": ("kl", 0.10953573320555521, True),
            "cat": ("kl", 0.1491172239707986, True),
            "cat_same": ("kl", 0.0007819300712705694, False),
            "bool": ("kl", 0.04035878589119428, False),
            "yes_no": ("kl", 0.0007299607560968847, False),
        },
        "share": 0.25,
        "drifted": False,
    },
    "large_drift/jensenshannon": {
        "columns": {
            "num_same": ("jensenshannon", 0.027680015151929048, False),
            "num_shift": ("jensenshannon", 0.16602459485214094, True),
            "num_dirty": ("jensenshannon", 0.031260231272376156, False),
            "num_flat": ("jensenshannon", 0.026303071283106678, False),
            "int_many": ("jensenshannon", 0.23666441214533443, True),
            "float_few": ("jensenshannon", 0.16221580953575018, True),
            "float_binary": ("jensenshannon", 0.11327269169084597, True),
            "int_few": ("jensenshannon", 0.16921658494479894, True),
            "cat": ("jensenshannon", 0.20436891010230104, True),
            "cat_same": ("jensenshannon", 0.013956494073889983, False),
            "bool": ("jensenshannon", 0.09960666637553896, False),
            "yes_no": ("jensenshannon", 0.013544473192728848, False),
        },
        "share": 0.5,
        "drifted": True,
    },
}


@pytest.fixture(scope="module")
def datasets() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    return parity_datasets()


@pytest.mark.parametrize("name", sorted(EVIDENTLY_0_7_23))
def test_parity_with_recorded_evidently(
    datasets: dict[str, tuple[pd.DataFrame, pd.DataFrame]], name: str
) -> None:
    reference, current = datasets[name]
    drift = AutoDriftDetector().fit(reference).score(current)
    assert drift.skipped == {}
    assert_same(shipyard_verdicts(drift), EVIDENTLY_0_7_23[name])


@pytest.mark.parametrize("key", sorted(EVIDENTLY_0_7_23_HISTOGRAMS))
def test_histogram_parity_with_recorded_evidently(
    datasets: dict[str, tuple[pd.DataFrame, pd.DataFrame]], key: str
) -> None:
    """PSI, KL and JS with ``binning="evidently"`` equal Evidently's stattests at 0.1."""
    name, method = key.split("/")
    reference, current = datasets[name]
    settings: dict[str, Any] = {"binning": "evidently"}
    if method == "kl_div":
        settings["bands"] = Bands(inspect=0.1, retrain=0.15, pause=0.30)
    ours = detector(HISTOGRAM_METHODS[method], **settings).fit(reference)
    assert_same(shipyard_verdicts(ours.score(current)), EVIDENTLY_0_7_23_HISTOGRAMS[key])


def test_recordings_cover_every_test_and_both_verdicts() -> None:
    seen = [
        (method, drifted)
        for verdicts in EVIDENTLY_0_7_23.values()
        for method, _, drifted in verdicts["columns"].values()
    ]
    for method in _AUTO_METHODS.values():
        assert (method, True) in seen and (method, False) in seen, method
    assert {verdicts["drifted"] for verdicts in EVIDENTLY_0_7_23.values()} == {True, False}


# Re-record the fixtures above in an environment where Evidently 0.7 imports (it needs
# pandas < 3):  PYTHONPATH=. python tests/monitoring/test_evidently_parity.py
if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    pairs = parity_datasets()
    recorded = {name: evidently_verdicts(*pair) for name, pair in pairs.items()}
    print(f"EVIDENTLY_0_7_23: dict[str, Verdicts] = {recorded!r}")
    histograms = {
        f"{name}/{method}": evidently_verdicts(*pairs[name], method=method)
        for name in HISTOGRAM_DATASETS
        for method in HISTOGRAM_METHODS
    }
    print(f"EVIDENTLY_0_7_23_HISTOGRAMS: dict[str, Verdicts] = {histograms!r}")
