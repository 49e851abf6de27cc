"""``shipyard features apply | list | show | diff``, in-process, with and without --json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from shipyard.cli import run
from tests.support.features import features_py, python_driver_project

Capture = pytest.CaptureFixture[str]


def cli(capsys: Capture, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stdout + stderr of one in-process command."""
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, out + err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = python_driver_project(tmp_path).root
    monkeypatch.chdir(root)
    return root


def test_apply_prints_new_unchanged_and_changed(project: Path, capsys: Capture) -> None:
    code, out, both = cli(capsys, "features", "apply")
    assert code == 0, both
    assert "driver_stats (view): new, version" in out
    code, out, _ = cli(capsys, "features", "apply")
    assert code == 0 and "driver_stats (view): unchanged" in out
    (project / "features.py").write_text(features_py(ttl_hours=1))
    code, out, _ = cli(capsys, "features", "apply", "--json")
    assert code == 0
    (view,) = json.loads(out)["views"]
    assert view["status"] == "changed" and view["previous"] != view["version"]
    assert view["changes"] == [
        {"field": "ttl_seconds", "kind": "changed", "before": 7200.0, "after": 3600.0}
    ]


def test_list_and_show(project: Path, capsys: Capture) -> None:
    code, out, _ = cli(capsys, "features", "apply", "--json")
    version = json.loads(out)["views"][0]["version"]
    code, out, both = cli(capsys, "features", "list")
    assert code == 0, both
    assert "driver_stats" in out and version in out and "2h" in out and "tester" in out
    code, out, _ = cli(capsys, "features", "list", "--json")
    assert json.loads(out) == [
        {
            "name": "driver_stats",
            "kind": "view",
            "version": version,
            "entities": ["driver"],
            "features": 2,
            "ttl_seconds": 7200.0,
            "applied_by": "tester",
            "applied_at": json.loads(out)[0]["applied_at"],
        }
    ]
    code, out, _ = cli(capsys, "features", "show", "driver_stats")
    assert code == 0
    assert "file data/driver_stats.parquet" in out and "DOUBLE" in out and "current" in out
    code, out, _ = cli(
        capsys, "features", "show", "driver_stats", "--version", version[:5], "--json"
    )
    shown = json.loads(out)
    assert shown["version"] == version and shown["current"] == version
    assert shown["source_schema"]["trips"] == "BIGINT"
    assert [f["name"] for f in shown["definition"]["features"]] == ["conv_rate", "trips"]


def test_diff_against_the_files_and_between_versions(project: Path, capsys: Capture) -> None:
    _, out, _ = cli(capsys, "features", "apply", "--json")
    first = json.loads(out)["views"][0]["version"]
    text = features_py(features='Feature("conv_rate", "float32"), Feature("trips", "int64")')
    (project / "features.py").write_text(text)
    code, out, both = cli(capsys, "features", "diff", "driver_stats")
    assert code == 0, both
    assert "(files)" in out and "~ features.conv_rate.dtype: float64 → float32" in out
    _, out, _ = cli(capsys, "features", "apply", "--json")
    second = json.loads(out)["views"][0]["version"]
    code, out, _ = cli(capsys, "features", "diff", "driver_stats", "--json")
    assert json.loads(out) == {"name": "driver_stats", "from": second, "to": second, "changes": []}
    code, out, _ = cli(
        capsys, "features", "diff", "driver_stats", "--from", second, "--to", first, "--json"
    )
    assert json.loads(out)["changes"] == [
        {
            "field": "features.conv_rate.dtype",
            "kind": "changed",
            "before": "float32",
            "after": "float64",
        }
    ]


def test_bad_input_is_an_error_without_a_traceback(project: Path, capsys: Capture) -> None:
    frame = pd.read_parquet(project / "data" / "driver_stats.parquet")
    frame.assign(conv_rate=frame["conv_rate"].astype(str)).to_parquet(
        project / "data" / "driver_stats.parquet", index=False
    )
    code, _, both = cli(capsys, "features", "apply")
    assert code != 0
    assert "'conv_rate'" in both and "VARCHAR" in both and "Traceback" not in both
    code, _, both = cli(capsys, "features", "show", "driver_stats")
    assert code != 0 and "has not been applied" in both and "Traceback" not in both
    (project / "features.py").write_text("raise RuntimeError('broken definitions')\n")
    code, _, both = cli(capsys, "features", "apply")
    assert code != 0 and "broken definitions" in both and "Traceback" not in both


def test_show_an_on_demand_view(project: Path, capsys: Capture) -> None:
    extra = """
        from shipyard.features import on_demand

        @on_demand(sources=["driver_stats:conv_rate"], features=[Feature("conv_pct")])
        def conv_pct(columns):
            return {"conv_pct": columns["conv_rate"] * 100}
        """
    (project / "features.py").write_text(features_py(extra=extra))
    code, out, both = cli(capsys, "features", "apply")
    assert code == 0, both
    assert "conv_pct (on_demand): new" in out and "driver_stats (view): new" in out
    code, out, both = cli(capsys, "features", "show", "conv_pct")
    assert code == 0, both
    assert "sources: driver_stats:conv_rate" in out and "conv_pct" in out
    code, out, _ = cli(capsys, "features", "list", "--json")
    assert [(v["name"], v["kind"]) for v in json.loads(out)] == [
        ("conv_pct", "on_demand"),
        ("driver_stats", "view"),
    ]
