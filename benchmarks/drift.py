"""Shipyard's auto-mode drift against Evidently 0.7's ``DataDriftPreset``, same data, one run.

    python benchmarks/drift.py                      # 1M rows, 20 numeric + 5 categorical
    python benchmarks/drift.py --reader stream      # Shipyard reads a column at a time
    python benchmarks/drift.py --reference-flow stored   # fitted reference saved, reloaded
    python benchmarks/drift.py --rows 100000 --numeric 80 --categorical 20
    python benchmarks/drift.py --scaling            # Shipyard: 100k → 10M rows, 10 → 500 columns
    python benchmarks/drift.py --engine-scaling --numeric 8 --categorical 2
                                                    # chunked engine: 1M → 100M-row windows
    python benchmarks/drift.py --engine-scaling --rows 100000 --window-rows 1000000 \
        --spark-max-rows 1000000                    # … and Spark (local mode)

The synthetic reference and current data are written once to Parquet in a temporary
directory, a row group (2**20 rows) at a time, so generating 100M rows never holds a
whole frame; values stay float64. Every fourth numeric column and every other
categorical column shifts. Each side then runs in a process of its own that reads the
same Parquet files the same way (``--reader``), and reports its own peak RSS
(``VmHWM``):

- Evidently 0.7.23 runs in its own virtual environment (it needs ``pandas<3``),
  created on first use under ``~/.cache/shipyard-bench/`` with the project's NumPy and
  SciPy versions pinned, so both sides do the same floating-point work. It reads both
  frames and computes ``Report([DataDriftPreset()], include_tests=True)``.
- Shipyard runs with this interpreter: it reads the reference, ``fit``s
  ``AutoDriftDetector``, lets the reference frame go (``--keep-reference`` holds it),
  reads the current window and ``score``s it. With ``--reference-flow stored`` it
  saves the fitted reference (``Reference.save``) and drops the detector before reading
  the window, then loads it to score, as a monitoring job does with the reference
  stored at training time; saving and loading count in its compute time.

Per-column methods and verdicts must be identical and scores equal to 1e-6 relative
(exit status 1 otherwise); wall time and peak memory are compared with the floors:
Shipyard ≥ 30× faster, ≤ 1/4 of the memory. Both sides compute on one thread, so
their CPU time (also recorded, and compared in its own row) equals their wall time on
an idle machine; on a shared one the CPU ratio is the steadier of the two.

``--engine chunked|spark`` scores the window from mergeable per-chunk summaries
(``shipyard.monitoring.chunks``), read ``--batch-rows`` rows at a time or on a local
Spark session. ``--engine-scaling`` writes windows of ``--window-rows`` rows against
one reference, runs the chunked engine (and Spark, and the one-pass scorer where they
fit), and reports ns per row·column of the window, peak RSS (with child processes:
Spark's JVM and workers) and whether the verdicts equal the one pass; each window's
files are deleted after it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

# Only the standard library, NumPy, pandas, PyArrow and Rich at module level: the
# Evidently side runs this file with the Evidently environment's interpreter.

EVIDENTLY_VERSION = "0.7.23"
SPEED_FLOOR = 30.0  # Shipyard at least this many times faster
MEMORY_FLOOR = 4.0  # Evidently's peak RSS at least this many times Shipyard's
RELATIVE_TOLERANCE = 1e-6

# Evidently's display name of an auto-chosen test -> Shipyard's method name.
EVIDENTLY_METHODS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}

# Rows written per Parquet row group (and generated at once).
_CHUNK_ROWS = 1 << 20

console = Console()
if not console.is_terminal:  # piped to a file: wide enough for the per-column table
    console.width = 120


# --- data ------------------------------------------------------------------------------

NUMERIC_KINDS = (
    "normal",
    "lognormal",
    "uniform",
    "exponential",
    "normal",
    "lognormal",
    "poisson",  # int64 with ~60 distinct values: numerical, Wasserstein
    "few_values",  # four float values: numerical, but ≤ 5 distinct, so Jensen–Shannon
    "normal_nan",  # 5 % NaN and a few ±inf, dropped by both tools
    "binary",  # 0.0 / 1.0
)
CATEGORICAL_KINDS = ("letters", "many", "bool", "yes_no", "unseen")


@dataclass(frozen=True)
class ColumnSpec:
    """One synthetic column: its name, generator kind and whether the current window shifts."""

    name: str
    kind: str
    shifted: bool


def column_specs(numeric: int, categorical: int) -> list[ColumnSpec]:
    """Every fourth numeric column and every other categorical column shift."""
    specs = [
        ColumnSpec(f"num_{i}_{NUMERIC_KINDS[i % 10]}", NUMERIC_KINDS[i % 10], i % 4 == 0)
        for i in range(numeric)
    ]
    specs += [
        ColumnSpec(f"cat_{j}_{CATEGORICAL_KINDS[j % 5]}", CATEGORICAL_KINDS[j % 5], j % 2 == 0)
        for j in range(categorical)
    ]
    return specs


def _column(spec: ColumnSpec, rows: int, shift: bool, rng: np.random.Generator) -> pa.Array:
    """``rows`` values of one column; ``shift`` moves its distribution (current window only)."""
    s = 1.0 if shift else 0.0
    kind = spec.kind
    if kind == "normal":
        return pa.array(rng.normal(0.3 * s, 1.0, rows))
    if kind == "lognormal":
        return pa.array(rng.lognormal(0.3 * s, 1.0, rows))
    if kind == "uniform":
        return pa.array(rng.uniform(0.5 * s, 10.0 + 0.5 * s, rows))
    if kind == "exponential":
        return pa.array(rng.exponential(1.0 + 0.4 * s, rows))
    if kind == "poisson":
        return pa.array(rng.poisson(40.0 + 4.0 * s, rows).astype(np.int64))
    if kind == "few_values":
        probs = np.array([0.4, 0.3, 0.2, 0.1]) + np.array([-0.15, 0, 0, 0.15]) * s
        return pa.array(rng.choice(np.array([0.5, 1.5, 2.5, 3.5]), rows, p=probs))
    if kind == "normal_nan":
        values = rng.normal(0.3 * s, 1.0, rows)
        values[rng.random(rows) < 0.05] = np.nan
        values[rng.integers(0, rows, 3)] = np.inf
        values[rng.integers(0, rows, 2)] = -np.inf
        return pa.array(values)
    if kind == "binary":
        return pa.array((rng.random(rows) < 0.3 + 0.2 * s).astype(np.float64))
    if kind == "letters":
        probs = np.array([0.4, 0.3, 0.2, 0.1]) + np.array([-0.15, 0, 0, 0.15]) * s
        return _strings(rng.choice(4, rows, p=probs), np.array(["a", "b", "c", "d"]))
    if kind == "many":
        weights = 1.0 / np.arange(1, 31) ** (1.0 - 0.5 * s)  # flatter when shifted
        labels = np.array([f"city_{k:02d}" for k in range(30)])
        return _strings(rng.choice(30, rows, p=weights / weights.sum()), labels)
    if kind == "bool":
        return pa.array(rng.random(rows) < 0.5 + 0.2 * s)
    if kind == "yes_no":
        return _strings(
            (rng.random(rows) < 0.3 + 0.2 * s).astype(np.int64), np.array(["no", "yes"])
        )
    if kind == "unseen":  # the current window brings a category the reference never had
        probs = np.array([0.4, 0.25, 0.2, 0.15] if shift else [0.5, 0.3, 0.2, 0.0])
        return _strings(rng.choice(4, rows, p=probs), np.array(["x", "y", "z", "new"]))
    raise ValueError(kind)


def _strings(codes: np.ndarray, labels: np.ndarray) -> pa.Array:
    # Plain (not dictionary) strings, so each side's pandas reads them as it would any text.
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(labels)).cast(
        pa.string()
    )


def write_frame(
    path: Path,
    specs: list[ColumnSpec],
    rows: int,
    shift: bool,
    seed: int,
    progress: Progress,
    label: str,
) -> None:
    """Write ``rows`` rows to ``path`` a row group at a time (one column generator per spec)."""
    rngs = [np.random.default_rng([seed, int(shift), i]) for i in range(len(specs))]
    task = progress.add_task(f"writing {label}", total=rows)
    writer: pq.ParquetWriter | None = None
    try:
        for start in range(0, rows, _CHUNK_ROWS):
            size = min(_CHUNK_ROWS, rows - start)
            arrays = [
                _column(spec, size, shift and spec.shifted, rng)
                for spec, rng in zip(specs, rngs, strict=True)
            ]
            table = pa.table(arrays, names=[spec.name for spec in specs])
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            progress.advance(task, size)
    finally:
        if writer is not None:
            writer.close()


def write_data(
    directory: Path,
    rows: int,
    current_rows: int,
    numeric: int,
    categorical: int,
    seed: int,
) -> list[ColumnSpec]:
    """Write ``reference.parquet`` and ``current.parquet`` into ``directory``."""
    specs = column_specs(numeric, categorical)
    with _progress() as progress:
        write_frame(
            directory / "reference.parquet", specs, rows, False, seed, progress, "reference"
        )
        write_frame(
            directory / "current.parquet", specs, current_rows, True, seed, progress, "current"
        )
    return specs


# --- the two sides, each run in a process of its own -------------------------------------


def _rss_mib(field: str = "VmRSS", pid: int | str = "self") -> float:
    """A memory line of ``/proc/<pid>/status`` in MiB (0 when unavailable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _tree_rss_mib(root: int) -> float:
    """RSS of a process and all its descendants now, in MiB (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_mib("VmRSS", pid)
        todo.extend(children.get(pid, ()))
    return total


class _Side:
    """What a side process records: phase (for the parent's progress bar), times, RSS."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}  # user + system time of this process
        self.rss: dict[str, float] = {}
        self.peak_so_far: dict[str, float] = {}

    def phase(self, name: str) -> None:
        Path(f"{self.out}.phase").write_text(name)

    def timed(self, name: str, work: Callable[[], Any]) -> Any:
        self.phase(name)
        start, cpu = time.perf_counter(), time.process_time()
        value = work()
        self.seconds[name] = time.perf_counter() - start
        self.cpu_seconds[name] = time.process_time() - cpu
        self.rss[f"after {name}"] = _rss_mib()
        self.peak_so_far[name] = _rss_mib("VmHWM")  # which phase set the peak
        return value

    def dump(self, **fields: Any) -> None:
        self.seconds["process"] = time.perf_counter() - self.started
        # VmHWM of this process's own address space: wait4's ru_maxrss would also count
        # the parent's RSS at the time of the fork (Linux carries it over the exec).
        self.rss["peak"] = _rss_mib("VmHWM")
        data = {
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "rss_mib": self.rss,
            "peak_so_far_mib": self.peak_so_far,
            **fields,
        }
        self.out.write_text(json.dumps(data, allow_nan=True))


# stream: Shipyard reads the files a column at a time (ParquetColumns) and never holds a
# whole frame; Evidently needs DataFrames, so its side reads with pandas.
READERS = ("pandas", "arrow", "stream")


def read_frame(path: Path, reader: str) -> Any:
    """Read a Parquet file into pandas, the same way on both sides.

    ``pandas``: ``pd.read_parquet(path)``, as users do. ``arrow``: PyArrow without
    pre-buffering the file, each Arrow column freed once converted — the same frame
    for about half the transient memory. Either way, Arrow's allocator then hands its
    unused memory back to the system, so neither side carries the reader's scratch
    space into the comparison.
    """
    if reader in ("pandas", "stream"):
        import pandas as pd

        frame = pd.read_parquet(path)
    else:
        table = pq.read_table(path, pre_buffer=False)
        frame = table.to_pandas(self_destruct=True, split_blocks=True)
        del table
    pa.default_memory_pool().release_unused()
    return frame


ENGINES = ("single", "chunked", "spark")


def run_shipyard_side(
    data: Path,
    out: Path,
    reader: str,
    keep_reference: bool,
    engine: str = "single",
    batch_rows: int = _CHUNK_ROWS,
    spark_cores: int = 1,
    flow: str = "held",
) -> None:
    """Read reference, fit, (release the reference frame), read current, score; dump JSON.

    ``engine`` decides how the current window is scored: ``single`` reads it (with
    ``reader``) and calls ``detector.score``; ``chunked`` summarises its Parquet file
    ``batch_rows`` rows at a time and scores the merged summary; ``spark`` summarises it
    on a local Spark session (``local[spark_cores]``) and scores the merged summary.
    ``flow="stored"`` saves the fitted reference (``Reference.save``) and drops the
    detector before the current window is read, then loads it to score (timed as
    ``store`` and ``load``, counted in the compute time).
    """
    side = _Side(out)

    def load() -> Any:
        import pandas as pd

        from shipyard.monitoring import AutoDriftDetector

        return pd, AutoDriftDetector

    pd, auto_detector = side.timed("import", load)
    read: Callable[[Path], Any] = lambda path: read_frame(path, reader)  # noqa: E731
    if reader == "stream":  # columns on demand: the files are never held whole
        from shipyard.monitoring.parquet_columns import ParquetColumns

        read = ParquetColumns
    reference = side.timed("read reference", lambda: read(data / "reference.parquet"))
    detector = side.timed("fit", lambda: auto_detector().fit(reference))
    if not keep_reference:
        # The fitted detector keeps what scoring needs (as it would once stored); the
        # training frame is not needed to score a window. Arrow's allocator keeps the
        # freed frame's memory until asked to hand it back, as read_frame does.
        del reference
        pa.default_memory_pool().release_unused()
    stored = out.with_name("reference.npz")
    if flow == "stored":
        # As in production: the reference is processed at training time and stored; the
        # monitoring job reads its window and loads the stored reference to score it.
        from shipyard.monitoring import Reference

        side.timed("store", lambda: detector.reference_.save(stored))
        del detector
        detector = None
    current_path = data / "current.parquet"

    def reload() -> None:
        nonlocal detector
        if detector is None:
            detector = side.timed("load", lambda: auto_detector().fit(Reference.load(stored)))

    if engine == "single":
        current = side.timed("read current", lambda: read(current_path))
        reload()
        drift = side.timed("score", lambda: detector.score(current))
    elif engine == "chunked":
        reload()
        from shipyard.monitoring.chunk_scores import score_summary
        from shipyard.monitoring.chunks import summarize_batches

        def batches() -> Iterator[Any]:
            # A row group at a time, sliced to batch_rows: ParquetFile.iter_batches
            # (pre-buffering on) kept ~50 MiB of Arrow buffers alive per 1M-row batch
            # here, 6 GiB by 100M rows; read_row_group frees each one.
            parquet = pq.ParquetFile(current_path)
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, use_threads=False)
                for start in range(0, table.num_rows, batch_rows):
                    yield table.slice(start, batch_rows).to_pandas()
                del table

        def chunked() -> Any:
            return score_summary(detector, summarize_batches(detector, batches()))

        drift = side.timed("score", chunked)
    else:
        reload()
        from shipyard.monitoring.chunk_scores import score_summary
        from shipyard.monitoring.spark_engine import local_session, summarize_parquet

        session = side.timed("spark start", lambda: local_session(spark_cores))
        drift = side.timed(
            "score",
            lambda: score_summary(
                detector, summarize_parquet(detector, [str(current_path)], spark=session)
            ),
        )
    columns = {r.feature: [r.method, r.drift_score, r.drifted] for r in drift.columns}
    side.dump(
        tool="Shipyard",
        engine=engine,
        versions={"pandas": pd.__version__, "numpy": np.__version__, **_scipy_version()},
        columns=columns,
        skipped=drift.skipped,
        share=drift.share,
        drifted=drift.drifted,
        approximate=[r.feature for r in drift.columns if r.approximate],
    )


def run_evidently_side(data: Path, out: Path, reader: str) -> None:
    """Read both frames, run ``Report([DataDriftPreset()])``; dump per-column results as JSON."""
    import warnings

    side = _Side(out)

    def load() -> Any:
        import evidently
        import pandas as pd
        from evidently import Report
        from evidently.presets import DataDriftPreset

        return evidently, pd, Report, DataDriftPreset

    evidently, pd, report_type, preset = side.timed("import", load)
    reference = side.timed("read reference", lambda: read_frame(data / "reference.parquet", reader))
    current = side.timed("read current", lambda: read_frame(data / "current.parquet", reader))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = report_type([preset()], include_tests=True)
        snapshot = side.timed("run", lambda: report.run(current, reference))
        result = side.timed("results", snapshot.dict)
    status = {test["name"]: test["status"] for test in result["tests"]}
    columns: dict[str, list[Any]] = {}
    share = math.nan
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith("ValueDrift"):
            name = config["column"]
            method = EVIDENTLY_METHODS.get(config["method"], config["method"])
            drifted = status[f"Value Drift for column {name}"] == "FAIL"
            columns[name] = [method, float(metric["value"]), drifted]
    dataset = next(value for key, value in status.items() if key.startswith("Share of Drifted"))
    side.dump(
        tool="Evidently",
        versions={
            "evidently": evidently.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            **_scipy_version(),
        },
        columns=columns,
        share=share,
        drifted=dataset == "FAIL",
    )


def _scipy_version() -> dict[str, str]:
    import scipy

    return {"scipy": scipy.__version__}


# The phases that are the library's own work (reading the Parquet files is not).
_COMPUTE = ("fit", "store", "load", "score", "run", "results")


@dataclass
class SideResult:
    """A finished side: its JSON dump and the wall time of the whole process."""

    data: dict[str, Any]
    process_s: float
    tree_peak_mib: float = 0.0

    @property
    def peak_mib(self) -> float:
        """The process's peak RSS (``VmHWM`` at its end)."""
        return float(self.data["rss_mib"]["peak"])

    @property
    def compute_s(self) -> float:
        """The library's own work: fit + score, or the report run + reading its results."""
        seconds = self.data["seconds"]
        return sum(seconds.get(key, 0.0) for key in _COMPUTE)

    @property
    def compute_cpu_s(self) -> float:
        """The same phases in CPU time (user + system): steadier on a shared machine."""
        seconds = self.data.get("cpu_seconds", {})
        return sum(seconds.get(key, 0.0) for key in _COMPUTE)


def run_side(
    label: str, command: list[str], out: Path, progress: Progress, env: dict[str, str] | None = None
) -> SideResult | None:
    """Run a side process, showing its phase and RSS as it goes."""
    task = progress.add_task(label, total=None)
    log = out.with_suffix(".log")
    tree_peak = 0.0  # sampled every 0.1 s: the side and its children (Spark's JVM, workers)
    start = time.perf_counter()
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stdout=stderr, stderr=stderr, env=env)
        while True:
            pid, status = os.waitpid(process.pid, os.WNOHANG)
            if pid:
                break
            phase_file = Path(f"{out}.phase")
            phase = phase_file.read_text() if phase_file.exists() else "starting"
            rss = _rss_mib("VmRSS", process.pid)
            tree_peak = max(tree_peak, _tree_rss_mib(process.pid))
            progress.update(task, description=f"{label}: {phase}, RSS {rss:,.0f} MiB")
            time.sleep(0.1)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or not out.exists():
        progress.update(task, total=1, completed=0, description=f"{label}: [red]failed")
        console.print(f"[red]{label} failed (exit {process.returncode}); its log:[/red]")
        console.print(log.read_text()[-4000:], markup=False, highlight=False)
        return None
    side = SideResult(json.loads(out.read_text()), elapsed, tree_peak)
    desc = f"{label}: {elapsed:.1f} s, peak {side.peak_mib:,.0f} MiB"
    progress.update(task, total=1, completed=1, description=desc)
    return side


