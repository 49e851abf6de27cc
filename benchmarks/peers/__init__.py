"""Peer servers for ``benchmarks/serving.py``: their venvs, how to start them, what to send.

Each peer runs from a venv of its own under ``~/.cache/shipyard-bench/<venv>`` (or
``$SHIPYARD_BENCH_CACHE``), created here with ``python3 -m venv`` and filled from PyPI with
the same scikit-learn as the project's, so the model pickle loads unchanged and the
project's own dependencies stay clean. A venv is reused while its requirements are the
same. Every peer serves the same joblib file of the estimator Shipyard serves, one process
(one worker) each, and answers ``predict_proba`` for single-row requests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("SHIPYARD_BENCH_CACHE", "~/.cache/shipyard-bench")).expanduser()
INSTALL_TIMEOUT = 1800.0


class PeerUnavailable(RuntimeError):
    """A peer that could not be installed; the message says why (shown in the table)."""


@dataclass(frozen=True)
class Venv:
    """One peer's virtual environment and what goes in it (besides scikit-learn, joblib)."""

    name: str
    requirements: tuple[str, ...]


VENVS = {
    "floor": Venv("floor", ("uvicorn", "httptools", "uvloop", "orjson")),
    "kserve": Venv("kserve", ("kserve==0.21.*",)),
    "mlserver": Venv("mlserver", ("mlserver==1.7.*", "mlserver-sklearn==1.7.*")),
    "litserve": Venv("litserve", ("litserve",)),
    "bentoml": Venv("bentoml", ("bentoml==1.4.*",)),
}


