"""Evidence in S3-compatible object storage, against a real S3 server on 127.0.0.1 (moto's):
uploads that the server checks, a second machine with an empty disk reading what the first
wrote, the sweep after a writer was killed, and clear errors when the storage is not there."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from moto.core import enable_iam_authentication

from config import ConfigError, load_settings
from ledger.clock import FixedClock
from ledger.evidence import EvidenceError, EvidenceStore, WarcLocation, iter_records
from ledger.object_store import (
    ObjectStore,
    ObjectStoreError,
    object_store_from_settings,
)
from tests.ledger.test_evidence import BODY, _exchange
from tests.s3_server import (
    ACCESS_KEY_ID,
    PREFIX,
    SECRET_ACCESS_KEY,
    closed_port,
    object_store,
    s3_client,
)

SHA256 = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def remote(endpoint: str, bucket: str) -> ObjectStore:
    return object_store(endpoint, bucket)


def _store(root: Path, remote: ObjectStore | None, clock: FixedClock,
           max_file_bytes: int = 1 << 30) -> EvidenceStore:
    return EvidenceStore(root, max_file_bytes=max_file_bytes, clock=clock, remote=remote)


def _object(endpoint: str, bucket: str, name: str) -> bytes | None:
    """The object's bytes as the server holds them, or None."""
    client = s3_client(endpoint)
    listed = client.list_objects_v2(Bucket=bucket, Prefix=PREFIX + name).get("Contents", [])
    if not any(item.get("Key") == PREFIX + name for item in listed):
        return None
    return client.get_object(Bucket=bucket, Key=PREFIX + name)["Body"].read()


def _keys(endpoint: str, bucket: str) -> set[str]:
    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket).get("Contents", [])
    return {str(item.get("Key")) for item in listed}


def _blob_name(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


# -- uploads -------------------------------------------------------------------------------------

def test_blob_is_in_object_storage_when_put_blob_returns(
        tmp_path: Path, clock: FixedClock, endpoint: str, bucket: str,
        remote: ObjectStore) -> None:
    store = _store(tmp_path / "a", remote, clock)
    stored = store.put_blob(BODY)
    assert _object(endpoint, bucket, stored.path) == BODY
    head = s3_client(endpoint).head_object(Bucket=bucket, Key=PREFIX + stored.path,
                                           ChecksumMode="ENABLED")
    # Sent with its SHA-256, which the server keeps (and checks, on real S3).
    assert head.get("ChecksumSHA256") == base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert store.put_blob(BODY) == stored  # again: nothing new here nor there
    assert _keys(endpoint, bucket) == {PREFIX + stored.path}


def test_put_file_skips_an_object_already_there_and_replaces_a_different_one(
        tmp_path: Path, endpoint: str, bucket: str, remote: ObjectStore) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"first")
    assert remote.put_file(path, "x/file.bin") is True
    assert remote.put_file(path, "x/file.bin") is False  # same size and SHA-256: not sent
    path.write_bytes(b"other")
    assert remote.put_file(path, "x/file.bin") is True
    assert _object(endpoint, bucket, "x/file.bin") == b"other"
    there = remote.head("x/file.bin")
    assert there is not None and there.size == 5
    assert there.sha256 == hashlib.sha256(b"other").hexdigest()
    assert remote.head("x/missing") is None


def test_warc_file_is_uploaded_when_rotated_and_when_closed(
        tmp_path: Path, clock: FixedClock, endpoint: str, bucket: str,
        remote: ObjectStore) -> None:
    store = _store(tmp_path / "a", remote, clock, max_file_bytes=6000)
    with store:
        first = store.write_exchange(_exchange(body=os.urandom(2500))).response
        assert _object(endpoint, bucket, first.file) is None  # still being written
        # About 3,500 bytes an exchange: the second takes the file past 6,000, which closes it.
        second = store.write_exchange(_exchange(body=os.urandom(2500))).response
        assert first.file == second.file
        assert _object(endpoint, bucket, first.file) == (store.root / first.file).read_bytes()
        third = store.write_exchange(_exchange(body=os.urandom(2500))).response
        assert third.file != first.file
        assert _object(endpoint, bucket, third.file) is None
    assert _object(endpoint, bucket, third.file) == (store.root / third.file).read_bytes()