def side_command(python: Path | str, side: str, data: Path, args: argparse.Namespace) -> list[str]:
    """The command running one side on the Parquet files in ``data``."""
    command = [str(python), __file__, "--side", side, "--data", str(data)]
    command += ["--out", str(data / f"{side}.json"), "--reader", args.reader]
    if side == "shipyard":
        engine = getattr(args, "side_engine", None) or args.engine
        command += ["--engine", engine, "--batch-rows", str(args.batch_rows)]
        command += ["--spark-cores", str(args.spark_cores), "--reference-flow", args.reference_flow]
    return [*command, "--keep-reference"] if args.keep_reference else command


def _project_env() -> dict[str, str]:
    # The Shipyard side imports the package from this checkout, installed or not.
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}


# --- Evidently's environment -------------------------------------------------------------


def default_venv() -> Path:
    """``$XDG_CACHE_HOME/shipyard-bench/evidently-<version>`` (``~/.cache`` by default)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "shipyard-bench" / f"evidently-{EVIDENTLY_VERSION}"


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    return venv / "bin" / "python"


def evidently_ready(venv: Path) -> dict[str, str] | None:
    """Versions in the environment when Evidently imports there at the pinned version."""
    python = venv_python(venv)
    if not python.exists():
        return None
    probe = (
        "import json, evidently, pandas, numpy, scipy, pyarrow; print(json.dumps({"
        "'evidently': evidently.__version__, 'pandas': pandas.__version__, "
        "'numpy': numpy.__version__, 'scipy': scipy.__version__}))"
    )
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    versions: dict[str, str] = json.loads(done.stdout)
    return versions if versions["evidently"] == EVIDENTLY_VERSION else None


def ensure_evidently(venv: Path) -> dict[str, str] | None:
    """Create (or reuse) Evidently's environment; ``None``, having said why, when that fails."""
    versions = evidently_ready(venv)
    if versions:
        console.print(f"Evidently environment: {venv} (reused)")
        return versions
    import scipy

    console.print(f"Creating Evidently's environment in {venv} (once; a few minutes) …")
    if not venv_python(venv).exists():
        try:
            venv.parent.mkdir(parents=True, exist_ok=True)
            made = subprocess.run([sys.executable, "-m", "venv", str(venv)], check=False)
            created = made.returncode == 0
        except OSError as exc:
            console.print(f"[red]{exc}[/red]")
            created = False
        if not created:
            console.print(f"[red]python -m venv {venv} failed: running the Shipyard side only.")
            return None
    base = [f"evidently=={EVIDENTLY_VERSION}", "pandas<3", "pyarrow"]
    # The project's NumPy and SciPy, so both sides compute the same floating-point sums.
    same_maths = [f"numpy=={np.__version__}", f"scipy=={scipy.__version__}"]
    for packages in ([*base, *same_maths], base):
        if _pip_install(venv, packages):
            versions = evidently_ready(venv)
            if versions:
                return versions
        console.print(f"[yellow]pip install {' '.join(packages)} did not give a usable Evidently.")
    console.print(
        f"[red]Could not install Evidently {EVIDENTLY_VERSION} into {venv}; "
        "running the Shipyard side only.[/red]"
    )
    return None