def ensure_venv(venv: Venv, sklearn_version: str, say: Callable[[str], None]) -> Path:
    """The venv's python, creating or refreshing the venv first when needed."""
    folder = CACHE / venv.name
    python = folder / "bin" / "python"
    wanted = [*venv.requirements, f"scikit-learn=={sklearn_version}", "joblib"]
    marker = folder / "shipyard-bench-requirements.txt"
    if python.exists() and marker.exists() and marker.read_text().split() == wanted:
        return python
    say(f"  installing {venv.name} into {folder}: {' '.join(wanted)}")
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / f"{venv.name}.pip.log"
    base = shutil.which("python3") or "python3"
    steps = [
        [base, "-m", "venv", "--clear", str(folder)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted],
    ]
    with log.open("wb") as out:
        for step in steps:
            try:
                done = subprocess.run(
                    step, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise PeerUnavailable(f"install failed: {exc}") from None
            if done.returncode != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise PeerUnavailable(f"install failed ({log}): {tail[0][:120]}")
    marker.write_text("\n".join(wanted) + "\n")
    return python


@dataclass(frozen=True)
class Endpoint:
    """One measured route of a peer server."""

    key: str
    label: str
    path: str
    body: str
    batched: bool = False


@dataclass
class Launch:
    """How to start one peer server and what to measure on it."""

    command: list[str]
    env: dict[str, str]
    cwd: Path
    ready_path: str
    endpoints: list[Endpoint] = field(default_factory=list)


def v1_body(row: list[float]) -> str:
    """``{"instances": [[...]]}``: the V1 body every V1-style server is sent."""
    return json.dumps({"instances": [row]}, separators=(",", ":"))


def v2_body(row: list[float], outputs: list[str] | None = None) -> str:
    """One FP64 tensor of shape [1, 30] (and, for MLServer, the output it should return)."""
    body: dict[str, object] = {
        "inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}]
    }
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return json.dumps(body, separators=(",", ":"))


# server key -> (venv, label); the order is the table's.
SERVERS = {
    "floor": ("floor", "raw ASGI floor"),
    "kserve": ("kserve", "KServe 0.21"),
    "mlserver": ("mlserver", "MLServer 1.7"),
    "mlserver-batch": ("mlserver", "MLServer 1.7, adaptive batching"),
    "litserve": ("litserve", "LitServe"),
    "litserve-batch": ("litserve", "LitServe, batching"),
    "bentoml": ("bentoml", "BentoML 1.4"),
}
ENDPOINTS = {"kserve": 2, "bentoml": 2}  # measured routes per server, where not 1
# --peers NAME -> the server keys it starts
CHOICES = {
    "floor": ["floor"],
    "kserve": ["kserve"],
    "mlserver": ["mlserver", "mlserver-batch"],
    "litserve": ["litserve", "litserve-batch"],
    "bentoml": ["bentoml"],
}


def launch(
    key: str,
    python: Path,
    *,
    model_file: Path,
    model_name: str,
    port: int,
    free_port: Callable[[], int],
    workdir: Path,
    row: list[float],
    batch: int,
    batch_wait_ms: float,
) -> Launch:
    """The command, environment and endpoints of peer server ``key`` on ``port``."""
    label = SERVERS[key][1]
    env = {
        "SHIPYARD_BENCH_MODEL": str(model_file),
        "SHIPYARD_BENCH_PORT": str(port),
        "SHIPYARD_BENCH_BATCH": str(batch),
        "SHIPYARD_BENCH_BATCH_WAIT_MS": f"{batch_wait_ms:g}",
        "PYTHONWARNINGS": "ignore::UserWarning",
    }
    if key == "floor":
        return Launch(
            [str(python), str(HERE / "floor_app.py")],
            env,
            HERE,
            "/health",
            [Endpoint(key, label, "/predict", v1_body(row))],
        )
    if key == "kserve":
        return Launch(
            [
                str(python),
                str(HERE / "kserve_app.py"),
                "--enable_latency_logging",
                "false",
                "--configure_logging",
                "false",
            ],
            env,
            HERE,
            f"/v1/models/{model_name}",
            [
                Endpoint(
                    "kserve-v1", f"{label} V1", f"/v1/models/{model_name}:predict", v1_body(row)
                ),
                Endpoint(
                    "kserve-v2", f"{label} V2 JSON", f"/v2/models/{model_name}/infer", v2_body(row)
                ),
            ],
        )
    if key in ("mlserver", "mlserver-batch"):
        folder = workdir / key
        (folder / model_name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_file, folder / model_name / "model.joblib")
        settings = {
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": 0,  # inference in the server's own process
            "debug": False,
            "host": "127.0.0.1",
        }
        model: dict[str, object] = {
            "name": model_name,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib"},
        }
        batched = key == "mlserver-batch"
        if batched:
            model.update(max_batch_size=batch, max_batch_time=batch_wait_ms / 1000)
        (folder / "settings.json").write_text(json.dumps(settings))
        (folder / model_name / "model-settings.json").write_text(json.dumps(model))
        return Launch(
            [str(python.parent / "mlserver"), "start", str(folder)],
            env,
            folder,
            f"/v2/models/{model_name}/ready",
            [
                Endpoint(
                    key,
                    f"{label} V2 JSON",
                    f"/v2/models/{model_name}/infer",
                    v2_body(row, ["predict_proba"]),
                    batched,
                )
            ],
        )
    if key in ("litserve", "litserve-batch"):
        batched = key == "litserve-batch"
        env["SHIPYARD_BENCH_BATCH"] = str(batch if batched else 1)
        return Launch(
            [str(python), str(HERE / "litserve_app.py")],
            env,
            HERE,
            "/health",
            [Endpoint(key, label, "/predict", v1_body(row), batched)],
        )
    if key == "bentoml":
        body = json.dumps({"input": [row]}, separators=(",", ":"))
        return Launch(
            [
                str(python.parent / "bentoml"),
                "serve",
                "bentoml_service:GBM",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            {**env, "BENTOML_DO_NOT_TRACK": "true"},
            HERE,
            "/readyz",
            [
                Endpoint("bentoml", label, "/predict", body),
                Endpoint(
                    "bentoml-batch", f"{label}, adaptive batching", "/predict_batched", body, True
                ),
            ],
        )
    raise KeyError(f"no peer server called {key!r}")
