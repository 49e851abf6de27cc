"""A real S3 HTTP endpoint on 127.0.0.1 for the tests: moto's standalone server.

moto's ``ThreadedMotoServer`` is a stand-in for AWS that speaks the S3 REST API over
HTTP, so the same boto3, s3fs, pyarrow and MLflow clients a user has talk to it over
the wire. Nothing is patched in the clients: only the endpoint and the (fake)
credentials differ, both from the standard environment variables.

    with moto_server() as s3:                 # or the ``s3`` fixture in tests/storage
        url = s3.bucket("models")             # "s3://models-3f2a…", a fresh bucket
        env = s3.environment()                # for a subprocess (`shipyard serve`)
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.support.servers import free_port

__all__ = ["ACCESS_KEY", "SECRET_KEY", "S3Server", "moto_server"]

HOST = "127.0.0.1"
REGION = "us-east-1"
# moto accepts any key; these are what the environment hands to boto3 and s3fs.
ACCESS_KEY = "testing"
SECRET_KEY = "testing-secret"


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server: its endpoint, and helpers to make buckets."""

    endpoint_url: str

    def environment(self) -> dict[str, str]:
        """The variables a process needs to use this server as its S3 (no profile files)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def bucket(self, prefix: str = "shipyard") -> str:
        """Create a fresh bucket named ``<prefix>-<random>`` and return ``s3://`` + its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def keys(self, url: str) -> list[str]:
        """Every object key under an ``s3://bucket/prefix`` URL, sorted."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    @contextmanager
    def checking_credentials(self, *, deny: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
        """For the block, the server checks keys and IAM policies like AWS does.

        Yields the environment variables of a new IAM user allowed ``s3:*`` except the
        ``deny`` actions (``"s3:PutObject"`` …); any other key is refused as unknown.
        """
        iam = self._iam()
        user = f"user-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=user)
        statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]
        if deny:
            statements.append({"Effect": "Deny", "Action": list(deny), "Resource": "*"})
        iam.put_user_policy(
            UserName=user,
            PolicyName="shipyard-test",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        key = iam.create_access_key(UserName=user)["AccessKey"]
        self._authenticate_after(0)
        try:
            yield {
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            }
        finally:
            self._authenticate_after(float("inf"))

    def _iam(self) -> Any:
        import boto3

        return boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def _authenticate_after(self, count: float) -> None:
        # moto's own switch: requests after ``count`` more are authenticated with IAM.
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=str(count).encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


@contextmanager
def moto_server() -> Iterator[S3Server]:
    """Start moto's S3 server on a free port of 127.0.0.1 for the block."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://{HOST}:{port}")
    finally:
        server.stop()