def _pip_install(venv: Path, packages: list[str]) -> bool:
    command = [str(venv_python(venv)), "-m", "pip", "install", "--progress-bar", "off", *packages]
    console.print("$ " + " ".join(command), markup=False, highlight=False)
    lines: list[str] = []
    with console.status("pip install …") as status:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            status.update(f"pip: {line.strip()[:100]}")
        process.wait()
    if process.returncode != 0:
        console.print("\n".join(lines[-15:]), markup=False, highlight=False)
    return process.returncode == 0


# --- comparison and tables ---------------------------------------------------------------


@dataclass(frozen=True)
class Parity:
    """Per-column agreement of the two sides."""

    columns: int
    same_method: int
    same_verdict: int
    same_score: int
    max_relative: float
    mismatches: tuple[str, ...]

    @property
    def identical(self) -> bool:
        """Methods and verdicts identical and scores within tolerance on every column."""
        return not self.mismatches


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> Parity:
    """Compare the per-column method, verdict and score of the two sides."""
    names = sorted(set(ours["columns"]) | set(theirs["columns"]))
    mismatches: list[str] = []
    same_method = same_verdict = same_score = 0
    max_relative = 0.0
    for name in names:
        if name not in ours["columns"] or name not in theirs["columns"]:
            mismatches.append(f"{name}: only one side tested it")
            continue
        method, score, drifted = ours["columns"][name]
        their_method, their_score, their_drifted = theirs["columns"][name]
        same_method += method == their_method
        same_verdict += drifted == their_drifted
        relative = _relative(score, their_score)
        max_relative = max(max_relative, relative)
        close = relative <= RELATIVE_TOLERANCE
        same_score += close
        if method != their_method or drifted != their_drifted or not close:
            mismatches.append(
                f"{name}: Shipyard {method} {score} drift={drifted}, "
                f"Evidently {their_method} {their_score} drift={their_drifted}"
            )
    if ours["drifted"] != theirs["drifted"]:
        mismatches.append(
            f"dataset drift: Shipyard {ours['drifted']}, Evidently {theirs['drifted']}"
        )
    return Parity(
        len(names), same_method, same_verdict, same_score, max_relative, tuple(mismatches)
    )


