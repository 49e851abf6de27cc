"""Real servers on 127.0.0.1, for the tests where the wire matters.

``serve_in_thread`` runs an ASGI app under uvicorn in this process; ``ServeProcess``
runs ``shipyard serve`` as a user does, in its own processes (workers, signals). Both
listen on a free port and are ready when the block starts. ``call`` is one HTTP
request with the standard library. Tests that only need the API use
:func:`tests.support.in_process` instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from tests.support.waiting import PATIENCE, wait_for

__all__ = [
    "CliProcess",
    "ServeProcess",
    "UiProcess",
    "call",
    "free_port",
    "serve_in_thread",
    "server_environment",
]

HOST = "127.0.0.1"
# Each worker imports MLflow and loads its model: about 5 s on an idle laptop, and over
# 30 s on two cores under `stress --cpu 4`.
STARTUP = 240.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def call(
    url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request (POST with a body, else GET): status, lower-cased headers, body."""
    request = urllib.request.Request(
        url, data=body, headers=dict(headers or {}), method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()


def _lower(items: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


@contextmanager
def serve_in_thread(app: Any, *, lifespan: bool = False) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port until the block ends; yields its base URL.

    With ``lifespan`` the app's startup and shutdown run (the LLM gateway drains its
    traces and closes its clients at shutdown).
    """
    import uvicorn

    config = uvicorn.Config(
        app, host=HOST, port=0, log_level="warning", lifespan="on" if lifespan else "off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive() or server.started, "uvicorn stopped before it started"
        return bool(server.started)

    wait_for(started, what="uvicorn to listen")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(PATIENCE)


def server_environment(**settings: str) -> dict[str, str]:
    """This process's environment without the developer's SHIPYARD_* settings, plus ``settings``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    environ |= {"LOGNAME": "tester", "MLFLOW_DISABLE_TELEMETRY": "true"}
    credentials = os.environ.get("SHIPYARD_SECURITY__CREDENTIALS")  # the test's own file
    if credentials:
        environ["SHIPYARD_SECURITY__CREDENTIALS"] = credentials
    return environ | settings


class CliProcess:
    """A ``shipyard`` command in its own process, until it is stopped.

    The output is read all along (so the process never blocks on a full pipe) and kept
    in :attr:`output`. Entering waits until :meth:`ready` says so, and fails at once,
    with the output, if the process exits instead. Subclasses say what ready means.
    """

    name = "the process"

    def __init__(self, command: Sequence[str], environ: Mapping[str, str] | None) -> None:
        self.command = list(command)
        self.environ = dict(environ if environ is not None else server_environment())
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.process = subprocess.Popen(
            self.command,
            env=self.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="cli-output", daemon=True)
        self._reader.start()
        try:
            wait_for(self._started, what=self.waiting_for(), timeout=STARTUP)
        except AssertionError as failed:
            self.stop()
            raise AssertionError(f"{failed}\n{self.name} said:\n{self.text}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def text(self) -> str:
        """Everything the process printed so far."""
        return "".join(self.output)

    def waiting_for(self) -> str:
        """What entering waits for, as a timeout names it."""
        return " ".join(self.command)

    def ready(self) -> bool:
        """Whether the process is ready for the test."""
        raise NotImplementedError

    def saw(self, line: str) -> None:
        """One line of output (kept in :attr:`output` already)."""

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.saw(line)

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with status {self.process.returncode}")
        return self.ready()

    def stop(self) -> int:
        """SIGTERM, as a supervisor stops it; waits for the exit and the last output."""
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(PATIENCE)
        return process.returncode


class ServeProcess(CliProcess):
    """``shipyard --config FILE serve MODEL`` in its own processes, on a free port.

    Entering waits until ``workers`` workers said they are ready.
    """

    name = "The server"

    def __init__(
        self,
        config_file: Path,
        model: str,
        *,
        workers: int = 1,
        args: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.workers = workers
        self._ready: set[str] = set()
        shipyard = str(Path(sys.executable).parent / "shipyard")
        super().__init__(
            [
                *(shipyard, "--config", str(config_file), "serve", model),
                *("--port", str(self.port), *args),
            ],
            environ,
        )

    def waiting_for(self) -> str:
        return f"{self.workers} worker(s) of {' '.join(self.command)}"

    def saw(self, line: str) -> None:
        if line.startswith("worker ") and " ready in " in line:
            self._ready.add(line.split(":")[0])
        elif line.startswith("Serving ") and " ready in " in line:  # one worker
            self._ready.add("main")

    def ready(self) -> bool:
        return len(self._ready) >= self.workers


class UiProcess(CliProcess):
    """``shipyard --config FILE ui --port N`` in its own process, ready when /healthz is."""

    name = "The dashboard"

    def __init__(self, config_file: Path, environ: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        shipyard = str(Path(sys.executable).parent / "shipyard")
        super().__init__(
            [shipyard, "--config", str(config_file), "ui", "--port", str(self.port)], environ
        )

    def waiting_for(self) -> str:
        return f"{' '.join(self.command)} to answer /healthz"

    def ready(self) -> bool:
        try:
            return call(f"{self.url}/healthz")[0] == 200
        except OSError:
            return False
