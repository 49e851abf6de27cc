"""Bands calibrated for the reference and the window actually scored, by default.

With ``monitoring.calibration: auto`` (the default), every feature without an explicit
``monitoring.bands`` entry is held to levels bootstrapped from the reference at
``monitoring.false_alarm_rate`` for the size of the window being scored
(:func:`~shipyard.monitoring.calibrate.calibrate_bands` with
``never_below_defaults=False``), once the feature has ``monitoring.calibration_min_rows``
reference values. The shipped PSI/KL table is the fallback: a smaller reference, or
``calibration: off``.

    bands = calibrated_bands(reference, window_size=5000, false_alarm_rate=0.01)
    bands["amount"]   # Bands(inspect=0.0031, retrain=0.15, pause=0.3)

Results are cached by (the feature's reference content, method, window size rounded to
two significant digits, rate): in the process, and, for ``window_bands``, as small JSON
files in ``.shipyard/monitoring/calibrated/``, so neither the agent nor a scheduled
``shipyard monitor run`` pays the bootstrap more than once per reference and window size.
Rounding moves the window size by at most 5 %, which moves the false-alarm rate far less
than the bootstrap's own error. The levels are reproducible: the bootstrap's seed comes
from the same key.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from shipyard.config import BandSettings, Config
from shipyard.monitoring.calibrate import null_levels
from shipyard.monitoring.feature_drift import configured_bands, default_method
from shipyard.monitoring.null_model import null_scores
from shipyard.monitoring.reference import ColumnReference, Reference
from shipyard.monitoring.results import Bands

__all__ = ["calibrated_bands", "window_bands", "window_size_bucket"]

# Null windows per feature: at a 1 % rate the inspect quantile rests on 50 of them.
_MIN_BOOT = 2000
_CACHE_SIZE = 4096
_cache: OrderedDict[tuple[str, str, int, float], Bands] = OrderedDict()
_fingerprints: weakref.WeakKeyDictionary[ColumnReference, str] = weakref.WeakKeyDictionary()
_lock = threading.Lock()  # the agent may monitor several models from worker threads


def calibrated_bands(
    reference: Reference,
    window_size: int | Mapping[str, int],
    *,
    false_alarm_rate: float = 0.01,
    min_rows: int = 1000,
    features: Iterable[str] | None = None,
    directory: Path | None = None,
) -> dict[str, Bands]:
    """Bands calibrated for this reference and window size, for the features that qualify.

    ``window_size`` is the window's row count, or each feature's count of values (a
    feature with missing values is scored on fewer). A feature qualifies when it has at
    least ``min_rows`` finite reference values; the others are left out, so the caller's
    fallback (the shipped table) applies to them. Inspect is reached by no-drift windows
    at ``false_alarm_rate``; retrain and pause at a tenth and a hundredth of it, and never
    below the shipped levels (see :mod:`~shipyard.monitoring.calibrate`). With
    ``directory``, levels are also kept there as files, for the next process.
    """
    names = list(reference.columns) if features is None else list(features)
    bands: dict[str, Bands] = {}
    for name in names:
        column = reference[name]
        size = window_size if isinstance(window_size, int) else window_size.get(name, 0)
        if column.n < min_rows or size < 1:
            continue
        method = default_method(reference, name)
        bands[name] = _cached(column, method, size, false_alarm_rate, directory)
    return bands


def window_bands(
    config: Config, reference: Reference, window: pd.DataFrame
) -> dict[str, BandSettings]:
    """The levels each feature of ``window`` is held to, for ``feature_drift``'s overrides.

    Explicit ``monitoring.bands`` first; then, with ``monitoring.calibration: auto``,
    bands calibrated for the window's size; features in neither get the shipped table.
    """
    settings = config.monitoring
    explicit = configured_bands(config)
    if settings.calibration != "auto":
        return explicit
    rest = [f for f in reference.columns if f in window.columns and f not in explicit]
    sizes = {f: int(window[f].notna().sum()) for f in rest}
    calibrated = calibrated_bands(
        reference,
        sizes,
        false_alarm_rate=settings.false_alarm_rate,
        min_rows=settings.calibration_min_rows,
        features=rest,
        directory=config.workspace / "monitoring" / "calibrated",
    )
    levels = {
        name: BandSettings(
            inspect=b.inspect,
            retrain=b.retrain,
            pause=b.pause,
            method=default_method(reference, name),
        )
        for name, b in calibrated.items()
    }
    return levels | explicit


def window_size_bucket(size: int) -> int:
    """``size`` rounded to two significant digits: the window size bands are cached for."""
    return int(float(f"{size:.2g}")) if size >= 100 else size


def _cached(
    column: ColumnReference, method: str, size: int, rate: float, directory: Path | None
) -> Bands:
    bucket = window_size_bucket(size)
    key = (_fingerprint(column), method, bucket, rate)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    path = (
        None if directory is None else directory / f"{key[0][:32]}-{method}-{bucket}-{rate:g}.json"
    )
    bands = _read(path) if path is not None else None
    if bands is None:
        seed = int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little")
        n_boot = max(_MIN_BOOT, int(np.ceil(50 / rate)))
        rng = np.random.default_rng(seed)
        null = null_scores(column, bucket, method, n_boot=n_boot, rng=rng)
        levels = null_levels(null, rate, method, never_below_defaults=False)
        bands = Bands(levels.inspect, levels.retrain, levels.pause)
        if path is not None:
            _write(path, bands)
    with _lock:
        _cache[key] = bands
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return bands


def _read(path: Path) -> Bands | None:
    """Levels a previous process calibrated, or None when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Bands(float(data["inspect"]), float(data["retrain"]), float(data["pause"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # recalibrating costs seconds; a bad cache file must not stop a run


def _write(path: Path, bands: Bands) -> None:
    """Keep levels for the next process; written whole (rename), so readers never see half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(bands)), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass  # a read-only workspace only costs the next run its bootstrap


def _fingerprint(column: ColumnReference) -> str:
    """A digest of the column's reference values and counts (what calibration reads)."""
    known = _fingerprints.get(column)
    if known is not None:
        return known
    digest = hashlib.sha256(column.representation.encode())
    if column.representation == "numeric":
        digest.update(np.ascontiguousarray(column.values, dtype=np.float64).tobytes())
    else:
        digest.update(repr(column.values.tolist()).encode())
    digest.update(np.ascontiguousarray(column.counts, dtype=np.int64).tobytes())
    _fingerprints[column] = digest.hexdigest()
    return _fingerprints[column]