def _relative(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else math.inf
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def speed_verdict(shipyard_s: float, evidently_s: float) -> str:
    """Whether Shipyard is at least ``SPEED_FLOOR`` times faster, and by how much it misses."""
    ratio = evidently_s / shipyard_s
    if ratio >= SPEED_FLOOR:
        return f"[green]met[/green] (≥ {SPEED_FLOOR:g}×)"
    budget = evidently_s / SPEED_FLOOR
    return f"[red]missed[/red]: {shipyard_s - budget:.2f} s over the {budget:.2f} s allowed"


def memory_verdict(shipyard_mib: float, evidently_mib: float) -> str:
    """Whether Shipyard's peak is at most 1/``MEMORY_FLOOR`` of Evidently's, or by how much not."""
    budget = evidently_mib / MEMORY_FLOOR
    if shipyard_mib <= budget:
        return f"[green]met[/green] (≤ 1/{MEMORY_FLOOR:g})"
    return f"[red]missed[/red]: {shipyard_mib - budget:,.0f} MiB over the {budget:,.0f} allowed"


def comparison_table(shipyard: SideResult, evidently: SideResult | None, title: str) -> Table:
    """Wall time and peak RSS of each side, and the ratios against the floors."""
    table = Table(title=title)
    for heading in ("", "Shipyard", "Evidently", "ratio", "floor"):
        table.add_column(heading, justify="left" if heading in ("", "floor") else "right")
    sides = (shipyard, evidently)

    def row(label: str, measure: Callable[[SideResult], float | None], style: str) -> None:
        values = [None if side is None else measure(side) for side in sides]
        cells = ["" if value is None else format(value, style) for value in values]
        table.add_row(label, *cells, "", "")

    def ratio_row(label: str, measure: Callable[[SideResult], float], speed: bool) -> None:
        ours = measure(shipyard)
        if evidently is None:
            table.add_row(label, format(ours, ".2f" if speed else ",.0f"), "", "", "")
            return
        theirs = measure(evidently)
        ratio = theirs / ours
        shown = f"{ratio:.1f}× faster" if speed else f"1/{ratio:.2f}"
        verdict = speed_verdict(ours, theirs) if speed else memory_verdict(ours, theirs)
        style = ".2f" if speed else ",.0f"
        table.add_row(label, format(ours, style), format(theirs, style), shown, verdict)

    def seconds(key: str) -> Callable[[SideResult], float | None]:
        return lambda side: side.data["seconds"].get(key)

    ratio_row("compute s (fit+score | run+results)", lambda side: side.compute_s, True)
    ratio_row("  the same in CPU s (user + system)", lambda side: side.compute_cpu_s, True)
    row("  Shipyard fit", seconds("fit"), ".2f")
    row("  Shipyard score", seconds("score"), ".2f")
    row("  Shipyard store + load reference", _store_load_seconds, ".2f")
    row("  Evidently Report.run", seconds("run"), ".2f")
    row("  Evidently snapshot.dict()", seconds("results"), ".2f")
    row("read both Parquet files s", _read_seconds, ".2f")
    row("process s (start, import, read, compute)", lambda side: side.process_s, ".2f")
    ratio_row("peak RSS MiB (VmHWM)", lambda side: side.peak_mib, False)
    row("  RSS after imports MiB", lambda side: side.data["rss_mib"]["after import"], ",.0f")
    return table


def _store_load_seconds(side: SideResult) -> float | None:
    seconds = side.data["seconds"]
    if "store" not in seconds:
        return None
    return float(seconds["store"] + seconds.get("load", 0.0))


def _read_seconds(side: SideResult) -> float:
    seconds = side.data["seconds"]
    return float(seconds["read reference"] + seconds["read current"])


def _print_phases(side: SideResult) -> None:
    phases = ", ".join(f"{name} {mib:,.0f}" for name, mib in side.data["rss_mib"].items())
    console.print(f"{side.data['tool']} RSS (MiB) {phases}")


def parity_table(ours: dict[str, Any], theirs: dict[str, Any], specs: list[ColumnSpec]) -> Table:
    """Per column: method, score and verdict of each side."""
    table = Table(title="Per column (auto mode)")
    for heading in ("column", "shifted", "method", "Shipyard", "Evidently", "rel. diff", "drift"):
        table.add_column(
            heading, justify="right" if heading in ("Shipyard", "Evidently") else "left"
        )
    for spec in specs:
        mine = ours["columns"].get(spec.name)
        other = theirs["columns"].get(spec.name)
        if mine is None or other is None:
            table.add_row(spec.name, str(spec.shifted), "-", str(mine), str(other), "", "")
            continue
        method = mine[0] if mine[0] == other[0] else f"[red]{mine[0]} ≠ {other[0]}"
        verdict = str(mine[2]) if mine[2] == other[2] else f"[red]{mine[2]} ≠ {other[2]}"
        table.add_row(
            spec.name,
            "yes" if spec.shifted else "",
            method,
            f"{mine[1]:.10g}",
            f"{other[1]:.10g}",
            f"{_relative(mine[1], other[1]):.1e}",
            verdict,
        )
    return table


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        SpinnerColumn(),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    """A fresh temporary directory (removed afterwards), or ``keep`` when given."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    directory = Path(tempfile.mkdtemp(prefix="shipyard-drift-bench-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def compare_tools(args: argparse.Namespace) -> int:
    """Both tools on the same Parquet files; exit 1 when parity fails."""
    versions = None if args.no_evidently else ensure_evidently(args.evidently_venv)
    rows, current_rows = args.rows, args.current_rows or args.rows
    title = (
        f"Drift, auto mode: {rows:,} reference / {current_rows:,} current rows, "
        f"{args.numeric} numeric + {args.categorical} categorical columns"
    )
    with _workdir(args.data_dir) as directory:
        specs = write_data(directory, rows, current_rows, args.numeric, args.categorical, args.seed)
        with _progress() as progress:
            shipyard = run_side(
                "Shipyard",
                side_command(sys.executable, "shipyard", directory, args),
                directory / "shipyard.json",
                progress,
                env=_project_env(),
            )
            evidently = None
            if versions:
                python = venv_python(args.evidently_venv)
                command = side_command(python, "evidently", directory, args)
                evidently = run_side(
                    f"Evidently {EVIDENTLY_VERSION}",
                    command,
                    directory / "evidently.json",
                    progress,
                )
        if shipyard is None:
            return 1
        parity = None
        if evidently is not None:
            console.print(parity_table(shipyard.data, evidently.data, specs))
            parity = compare(shipyard.data, evidently.data)
        console.print(comparison_table(shipyard, evidently, title))
        _print_versions(shipyard, evidently)
        if parity is not None:
            _print_parity(parity, shipyard.data, evidently.data if evidently else {})
        if args.json:
            _write_json(args.json, args, shipyard, evidently, parity)
        return 0 if parity is None or parity.identical else 1


def _print_versions(shipyard: SideResult, evidently: SideResult | None) -> None:
    for side in (shipyard, evidently):
        if side is not None:
            _print_phases(side)
            packages = ", ".join(f"{k} {v}" for k, v in side.data["versions"].items())
            console.print(f"{side.data['tool']}: {packages}")


def _print_parity(parity: Parity, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    console.print(
        f"Parity on {parity.columns} columns: method {parity.same_method}, verdict "
        f"{parity.same_verdict}, score within {RELATIVE_TOLERANCE:g} relative "
        f"{parity.same_score} (largest relative difference {parity.max_relative:.1e}). "
        f"Dataset drift: Shipyard {ours['drifted']} (share {ours['share']:.3f}), "
        f"Evidently {theirs['drifted']} (share {theirs['share']:.3f})."
    )
    if parity.identical:
        console.print("[green]Per-column methods, verdicts and scores identical.[/green]")
    for line in parity.mismatches:
        console.print(f"[red]{line}[/red]", highlight=False)


def _write_json(
    path: Path,
    args: argparse.Namespace,
    shipyard: SideResult,
    evidently: SideResult | None,
    parity: Parity | None,
) -> None:
    record = {
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "load_average": os.getloadavg(),
        "shipyard": {
            **shipyard.data,
            "peak_mib": shipyard.peak_mib,
            "compute_s": shipyard.compute_s,
            "compute_cpu_s": shipyard.compute_cpu_s,
        },
        "evidently": None
        if evidently is None
        else {
            **evidently.data,
            "peak_mib": evidently.peak_mib,
            "compute_s": evidently.compute_s,
            "compute_cpu_s": evidently.compute_cpu_s,
        },
        "parity": None if parity is None else parity.__dict__,
    }
    path.write_text(json.dumps(record, indent=2, default=str))


SCALING_ROWS = (100_000, 1_000_000, 10_000_000)
SCALING_COLUMNS = (10, 100, 500)


def scaling(args: argparse.Namespace) -> int:
    """Shipyard alone: rows 100k → 10M at the default columns, columns 10 → 500 at fixed rows."""
    shape = args.numeric + args.categorical
    cases = [(rows, args.numeric, args.categorical) for rows in SCALING_ROWS]
    for columns in SCALING_COLUMNS:  # the same numeric : categorical mix
        numeric = round(columns * args.numeric / shape)
        cases.append((args.scaling_rows, numeric, columns - numeric))
    table = Table(title="Shipyard auto mode: scaling (one process per case)")
    headings = ("rows", "columns", "fit s", "score s", "fit+score s", "ns / row·column")
    memory = ("peak RSS MiB", "peak − imports MiB", "bytes / row·column")
    for heading in (*headings, *memory, "load avg"):
        table.add_column(heading, justify="right")
    records = []
    for rows, numeric, categorical in cases:
        console.print(f"[bold]{rows:,} rows × {numeric + categorical} columns[/bold]")
        with _workdir(None) as directory:
            write_data(directory, rows, rows, numeric, categorical, args.seed)
            with _progress() as progress:
                out = directory / "shipyard.json"
                side = run_side(
                    "Shipyard",
                    side_command(sys.executable, "shipyard", directory, args),
                    out,
                    progress,
                    env=_project_env(),
                )
        if side is None:
            return 1
        cells = rows * (numeric + categorical)
        seconds = side.data["seconds"]
        # What the data and the drift computation add to the interpreter and its libraries.
        data_mib = side.peak_mib - side.data["rss_mib"]["after import"]
        load = os.getloadavg()[0]
        records.append(
            {
                "rows": rows,
                "columns": numeric + categorical,
                "seconds": seconds,
                "peak_mib": side.peak_mib,
                "rss_mib": side.data["rss_mib"],
                "load_average_1min": load,
            }
        )
        table.add_row(
            f"{rows:,}",
            str(numeric + categorical),
            f"{seconds['fit']:.2f}",
            f"{seconds['score']:.2f}",
            f"{side.compute_s:.2f}",
            f"{side.compute_s / cells * 1e9:.1f}",
            f"{side.peak_mib:,.0f}",
            f"{data_mib:,.0f}",
            f"{data_mib * 2**20 / cells:.1f}",
            f"{load:.2f}",
        )
    console.print(table)
    if args.json:
        args.json.write_text(
            json.dumps({"arguments": {k: str(v) for k, v in vars(args).items()}, "cases": records})
        )
    return 0


def _verdicts(side: SideResult, single: SideResult | None) -> tuple[str, float | None]:
    """Whether ``side``'s methods and verdicts equal the one-pass side's, and the largest
    relative score difference."""
    if single is None:
        return "—", None
    ours, theirs = side.data, single.data
    differ = [
        name
        for name in sorted(set(ours["columns"]) | set(theirs["columns"]))
        if name not in ours["columns"]
        or name not in theirs["columns"]
        or ours["columns"][name][0] != theirs["columns"][name][0]
        or ours["columns"][name][2] != theirs["columns"][name][2]
    ]
    if ours["drifted"] != theirs["drifted"]:
        differ.append("dataset drift")
    shared = set(ours["columns"]) & set(theirs["columns"])
    largest = max(
        (_relative(ours["columns"][n][1], theirs["columns"][n][1]) for n in shared), default=0.0
    )
    return ("same" if not differ else f"[red]differ: {', '.join(differ)}[/red]"), largest


def engine_scaling(args: argparse.Namespace) -> int:
    """Chunked (and Spark) drift on growing windows: time per row·column, peak memory, verdicts.

    One reference of ``--rows`` rows; for each ``--window-rows`` size a fresh current
    window is written, scored by the chunked engine, by Spark (up to
    ``--spark-max-rows``) and by the one-pass ``detector.score`` on a column-at-a-time
    reader (up to ``--single-max-rows``, for the verdicts); the files are deleted after
    each size. The reference is read a column at a time (``--reader stream``).
    """
    args.reader = "stream"
    columns = args.numeric + args.categorical
    windows = [int(size) for size in str(args.window_rows).split(",") if size.strip()]
    table = Table(
        title=f"Drift engines, auto mode: {args.rows:,}-row reference, {args.numeric} numeric + "
        f"{args.categorical} categorical columns, chunks of {args.batch_rows:,} rows"
    )
    headings = (
        "window rows",
        "engine",
        "score s",
        "ns / row·column",
        "CPU s",
        "CPU ns / row·column",
        "peak RSS MiB",
    )
    for heading in (*headings, "with children MiB", "verdicts vs one pass", "max rel. diff"):
        table.add_column(heading, justify="right")
    table.add_column("load avg", justify="right")
    records: list[dict[str, Any]] = []
    for window in windows:
        console.print(f"[bold]{window:,}-row window × {columns} columns[/bold]")
        engines = ["chunked"]
        if args.spark_max_rows and window <= args.spark_max_rows:
            engines.append("spark")
        if window <= args.single_max_rows:
            engines.append("single")
        with _workdir(None) as directory:
            write_data(directory, args.rows, window, args.numeric, args.categorical, args.seed)
            console.print(f"data on disk: {_du_mib(directory):,.0f} MiB")
            sides: dict[str, SideResult] = {}
            with _progress() as progress:
                for engine in engines:
                    side_args = argparse.Namespace(**vars(args), side_engine=engine)
                    out = directory / f"shipyard-{engine}.json"
                    command = side_command(sys.executable, "shipyard", directory, side_args)
                    command[command.index("--out") + 1] = str(out)
                    side = run_side(f"Shipyard {engine}", command, out, progress, _project_env())
                    if side is None:
                        return 1
                    sides[engine] = side
        single = sides.get("single")
        for engine, side in sides.items():
            score_s = float(side.data["seconds"]["score"])
            cpu_s = float(side.data.get("cpu_seconds", {}).get("score", math.nan))
            verdicts, largest = _verdicts(side, single) if engine != "single" else ("—", None)
            load = os.getloadavg()[0]
            table.add_row(
                f"{window:,}",
                engine,
                f"{score_s:.2f}",
                f"{score_s / (window * columns) * 1e9:.1f}",
                f"{cpu_s:.2f}",
                f"{cpu_s / (window * columns) * 1e9:.1f}",
                f"{side.peak_mib:,.0f}",
                f"{side.tree_peak_mib:,.0f}",
                verdicts,
                "" if largest is None else f"{largest:.1e}",
                f"{load:.2f}",
            )
            records.append(
                {
                    "window_rows": window,
                    "reference_rows": args.rows,
                    "columns": columns,
                    "engine": engine,
                    "seconds": side.data["seconds"],
                    "ns_per_row_column": score_s / (window * columns) * 1e9,
                    "cpu_seconds": side.data.get("cpu_seconds", {}),
                    "cpu_ns_per_row_column": cpu_s / (window * columns) * 1e9,
                    "peak_mib": side.peak_mib,
                    "tree_peak_mib": side.tree_peak_mib,
                    "rss_mib": side.data["rss_mib"],
                    "verdicts_vs_single": verdicts,
                    "max_relative_score_difference": largest,
                    "approximate_columns": side.data.get("approximate", []),
                    "columns_result": side.data["columns"],
                    "drifted": side.data["drifted"],
                    "share": side.data["share"],
                    "load_average_1min": load,
                }
            )
        console.print(table)
    if args.json:
        arguments = {k: str(v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"arguments": arguments, "cases": records}, indent=2))
    return 0


def _du_mib(directory: Path) -> float:
    return sum(path.stat().st_size for path in directory.glob("*.parquet")) / 2**20


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the comparison, the scaling table, or one side."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="reference rows")
    parser.add_argument("--current-rows", type=int, default=None, help="default: --rows")
    parser.add_argument("--numeric", type=int, default=20, help="numeric columns")
    parser.add_argument("--categorical", type=int, default=5, help="categorical columns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scaling", action="store_true", help="Shipyard's scaling table")
    parser.add_argument(
        "--scaling-rows", type=int, default=100_000, help="rows of the 10 → 500 column cases"
    )
    parser.add_argument("--no-evidently", action="store_true", help="run the Shipyard side only")
    parser.add_argument("--evidently-venv", type=Path, default=default_venv())
    parser.add_argument(
        "--keep-reference",
        action="store_true",
        help="Shipyard keeps the reference frame while scoring (as Evidently must)",
    )
    parser.add_argument(
        "--reader",
        choices=READERS,
        default="pandas",
        help="how the sides read Parquet: pd.read_parquet; PyArrow freeing as it converts; or "
        "stream (Shipyard a column at a time, Evidently with pandas)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="single",
        help="how Shipyard scores the current window: one pass (detector.score), chunked "
        "summaries merged (shipyard.monitoring.chunks), or the same summaries on local Spark",
    )
    parser.add_argument(
        "--batch-rows", type=int, default=_CHUNK_ROWS, help="rows per chunk (chunked engine)"
    )
    parser.add_argument("--spark-cores", type=int, default=1, help="local[N] for --engine spark")
    parser.add_argument(
        "--reference-flow",
        choices=("held", "stored"),
        default="held",
        help="held: Shipyard keeps the fitted detector while it reads the current window; "
        "stored: it saves the fitted reference, reads the window, loads it and scores "
        "(production's shape: fitted at training time, loaded by the monitoring job)",
    )
    parser.add_argument(
        "--engine-scaling",
        action="store_true",
        help="chunked (and spark) engine: --rows reference rows, current windows of "
        "--window-rows rows, peak memory, ns per row·column, verdicts against one pass",
    )
    parser.add_argument(
        "--window-rows",
        default="1000000,10000000,100000000",
        help="current-window sizes of --engine-scaling, comma-separated",
    )
    parser.add_argument(
        "--single-max-rows",
        type=int,
        default=10_000_000,
        help="--engine-scaling runs the one-pass side for verdicts up to this many rows",
    )
    parser.add_argument(
        "--spark-max-rows",
        type=int,
        default=10_000_000,
        help="--engine-scaling runs the spark side up to this many rows (0: never)",
    )
    parser.add_argument("--data-dir", type=Path, help="write (and keep) the Parquet files here")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--side", choices=("shipyard", "evidently"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side == "shipyard":
        run_shipyard_side(
            args.data,
            args.out,
            args.reader,
            args.keep_reference,
            args.engine,
            args.batch_rows,
            args.spark_cores,
            args.reference_flow,
        )
        return 0
    if args.side == "evidently":
        run_evidently_side(args.data, args.out, args.reader)
        return 0
    if args.engine_scaling:
        return engine_scaling(args)
    return scaling(args) if args.scaling else compare_tools(args)


if __name__ == "__main__":
    sys.exit(main())
