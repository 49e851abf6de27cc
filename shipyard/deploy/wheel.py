"""Shipyard's own wheel for an image: Shipyard is not on PyPI, so the context carries it.

The wheel is built from the source folder the running Shipyard is imported from, in a
temporary copy (the checkout gets no ``build/`` or ``egg-info``), with a fixed
``SOURCE_DATE_EPOCH``: the same sources give a byte-identical wheel, so a rebuilt
context keeps an image builder's cached install layer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from shipyard.errors import ConfigError

__all__ = ["DISTRIBUTION", "shipyard_wheel"]

DISTRIBUTION = "shipyard-mlops"  # Shipyard's distribution name
_SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip file can hold


def shipyard_wheel(folder: Path, given: Path | None) -> Path:
    """Shipyard's wheel: ``given``, or built from the running source into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    if given is not None:
        if not given.is_file() or given.suffix != ".whl":
            raise ConfigError(
                f"--wheel {given} is not a wheel file.",
                hint="Pass a .whl built with `pip wheel --no-deps /path/to/shipyard`.",
            )
        return given
    source = _source_tree()
    with tempfile.TemporaryDirectory(prefix="shipyard-wheel-") as scratch:
        # A copy of the sources, so the build leaves no build/ or egg-info in the checkout.
        tree = Path(scratch) / "src"
        tree.mkdir()
        for item in source.iterdir():
            if item.name in ("pyproject.toml", "README.md") or item.name.startswith("LICENSE"):
                shutil.copy2(item, tree / item.name)
        shutil.copytree(
            source / "shipyard",
            tree / "shipyard",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".env", "*.pem"),
        )
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
        command += ["--wheel-dir", str(folder), str(tree)]
        # A fixed timestamp makes the wheel byte-identical for identical sources, so a
        # rebuilt context keeps the builder's cached install layer.
        environ = {**os.environ, "SOURCE_DATE_EPOCH": _SOURCE_DATE_EPOCH}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=environ)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ConfigError(
                f"Could not build a wheel of Shipyard from {source}: {last[0]}",
                hint="Build one yourself (`pip wheel --no-deps <shipyard source>`) and pass "
                "it with --wheel.",
            )
    built = sorted(folder.glob("*.whl"))
    if len(built) != 1:
        raise ConfigError(f"Building Shipyard's wheel gave {len(built)} wheels, not 1.")
    return built[0]


def _source_tree() -> Path:
    """The source folder the running Shipyard is imported from (a checkout, ``pip install -e``)."""
    import shipyard

    root = Path(shipyard.__file__).resolve().parent.parent
    project = root / "pyproject.toml"
    if not project.is_file() or f'name = "{DISTRIBUTION}"' not in project.read_text("utf-8"):
        raise ConfigError(
            f"Shipyard runs from {root}, which is not its source folder.",
            hint="Shipyard is not on PyPI: build its wheel (`pip wheel --no-deps <shipyard "
            "source>`) and pass it with --wheel.",
        )
    return root