def test_a_failed_upload_at_close_is_logged_and_pushed_later(
        tmp_path: Path, clock: FixedClock, endpoint: str, bucket: str, remote: ObjectStore,
        caplog: pytest.LogCaptureFixture) -> None:
    down = object_store(f"http://127.0.0.1:{closed_port()}", bucket, timeout_seconds=2)
    with caplog.at_level(logging.WARNING, "ledger.evidence"), _store(
            tmp_path / "a", down, clock) as store:
        location = store.write_exchange(_exchange()).response
    assert "not uploaded to object storage" in caplog.text  # close() did not raise
    assert store.verify(location, SHA256)  # the records are safe on disk
    assert _object(endpoint, bucket, location.file) is None
    report = _store(tmp_path / "a", remote, clock).push_pending()
    assert (report.uploaded, report.present, report.busy, report.problems) == (1, 0, 0, ())
    assert _object(endpoint, bucket, location.file) == store.warc_path(location.file).read_bytes()


def test_file_names_carry_the_host_so_two_machines_never_share_one(
        tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    names = []
    for host in ("crawler-1.example", "crawler_2"):
        monkeypatch.setattr("socket.gethostname", lambda host=host: host)
        with _store(tmp_path / host, None, clock) as store:  # same second, pid and serial
            names.append(store.write_exchange(_exchange()).response.file)
        folder = (tmp_path / host / names[-1]).parent
        assert [p.name for p in folder.iterdir()] == [Path(names[-1]).name]  # no temporary
    assert names[0].endswith(f"-crawler-1-{os.getpid()}-00001.warc.gz")
    assert names[1].endswith(f"-crawler-2-{os.getpid()}-00001.warc.gz")


# -- another machine -------------------------------------------------------------------------------

def test_a_second_machine_with_an_empty_disk_reads_what_the_first_wrote(
        tmp_path: Path, clock: FixedClock, remote: ObjectStore, endpoint: str,
        bucket: str) -> None:
    with _store(tmp_path / "crawler", remote, clock) as crawler:
        blob = crawler.put_blob(BODY)
        stored = crawler.write_exchange(_exchange())
    written = crawler.read_record(stored.response)

    worker = _store(tmp_path / "worker", object_store(endpoint, bucket), clock)
    assert not (tmp_path / "worker").exists()
    path = worker.blob_path(blob.sha256)
    assert path == tmp_path / "worker" / blob.path
    assert path.read_bytes() == BODY
    assert path.stat().st_mode & 0o222 == 0  # a copy is never written to
    record = worker.read_record(stored.response)
    assert record.warc_headers == written.warc_headers
    assert record.http_headers == written.http_headers
    assert worker.verify(stored.response, SHA256)  # WARC-Payload-Digest and SHA-256 agree
    with record.open_payload() as payload:
        assert payload.read() == BODY
    assert worker.warc_path(stored.response.file).read_bytes() == \
        crawler.warc_path(stored.response.file).read_bytes()
    # What it downloaded is marked as there: its sweep has nothing to send.
    report = worker.push_pending()
    assert (report.uploaded, report.present, report.busy) == (0, 0, 0)


def test_a_record_of_a_file_still_being_written_is_not_in_object_storage_yet(
        tmp_path: Path, clock: FixedClock, remote: ObjectStore) -> None:
    reader = _store(tmp_path / "reader", remote, clock)
    with _store(tmp_path / "crawler", remote, clock) as crawler:
        stored = crawler.write_exchange(_exchange())
        with pytest.raises(EvidenceError, match=r"not in object storage yet.*uploaded when the "
                                                r"crawl writing it closes it"):
            reader.read_record(stored.response)
        with pytest.raises(EvidenceError, match="not in object storage yet"):
            reader.verify(stored.response, SHA256)
    assert reader.verify(stored.response, SHA256)


def test_a_blob_in_neither_place_is_missing_as_without_object_storage(
        tmp_path: Path, clock: FixedClock, remote: ObjectStore) -> None:
    store = _store(tmp_path / "a", remote, clock)
    path = store.blob_path("0" * 64)
    assert not path.exists()
    with pytest.raises(FileNotFoundError):
        store.open_blob("0" * 64)


def test_a_tampered_blob_in_the_bucket_is_refused_on_download(
        tmp_path: Path, clock: FixedClock, remote: ObjectStore, endpoint: str,
        bucket: str) -> None:
    blob = _store(tmp_path / "crawler", remote, clock).put_blob(BODY)
    s3_client(endpoint).put_object(Bucket=bucket, Key=PREFIX + blob.path, Body=b"not the audio")
    worker = _store(tmp_path / "worker", remote, clock)
    with pytest.raises(ObjectStoreError, match=f"hash to SHA-256 .*not {blob.sha256}: refused"):
        worker.blob_path(blob.sha256)
    folder = (tmp_path / "worker" / blob.path).parent
    assert list(folder.iterdir()) == []  # nothing kept, not even the temporary file


def test_a_warc_file_tampered_after_upload_is_refused_by_its_stored_checksum(
        tmp_path: Path, clock: FixedClock, remote: ObjectStore, endpoint: str,
        bucket: str) -> None:
    with _store(tmp_path / "crawler", remote, clock) as crawler:
        stored = crawler.write_exchange(_exchange())
    client = s3_client(endpoint)
    key = PREFIX + stored.response.file
    original = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    forged = bytearray(crawler.warc_path(stored.response.file).read_bytes())
    forged[len(forged) // 2] ^= 0xFF
    # Replaced, but claiming the original's checksum (as a careless copy tool might).
    client.put_object(Bucket=bucket, Key=key, Body=bytes(forged), ChecksumAlgorithm="SHA256",
                      ChecksumSHA256=str(original.get("ChecksumSHA256")))
    worker = _store(tmp_path / "worker", remote, clock)
    with pytest.raises(ObjectStoreError, match="do not match the checksum stored with them"):
        worker.read_record(stored.response)
    assert not worker.root.joinpath(stored.response.file).exists()


# -- the sweep ------------------------------------------------------------------------------------

_KILLED_WRITER = """
import json, os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from ledger.evidence import EvidenceStore, Exchange
from ledger.object_store import ObjectStore
root, endpoint, bucket, prefix, key_id, secret = sys.argv[1:]
store = EvidenceStore(Path(root), remote=ObjectStore(
    endpoint, bucket, prefix=prefix, access_key_id=key_id, secret_access_key=secret))
store.put_blob(b"abc")
stored = store.write_exchange(Exchange(
    url="https://music.example/a.mp3", method="GET", request_headers=[], status=200,
    reason="OK", response_headers=[], body=b"abc", fetched_at=datetime.now(UTC),
    ip_address=None))
with open(store.warc_path(stored.response.file), "ab") as file:
    file.write(b"\\x1f\\x8b\\x08\\x00torn")  # a record the kill cut short
print(json.dumps([stored.response.file, stored.response.offset, stored.response.length]),
      flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_push_pending_uploads_the_file_a_killed_writer_never_closed(
        tmp_path: Path, clock: FixedClock, remote: ObjectStore, endpoint: str,
        bucket: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path / "crawler"), endpoint, bucket,
         PREFIX, ACCESS_KEY_ID, SECRET_ACCESS_KEY],
        capture_output=True, timeout=120, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    location = WarcLocation(*json.loads(result.stdout))
    sha256 = hashlib.sha256(b"abc").hexdigest()
    assert _object(endpoint, bucket, _blob_name(sha256)) == b"abc"  # uploaded as it was put
    assert _object(endpoint, bucket, location.file) is None  # its writer never closed it

    store = _store(tmp_path / "crawler", remote, clock)
    report = store.push_pending()
    assert (report.uploaded, report.present, report.busy, report.problems) == (1, 0, 0, ())
    local = store.warc_path(location.file)
    assert not local.read_bytes().endswith(b"torn")  # the torn tail was cut before the upload
    assert _object(endpoint, bucket, location.file) == local.read_bytes()
    worker = _store(tmp_path / "worker", remote, clock)
    assert worker.verify(location, sha256)
    assert [r.record_type for r in iter_records(worker.warc_path(location.file))] == [
        "warcinfo", "request", "response", "metadata"]

    # Markers say what is there: the next sweep asks nothing of the server (here: none at all).
    away = object_store(f"http://127.0.0.1:{closed_port()}", bucket, timeout_seconds=1)
    again = _store(tmp_path / "crawler", away, clock).push_pending()
    assert (again.uploaded, again.present, again.busy, again.problems) == (0, 0, 0, ())


def test_push_pending_leaves_a_file_a_live_writer_holds(
        tmp_path: Path, clock: FixedClock, remote: ObjectStore, endpoint: str,
        bucket: str) -> None:
    with _store(tmp_path / "crawler", remote, clock) as writer:
        location = writer.write_exchange(_exchange()).response
        report = _store(tmp_path / "crawler", remote, clock).push_pending()
        assert (report.uploaded, report.busy) == (0, 1)
        assert _object(endpoint, bucket, location.file) is None
    assert _object(endpoint, bucket, location.file) is not None  # its writer uploaded it


def test_push_pending_sends_files_from_before_object_storage_and_marks_those_there(
        tmp_path: Path, clock: FixedClock, remote: ObjectStore, endpoint: str,
        bucket: str) -> None:
    with _store(tmp_path / "a", None, clock) as local_only:
        blob = local_only.put_blob(BODY)
        location = local_only.write_exchange(_exchange()).response
    s3_client(endpoint).put_object(Bucket=bucket, Key=PREFIX + blob.path, Body=BODY,
                                   ChecksumAlgorithm="SHA256")
    steps: list[tuple[int, int]] = []
    report = _store(tmp_path / "a", remote, clock).push_pending(
        on_progress=lambda done, total: steps.append((done, total)))
    assert (report.uploaded, report.present, report.busy, report.problems) == (1, 1, 0, ())
    assert steps == [(0, 2), (1, 2), (2, 2)]
    assert _object(endpoint, bucket, location.file) == \
        local_only.warc_path(location.file).read_bytes()


def test_push_pending_without_object_storage_is_an_error(tmp_path: Path,
                                                         clock: FixedClock) -> None:
    with pytest.raises(EvidenceError, match="no object storage"):
        _store(tmp_path, None, clock).push_pending()


# -- clear errors ----------------------------------------------------------------------------------

def test_an_unreachable_endpoint_is_a_clear_error_naming_it(
        tmp_path: Path, clock: FixedClock, bucket: str) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    store = _store(tmp_path, object_store(endpoint, bucket, timeout_seconds=2), clock)
    with pytest.raises(ObjectStoreError, match=f"object storage at {endpoint} is unreachable"):
        store.put_blob(BODY)
    assert store.blob_path(SHA256).read_bytes() == BODY  # kept here, for the sweep to send
    with pytest.raises(ObjectStoreError, match=f"{endpoint} is unreachable"):
        store.blob_path("1" * 64)
    assert store.remote is not None
    with pytest.raises(ObjectStoreError, match=f"{endpoint} is unreachable.*{bucket}"):
        store.remote.check()


def test_a_wrong_bucket_is_a_clear_error(tmp_path: Path, clock: FixedClock,
                                         endpoint: str) -> None:
    missing = object_store(endpoint, "no-such-bucket-here")
    store = _store(tmp_path, missing, clock)
    message = f"object storage at {endpoint} has no bucket 'no-such-bucket-here'"
    for attempt in (lambda: store.put_blob(BODY), lambda: store.blob_path("1" * 64),
                    missing.check):
        with pytest.raises(ObjectStoreError, match=message):
            attempt()


def test_access_denied_is_a_clear_error(tmp_path: Path, clock: FixedClock,
                                        remote: ObjectStore, endpoint: str) -> None:
    store = _store(tmp_path, remote, clock)
    with enable_iam_authentication():  # the server now checks keys: ours are unknown to it
        with pytest.raises(ObjectStoreError, match=f"at {endpoint}, s3://{remote.bucket}/"
                                                   f"{PREFIX}blobs/.*access denied"):
            store.put_blob(BODY)
        with pytest.raises(ObjectStoreError, match=r"access denied.*s3_access_key_id"):
            remote.check()


# -- settings ------------------------------------------------------------------------------------

def test_object_storage_from_settings(tmp_path: Path) -> None:
    assert object_store_from_settings(load_settings(environ={}).evidence) is None
    config = tmp_path / "copyguard.toml"
    config.write_text('[evidence]\ns3_endpoint = "http://127.0.0.1:9000"\n'
                      's3_bucket = "evidence"\ns3_access_key_id = "minio"\n')
    settings = load_settings(config, environ={
        "COPYGUARD_EVIDENCE__S3_SECRET_ACCESS_KEY": "from-the-environment"})
    assert settings.evidence.s3_secret_access_key == "from-the-environment"
    remote = object_store_from_settings(settings.evidence)
    assert remote is not None
    assert (remote.endpoint, remote.bucket, remote.prefix) == (
        "http://127.0.0.1:9000", "evidence", "copyguard/")
    assert remote.url("warc/x.warc.gz") == "s3://evidence/copyguard/warc/x.warc.gz"


@pytest.mark.parametrize(("environ", "message"), [
    ({"COPYGUARD_EVIDENCE__S3_ENDPOINT": "http://127.0.0.1:9000"},
     "s3_endpoint is set (http://127.0.0.1:9000), so s3_bucket is required"),
    ({"COPYGUARD_EVIDENCE__S3_ENDPOINT": "127.0.0.1:9000", "COPYGUARD_EVIDENCE__S3_BUCKET": "b1b"},
     "COPYGUARD_EVIDENCE__S3_ENDPOINT"),
    ({"COPYGUARD_EVIDENCE__S3_ENDPOINT": "http://s3", "COPYGUARD_EVIDENCE__S3_BUCKET": "My_Bucket"},
     "COPYGUARD_EVIDENCE__S3_BUCKET"),
    ({"COPYGUARD_EVIDENCE__S3_PREFIX": "copyguard"}, "COPYGUARD_EVIDENCE__S3_PREFIX"),
    ({"COPYGUARD_EVIDENCE__S3_TIMEOUT_SECONDS": "0"}, "COPYGUARD_EVIDENCE__S3_TIMEOUT_SECONDS"),
    ({"COPYGUARD_EVIDENCE__S3_ENDPOINT": "http://s3", "COPYGUARD_EVIDENCE__S3_BUCKET": "bucket",
      "COPYGUARD_CRAWL__WARC_FILE_MB": "5000"}, "warc_file_mb (5000) must be at most 4096"),
], ids=["no-bucket", "endpoint", "bucket", "prefix", "timeout", "warc-size"])
def test_bad_object_storage_settings_are_refused_naming_the_key(environ: dict[str, str],
                                                                message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ=environ)
    assert message in str(raised.value)
