"""Reading the configuration: defaults < ``shipyard.yaml`` < ``SHIPYARD_*`` environment < flags.

Errors name the offending key and, when it came from the file, its line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shipyard.config.root import Config
from shipyard.errors import ConfigError

__all__ = ["CONFIG_FILENAME", "ENV_NESTING", "ENV_PREFIX", "find_config_file", "load_config"]

CONFIG_FILENAME = "shipyard.yaml"
ENV_PREFIX = "SHIPYARD_"
ENV_NESTING = "__"


def find_config_file(start: Path | None = None) -> Path | None:
    """Nearest ``shipyard.yaml`` in ``start`` or its parents (``SHIPYARD_CONFIG`` wins)."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    return None


def load_config(
    path: Path | str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    require_file: bool = False,
) -> Config:
    """Resolve defaults < file < ``SHIPYARD_*`` environment < ``overrides``.

    ``overrides`` use dotted keys (``{"train.seed": 7}``); ``None`` values are ignored so
    CLI flags that were not given do not override anything.
    """
    file = Path(path) if path is not None else find_config_file()
    if file is not None and not file.is_file():
        raise ConfigError(
            f"Config file {file} does not exist.",
            hint="Run `shipyard init` to create one, or pass --config PATH.",
        )
    if file is None and require_file:
        raise ConfigError(
            f"No {CONFIG_FILENAME} found in {Path.cwd()} or its parents.",
            hint="Run `shipyard init` in your project folder, or pass --config PATH.",
        )
    data: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if file is not None:
        data, lines = _read_yaml(file)
    for dotted, value in _environment(environ if environ is not None else os.environ):
        _set_dotted(data, dotted, value)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    root = file.resolve().parent if file is not None else Path.cwd().resolve()
    data["root"] = root
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, file, lines) from None


def _read_yaml(file: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        text = file.read_text(encoding="utf-8")
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{file} is not valid YAML{where}: {getattr(exc, 'problem', exc)}.",
            hint="Fix the YAML syntax (indentation, colons, quotes) and try again.",
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {file}: {exc.strerror}.", hint="Check the path.") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file} must hold a mapping of settings, not a {type(data).__name__}.",
            hint="Start from the file `shipyard init` writes.",
        )
    return data, dict(_key_lines(node, ()))


def _key_lines(
    node: yaml.Node | None, prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], int]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, str(key.value))
            yield path, key.start_mark.line + 1
            yield from _key_lines(value, path)


def _environment(environ: Mapping[str, str]) -> Iterator[tuple[str, Any]]:
    # Not settings: the config file's path, the CLI's token, the retired actor name, and
    # the Pythons of the Airflow and Feast venvs the tests and import-feast run.
    skip = {
        f"{ENV_PREFIX}{name}"
        for name in ("CONFIG", "TOKEN", "USER", "AIRFLOW_PYTHON", "FEAST_PYTHON")
    }
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in skip:
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace(ENV_NESTING, ".")
        # YAML parsing gives numbers, booleans and {..} mappings their types.
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            value = raw
        yield dotted, value


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    target = data
    for key in parents:
        child = target.get(key)
        if not isinstance(child, dict):
            child = {}
            target[key] = child
        target = child
    target[leaf] = value


def _config_error(
    exc: ValidationError, file: Path | None, lines: Mapping[tuple[str, ...], int]
) -> ConfigError:
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(top level)"
        line = lines.get(loc) or lines.get(loc[:-1])
        where = f" ({file}, line {line})" if file is not None and line else ""
        problems.append(f"  {key}{where}: {error['msg']}")
    source = str(file) if file is not None else "configuration"
    return ConfigError(
        f"Invalid {source}:\n" + "\n".join(problems),
        hint="See docs/config.md for every setting, its type and default.",
    )
