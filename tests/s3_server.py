"""A real S3 server on 127.0.0.1 for the object-storage tests: moto's, serving HTTP in a thread
of the test process (so a child process reaches it too), with a fresh bucket per test. Also a
pytest plugin (registered by the root conftest): the ``endpoint`` fixture (one server per test
module) and ``bucket`` (a new bucket per test)."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ledger.object_store import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Credentials are always given: boto3 must never look further (an instance-metadata address).
ACCESS_KEY_ID = "copyguard-test"
SECRET_ACCESS_KEY = "copyguard-test-secret"
PREFIX = "evidence/"


@contextmanager
def running_s3() -> Iterator[str]:
    """The endpoint URL of a moto S3 server on a free port of 127.0.0.1."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug.setLevel(level)


def s3_client(endpoint: str) -> S3Client:
    """A plain boto3 client, to look at (and tamper with) the bucket behind the code's back."""
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name="us-east-1").client("s3", endpoint_url=endpoint)


def new_bucket(endpoint: str) -> str:
    name = f"copyguard-{uuid.uuid4().hex[:16]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def object_store(endpoint: str, bucket: str, *, timeout_seconds: float = 10.0) -> ObjectStore:
    return ObjectStore(endpoint, bucket, prefix=PREFIX, access_key_id=ACCESS_KEY_ID,
                       secret_access_key=SECRET_ACCESS_KEY, timeout_seconds=timeout_seconds)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with running_s3() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str) -> str:
    return new_bucket(endpoint)
