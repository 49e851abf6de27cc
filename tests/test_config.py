from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import Config, load_config
from shipyard.config.reference import iter_settings, render_markdown, render_template
from shipyard.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_use_sqlite_in_workspace(tmp_path: Path) -> None:
    config = load_config(None, environ={}, overrides=None)
    assert config.db_url.startswith("sqlite:///")
    assert config.db_url.endswith(".shipyard/shipyard.db")
    assert config.train.seed == 42


def test_layering_defaults_file_environment_flags(tmp_path: Path) -> None:
    file = write(
        tmp_path / "shipyard.yaml",
        "project: p\ntrain:\n  seed: 1\n  params: {depth: 3}\nmodel:\n  name: file-model\n",
    )
    env = {"SHIPYARD_TRAIN__SEED": "2", "SHIPYARD_MODEL__OWNER": "ops"}
    config = load_config(file, environ=env, overrides={"train.seed": 3, "model.name": None})
    assert config.train.seed == 3  # flag beats environment beats file
    assert config.model.owner == "ops"  # environment beats default
    assert config.model.name == "file-model"  # a flag that was not given overrides nothing
    assert config.train.params == {"depth": 3}
    assert config.root == tmp_path.resolve()


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    file = write(tmp_path / "shipyard.yaml", "artifact_root: store\ntrain:\n  data: d.csv\n")
    config = load_config(file, environ={})
    assert config.artifact_path == (tmp_path / "store").resolve()
    assert config.train.data is not None
    assert config.resolve(config.train.data) == (tmp_path / "d.csv").resolve()


def test_config_is_immutable(tmp_path: Path) -> None:
    config = load_config(None, environ={})
    with pytest.raises(Exception, match="frozen"):
        config.project = "other"  # type: ignore[misc]


def test_invalid_value_names_key_and_line(tmp_path: Path) -> None:
    file = write(tmp_path / "shipyard.yaml", "project: p\ntrain:\n  seed: not-a-number\n")
    with pytest.raises(ConfigError) as info:
        load_config(file, environ={})
    assert "train.seed" in info.value.message
    assert "line 3" in info.value.message
    assert info.value.hint and "docs/config.md" in info.value.hint


def test_unknown_key_is_rejected_with_its_line(tmp_path: Path) -> None:
    file = write(tmp_path / "shipyard.yaml", "project: p\nmodel:\n  nmae: typo\n")
    with pytest.raises(ConfigError) as info:
        load_config(file, environ={})
    assert "model.nmae" in info.value.message
    assert "line 3" in info.value.message


def test_broken_yaml_reports_line(tmp_path: Path) -> None:
    file = write(tmp_path / "shipyard.yaml", "project: p\ntrain:\n  seed: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(file, environ={})


def test_missing_explicit_file_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", environ={})
    assert "shipyard init" in (info.value.hint or "")


def test_invalid_environment_value_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.seed"):
        load_config(None, environ={"SHIPYARD_TRAIN__SEED": "abc"})


def test_template_round_trips_to_the_defaults() -> None:
    import yaml

    data = yaml.safe_load(render_template("demo", "churn"))
    config = Config.model_validate(data)
    assert config.project == "demo"
    assert config.model.name == "churn"
    assert config.train.seed == Config().train.seed


def test_every_setting_has_help_text() -> None:
    settings = list(iter_settings())
    assert {s.key for s in settings} >= {"database_url", "artifact_root", "train.entrypoint"}
    assert all(s.help for s in settings)


def test_docs_page_is_generated_from_the_declarations() -> None:
    page = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert page == render_markdown(), "run `make docs` to regenerate docs/config.md"


def test_two_kpis_cannot_share_a_name() -> None:
    kpi = {"name": "conversion", "sql": "SELECT 1"}
    with pytest.raises(ValueError, match="two KPIs are named 'conversion'"):
        Config(kpis=[kpi, kpi])
    assert len(Config(kpis=[kpi, {**kpi, "name": "losses"}]).kpis) == 2
