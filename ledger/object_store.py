"""A small typed client for S3-compatible object storage (AWS S3, MinIO, Ceph RGW, ...), where
the evidence store keeps a copy of every WARC file and blob, so that machines other than the one
that crawled can read them.

An object is named ``<prefix><name>``, ``name`` being the file's path inside the evidence store
(``warc/2026/11/02/copyguard-....warc.gz``, ``blobs/ab/cd/<sha256>``). Every upload carries the
file's SHA-256 (``x-amz-checksum-sha256``), so the server refuses bytes that changed on the way
and keeps the checksum with the object; a file whose object is already there with the same size
and checksum is not sent again. A download goes to a temporary file beside its target, is
checked against the SHA-256 the caller knows (a blob's name) or else the one the object was
stored with, and is renamed into place only then.

Every failure is an :class:`ObjectStoreError` (an ``EvidenceError``) naming the endpoint, the
bucket and the key: unreachable, no such bucket, access denied, no answer in time. Each request
is bounded: ``timeout_seconds`` to connect and for each read, at most ``_ATTEMPTS`` tries.

Settings: ``[evidence] s3_*``, read by :func:`object_store_from_settings` alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from config.settings import EvidenceSettings
from ledger.evidence import EvidenceError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["ObjectNotFoundError", "ObjectStore", "ObjectStoreError", "RemoteObject",
           "object_store_from_settings"]

_ATTEMPTS = 3  # botocore "standard" retries: throttling, 5xx answers, dropped connections
_CHUNK = 1 << 20
_DENIED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                     "InvalidToken", "ExpiredToken"})


class ObjectStoreError(EvidenceError):
    """A request to object storage failed; the message names the endpoint, bucket and key."""


class ObjectNotFoundError(ObjectStoreError):
    """The bucket holds no object under that key."""


@dataclass(frozen=True)
class RemoteObject:
    key: str
    size: int
    sha256: str | None  # hex; None when it was stored without a whole-object SHA-256


class ObjectStore:
    """One bucket (under one key prefix) of an S3-compatible server. Nothing is connected until
    the first request; the underlying boto3 client is thread-safe."""

    def __init__(self, endpoint: str, bucket: str, *, prefix: str = "", region: str = "us-east-1",
                 access_key_id: str = "", secret_access_key: str = "",
                 timeout_seconds: float = 30.0) -> None:
        self.endpoint, self.bucket, self.prefix = endpoint, bucket, prefix
        self._region = region
        # Empty: boto3's own chain (AWS_ACCESS_KEY_ID, ~/.aws/credentials, an instance role).
        self._access_key_id = access_key_id or None
        self._secret_access_key = secret_access_key or None
        self._timeout = timeout_seconds  # to connect, and for each read of an answer
        self._client_made: S3Client | None = None

    @property
    def _client(self) -> S3Client:
        if self._client_made is None:
            session = boto3.session.Session(aws_access_key_id=self._access_key_id,
                                            aws_secret_access_key=self._secret_access_key,
                                            region_name=self._region)
            self._client_made = session.client("s3", endpoint_url=self.endpoint, config=Config(
                connect_timeout=self._timeout, read_timeout=self._timeout,
                retries={"max_attempts": _ATTEMPTS, "mode": "standard"},
                # Path-style URLs and checksums only where asked for: what MinIO, Ceph and
                # other S3 look-alikes understand (we send our own SHA-256 with every upload).
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required"))
        return self._client_made

    def key(self, name: str) -> str:
        return self.prefix + name

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def check(self) -> None:
        """Raise unless the bucket is there and these credentials may use it."""
        with self._failures("reach the bucket", None):
            self._client.head_bucket(Bucket=self.bucket)

    def head(self, name: str) -> RemoteObject | None:
        """The object's size and SHA-256, or None when there is none (HEAD answers a missing
        bucket like a missing key: a later PUT or GET tells them apart)."""
        key = self.key(name)
        try:
            with self._failures("look up", key):
                answer = self._client.head_object(Bucket=self.bucket, Key=key,
                                                  ChecksumMode="ENABLED")
        except ObjectNotFoundError:
            return None
        return RemoteObject(key, answer["ContentLength"], _hex(answer.get("ChecksumSHA256")))

    def put_file(self, path: Path, name: str, *, sha256: str | None = None) -> bool:
        """Upload ``path`` as ``name`` unless the same bytes are there already; whether it was
        sent. ``sha256`` (hex) saves reading the file once more to compute it."""
        digest = sha256 or _file_sha256(path)
        size = path.stat().st_size
        there = self.head(name)
        if there is not None and there.size == size and there.sha256 == digest:
            return False
        key = self.key(name)
        with self._failures("upload", key), open(path, "rb") as body:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentLength=size,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode("ascii"))
        return True

    def download(self, name: str, target: Path, *, sha256: str | None = None) -> bool:
        """Fetch ``name`` into ``target`` (read-only), whole and checked or not at all:
        against ``sha256`` (hex) if given, and (by botocore, as ``ChecksumMode`` asks) against
        any checksum stored with the object. False when there is no such object."""
        key = self.key(name)
        try:
            with self._failures("download", key):
                answer = self._client.get_object(Bucket=self.bucket, Key=key,
                                                 ChecksumMode="ENABLED")
        except ObjectNotFoundError:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:16]}.",
                                             suffix=".part")
        try:
            digester, size = hashlib.sha256(), 0
            with self._failures("download", key), os.fdopen(handle, "wb") as out:
                for chunk in answer["Body"].iter_chunks(_CHUNK):
                    digester.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size != answer["ContentLength"]:
                raise ObjectStoreError(f"{self._where(key)}: the download was cut short "
                                       f"({size} of {answer['ContentLength']} bytes)")
            if sha256 is not None and digester.hexdigest() != sha256:
                raise ObjectStoreError(f"{self._where(key)}: the downloaded bytes hash to "
                                       f"SHA-256 {digester.hexdigest()}, not {sha256}: refused")
            os.chmod(temporary, 0o444)
            os.replace(temporary, target)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        finally:
            answer["Body"].close()
        _fsync_dir(target.parent)
        return True

    # -- errors ----------------------------------------------------------------------------

    def _where(self, key: str | None) -> str:
        return f"object storage at {self.endpoint}, {self._what(key)}"

    def _what(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{key}" if key is not None else f"bucket {self.bucket!r}"

    @contextmanager
    def _failures(self, action: str, key: str | None) -> Iterator[None]:
        """Turn botocore's errors into ones that say what failed where."""
        try:
            yield
        except ClientError as exc:
            raise self._client_failure(action, key, exc) from exc
        except BotoConnectionError as exc:
            raise ObjectStoreError(f"object storage at {self.endpoint} is unreachable (trying "
                                   f"to {action} {self._what(key)}): {exc}") from exc
        except ReadTimeoutError as exc:
            raise ObjectStoreError(f"{self._where(key)}: no answer within {self._timeout:g} s "
                                   f"(trying to {action})") from exc
        except FlexibleChecksumError as exc:
            raise ObjectStoreError(f"{self._where(key)}: the bytes do not match the checksum "
                                   f"stored with them: refused ({exc})") from exc
        except NoCredentialsError as exc:
            raise ObjectStoreError(f"{self._where(key)}: no credentials: set "
                                   "evidence.s3_access_key_id and s3_secret_access_key") from exc
        except BotoCoreError as exc:
            raise ObjectStoreError(f"{self._where(key)}: could not {action}: {exc}") from exc

    def _client_failure(self, action: str, key: str | None,
                        exc: ClientError) -> ObjectStoreError:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket" or (key is None and status == 404):
            return ObjectStoreError(f"object storage at {self.endpoint} has no bucket "
                                    f"{self.bucket!r} (create it, or correct evidence.s3_bucket)")
        if code in ("NoSuchKey", "NotFound", "404"):
            return ObjectNotFoundError(f"{self._where(key)}: no such object")
        if status == 403 or code in _DENIED:
            return ObjectStoreError(f"{self._where(key)}: access denied ({code}: {message}); "
                                    "check evidence.s3_access_key_id and s3_secret_access_key")
        return ObjectStoreError(f"{self._where(key)}: could not {action}: "
                                f"{code or status} {message}".rstrip())


def object_store_from_settings(evidence: EvidenceSettings) -> ObjectStore | None:
    """The object store ``[evidence]`` names; None when ``s3_endpoint`` is empty."""
    if not evidence.s3_endpoint:
        return None
    return ObjectStore(evidence.s3_endpoint, evidence.s3_bucket, prefix=evidence.s3_prefix,
                       region=evidence.s3_region, access_key_id=evidence.s3_access_key_id,
                       secret_access_key=evidence.s3_secret_access_key,
                       timeout_seconds=evidence.s3_timeout_seconds)


def _hex(checksum: str | None) -> str | None:
    """The hex SHA-256 of an ``x-amz-checksum-sha256`` value; None for none, or for the
    checksum of a multipart upload's parts ("...-3"), which is not the object's."""
    if not checksum:
        return None
    try:
        raw = base64.b64decode(checksum, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def _file_sha256(path: Path) -> str:
    digester = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digester.update(chunk)
    return digester.hexdigest()


def _fsync_dir(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
