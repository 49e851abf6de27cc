"""``shipyard serve …`` as a demo's child process, on a free port of 127.0.0.1.

Both demos use it: the classical one serves ``loans`` with its workers and the agent,
the LLM one serves ``assistant`` on the OpenAI-compatible gateway.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from shipyard.errors import DemoFailed

__all__ = ["DemoServer", "free_port"]

READY_SECONDS = 90


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DemoServer:
    """``shipyard serve ARGS --port P`` in ``folder``, its output in ``log``."""

    def __init__(self, folder: Path, args: Sequence[str], log: Path, what: str) -> None:
        self.folder = folder
        self.args = list(args)
        self.log = log
        self.what = what  # "server", "gateway": how failures name it
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until its readiness route answers 200."""
        command = [sys.executable, "-m", "shipyard", "serve", *self.args, "--port", str(self.port)]
        with self.log.open("wb") as handle:  # the child writes to its own copy of the fd
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoFailed(
                    f"The {self.what} stopped during start-up.",
                    hint=f"Its output is in {self.log}.",
                )
            if _ready(f"{self.url}/v2/health/ready"):
                return
            time.sleep(0.2)
        raise DemoFailed(
            f"The {self.what} was not ready within {READY_SECONDS} s.", hint=f"See {self.log}."
        )

    def stop(self) -> None:
        """Stop it as Ctrl-C does (in-flight work finishes, logs flush); kill it after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
