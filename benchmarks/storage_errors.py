"""How long a bucket that cannot be used takes to say so, against the 5 s target.

    python benchmarks/storage_errors.py              # storage.timeout_seconds 4 (default)
    python benchmarks/storage_errors.py --timeout 2

Each case calls ``Location.check()`` (write + delete a probe object) and times the
:class:`~shipyard.errors.StorageError`:

- ``closed port``: nothing listens on the endpoint (connection refused);
- ``silent endpoint``: a socket that accepts connections and never answers (the worst
  case: the connect succeeds, so only the read timeout and the overall deadline stop it);
- ``missing bucket``, ``no credentials``, ``denied PutObject``, ``unknown key``: moto's
  S3 server on 127.0.0.1 (a stand-in for AWS speaking the S3 REST API), checking IAM
  policies for the last two.

For contrast, ``boto3 default, closed port`` is a plain boto3 client with botocore's
default retries (legacy mode: 5 attempts with backoff) putting an object to the closed
port: the retry storm Shipyard's settings avoid. Exits 1 when a Shipyard case misses
the target (5 s or the timeout given, whichever is larger).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shipyard.config import StorageSettings
from shipyard.errors import StorageError
from shipyard.storage import location
from tests.support.s3 import moto_server


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """An HTTP endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in held:
            conn.close()


def closed_port() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


def timed(action: Callable[[], object]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        action()
    except Exception as exc:  # the error is the result
        return time.perf_counter() - started, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return time.perf_counter() - started, "no error"


def check(url: str, endpoint: str, timeout: float) -> Callable[[], object]:
    settings = StorageSettings(endpoint_url=endpoint, timeout_seconds=timeout)  # type: ignore[call-arg]
    return location(url, base=Path("/"), settings=settings).check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=4.0, help="storage.timeout_seconds")
    args = parser.parse_args()
    target = max(5.0, args.timeout)
    results: list[tuple[str, float, str, bool]] = []

    def run(name: str, action: Callable[[], object], *, ours: bool = True) -> None:
        seconds, outcome = timed(action)
        results.append((name, seconds, outcome, ours))

    with moto_server() as s3:
        os.environ.update(s3.environment())
        bucket = s3.bucket("bench")
        run("closed port", check(f"{bucket}/p", closed_port(), args.timeout))
        with silent_endpoint() as endpoint:
            run("silent endpoint", check(f"{bucket}/p", endpoint, args.timeout))
        run("missing bucket", check("s3://no-such-bucket-x/p", s3.endpoint_url, args.timeout))
        saved = {k: os.environ.pop(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        run("no credentials", check(f"{bucket}/p", s3.endpoint_url, args.timeout))
        os.environ.update(saved)
        with s3.checking_credentials(deny=("s3:PutObject",)) as reader:
            os.environ.update(reader)
            run("denied PutObject", check(f"{bucket}/p", s3.endpoint_url, args.timeout))
            os.environ["AWS_ACCESS_KEY_ID"] = "AKIAUNKNOWNUNKNOWN00"
            run("unknown key", check(f"{bucket}/p", s3.endpoint_url, args.timeout))
        os.environ.update(saved)

        import boto3

        plain = boto3.client("s3", endpoint_url=closed_port())
        run(
            "boto3 default, closed port",
            lambda: plain.put_object(Bucket="b-bench", Key="k", Body=b"x"),
            ours=False,
        )

    print(f"{'case':<28} {'seconds':>8}  error")
    failed = False
    for name, seconds, outcome, ours in results:
        miss = ours and (seconds > target or not outcome.startswith(StorageError.__name__))
        failed |= miss
        print(f"{name:<28} {seconds:8.2f}  {outcome[:110]}{'  <-- MISSED' if miss else ''}")
    print(f"target: StorageError within {target:g} s (storage.timeout_seconds={args.timeout:g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
