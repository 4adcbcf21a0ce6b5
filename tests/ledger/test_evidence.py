"""The evidence store on real files: WARC records written, read back, rotated, repaired; blobs."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from ledger import evidence
from ledger.clock import FixedClock
from ledger.evidence import (
    EvidenceCorruptError,
    EvidenceError,
    EvidenceFileBusyError,
    EvidenceStore,
    Exchange,
    StoredExchange,
    WarcLocation,
    iter_records,
    repair,
)

FETCHED_AT = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
BODY = b"ID3\x04\x00" + bytes(range(256)) * 40


def _exchange(body: Path | bytes = BODY, **changes: Any) -> Exchange:
    values: dict[str, Any] = dict(
        url="https://music.example/files/track%201.mp3?dl=1", method="GET",
        request_headers=[("User-Agent", "copyguard/0.1"), ("Accept", "*/*")],
        status=200, reason="OK",
        response_headers=[("Content-Type", "audio/mpeg"), ("Set-Cookie", "a=1"),
                          ("Set-Cookie", "b=2"), ("X-Title", "caf\xe9")],
        body=body, fetched_at=FETCHED_AT, ip_address="203.0.113.7",
        metadata={"crawl_id": 42, "target": "pirate-site", "via": "audio-tag",
                  "page_url": "https://music.example/album", "robots": "obeyed",
                  "software": "copyguard/0.1"})
    values.update(changes)
    return Exchange(**values)


@pytest.fixture
def store(tmp_path: Path, clock: FixedClock) -> EvidenceStore:
    return EvidenceStore(tmp_path / "evidence", software="copyguard/0.1",
                         operator_contact="mailto:evidence@label.example", clock=clock)


def _warc_files(store: EvidenceStore) -> list[Path]:
    return sorted((store.root / "warc").rglob("*.warc.gz"))


def _b32_sha256(data: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode()


def _member(store: EvidenceStore, location: WarcLocation) -> bytes:
    """The record's bytes, decompressed by gzip alone (no code under test)."""
    raw = store.warc_path(location.file).read_bytes()
    return gzip.decompress(raw[location.offset:location.offset + location.length])


# -- writing and reading back ------------------------------------------------------------------

def test_exchange_reads_back_field_by_field(store: EvidenceStore) -> None:
    with store:
        stored = store.write_exchange(_exchange())
    request, response, metadata = (store.read_record(location) for location in
                                   (stored.request, stored.response, stored.metadata))

    assert [r.record_type for r in (request, response, metadata)] == [
        "request", "response", "metadata"]
    assert [r.record_id for r in (request, response, metadata)] == [
        stored.request_id, stored.response_id, stored.metadata_id]
    for record in (request, response, metadata):
        assert record.warc_header("WARC-Date") == "2026-12-01T09:30:15.123456Z"
        assert record.warc_header("WARC-Target-URI") == _exchange().url
        assert record.warc_header("WARC-IP-Address") == "203.0.113.7"
        assert record.warc_header("WARC-Warcinfo-ID") is not None
    assert request.warc_header("WARC-Concurrent-To") == stored.response_id
    assert metadata.warc_header("WARC-Refers-To") == stored.response_id
    assert metadata.warc_header("WARC-Concurrent-To") == stored.response_id

    assert request.http_start_line == "GET /files/track%201.mp3?dl=1 HTTP/1.1"
    assert request.http_headers == _exchange().request_headers
    assert response.status == 200
    assert response.http_start_line == "HTTP/1.1 200 OK"
    # Order, duplicates and the non-ASCII byte survive as they came off the wire.
    assert response.http_headers == _exchange().response_headers
    assert b"X-Title: caf\xe9\r\n" in _member(store, stored.response)
    with response.open_payload() as payload:
        assert payload.read() == BODY
    assert response.payload_length == stored.payload_length == len(BODY)

    with metadata.open_payload() as payload:
        fields = json.loads(payload.read())
    assert fields == {
        "crawl_id": 42, "target": "pirate-site", "via": "audio-tag",
        "page_url": "https://music.example/album", "robots": "obeyed",
        "software": "copyguard/0.1", "url": _exchange().url,
        "sha256": hashlib.sha256(BODY).hexdigest(), "payload_length": len(BODY),
        "fetched_at": "2026-12-01T09:30:15.123456Z", "ip_address": "203.0.113.7"}
    assert metadata.warc_header("Content-Type") == "application/json"


def test_digests_are_sha256_of_payload_and_block(store: EvidenceStore) -> None:
    with store:
        stored = store.write_exchange(_exchange())
    response = store.read_record(stored.response)
    assert stored.payload_sha256 == hashlib.sha256(BODY).hexdigest()
    assert response.warc_header("WARC-Payload-Digest") == _b32_sha256(BODY)
    record = _member(store, stored.response)
    _, _, rest = record.partition(b"\r\n\r\n")
    block = rest[:int(response.warc_header("Content-Length") or -1)]
    assert block.endswith(BODY)
    assert response.warc_header("WARC-Block-Digest") == _b32_sha256(block)
    assert store.verify(stored.response, hashlib.sha256(BODY).hexdigest())
    assert not store.verify(stored.response, hashlib.sha256(BODY + b"x").hexdigest())
    # Every record, not only the response, carries SHA-256 digests that check out.
    for location in (stored.request, stored.metadata):
        record = store.read_record(location)
        with record.open_payload() as payload:
            assert record.warc_header("WARC-Payload-Digest") == _b32_sha256(payload.read())
        block = _member(store, location).partition(b"\r\n\r\n")[2][:-4]
        assert record.warc_header("WARC-Block-Digest") == _b32_sha256(block)


def test_warcio_reads_the_file_in_order_and_checks_every_digest(store: EvidenceStore) -> None:
    with store:
        first = store.write_exchange(_exchange())
        second = store.write_exchange(_exchange(body=b"second body", status=404, reason=""))
    (path,) = _warc_files(store)
    seen = []
    with open(path, "rb") as file:
        records = ArchiveIterator(file, check_digests="raise")
        for record in records:
            seen.append((record.rec_type, records.get_record_offset(),
                         records.get_record_length()))
    assert [kind for kind, _, _ in seen] == ["warcinfo"] + ["request", "response", "metadata"] * 2
    expected = [(kind, loc.offset, loc.length) for stored in (first, second)
                for kind, loc in zip(("request", "response", "metadata"),
                                     (stored.request, stored.response, stored.metadata),
                                     strict=True)]
    assert seen[1:] == expected
    assert [r.record_type for r in iter_records(path)] == [kind for kind, _, _ in seen]
    info = next(iter_records(path))
    with info.open_payload() as payload:
        text = payload.read().decode()
    assert "software: copyguard/0.1 (warcio/" in text
    assert "operator: mailto:evidence@label.example" in text
    assert info.warc_header("WARC-Filename") == path.name


def test_large_body_is_streamed_not_loaded(store: EvidenceStore, tmp_path: Path) -> None:
    size = 50 * 1024 * 1024
    body = tmp_path / "big.mp3"
    with open(body, "wb") as file:
        file.truncate(size)  # sparse zeros: cheap to make, and a decompression bomb on reading
    expected = hashlib.sha256()
    for _ in range(50):
        expected.update(bytes(1024 * 1024))
    tracemalloc.start()
    try:
        with store:
            stored = store.write_exchange(_exchange(body=body))
        assert store.verify(stored.response, expected.hexdigest())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored.payload_length == size
    assert peak < 5 * 1024 * 1024, f"peak {peak} bytes: the body was held in memory"


def test_body_changed_while_stored_leaves_file_as_it_was(
        store: EvidenceStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = tmp_path / "growing.mp3"
    body.write_bytes(BODY)
    digest_body = evidence._digest_body

    def digest_then_change(stream: Any, http_block: bytes) -> Any:
        digests = digest_body(stream, http_block)
        body.write_bytes(BODY[:-1] + b"!")  # another writer rewrites the file in between
        return digests

    with store:
        kept = store.write_exchange(_exchange())
        (path,) = _warc_files(store)
        size = path.stat().st_size
        monkeypatch.setattr(evidence, "_digest_body", digest_then_change)
        with pytest.raises(EvidenceError, match="changed"):
            store.write_exchange(_exchange(body=body))
        assert path.stat().st_size == size
        monkeypatch.undo()
        after = store.write_exchange(_exchange())
    assert after.response.file == kept.response.file
    assert len(list(iter_records(path))) == 7


# -- files: rotation, never reused ---------------------------------------------------------------

def test_files_rotate_past_the_size_limit(tmp_path: Path, clock: FixedClock) -> None:
    with EvidenceStore(tmp_path, max_file_bytes=6000, clock=clock) as store:
        locations = [store.write_exchange(_exchange(body=os.urandom(2500))).response
                     for _ in range(4)]
    files = [location.file for location in locations]
    # 2,500 incompressible bytes make an exchange of about 3,500: a file holds two.
    assert files[0] == files[1] != files[2] == files[3]
    assert files[0].startswith("warc/2026/11/02/copyguard-20261102T093000Z-")
    for path in _warc_files(store):
        assert [r.record_type for r in iter_records(path)] == [
            "warcinfo"] + ["request", "response", "metadata"] * 2


def test_a_new_writer_never_appends_to_an_existing_file(tmp_path: Path,
                                                        clock: FixedClock) -> None:
    with EvidenceStore(tmp_path, clock=clock) as first:
        old = first.write_exchange(_exchange()).response
    old_bytes = first.warc_path(old.file).read_bytes()
    # Same second, same pid, fresh serial: the name a dead writer used is taken, so skip it.
    with EvidenceStore(tmp_path, clock=clock) as second:
        new = second.write_exchange(_exchange()).response
    assert new.file != old.file
    assert first.warc_path(old.file).read_bytes() == old_bytes


def test_location_that_does_not_frame_one_record_does_not_verify(store: EvidenceStore) -> None:
    with store:
        stored = store.write_exchange(_exchange())
    response, metadata = stored.response, stored.metadata
    too_long = WarcLocation(response.file, response.offset, response.length + metadata.length)
    assert not store.verify(too_long, stored.payload_sha256)
    mid_record = WarcLocation(response.file, response.offset + 10, response.length)
    assert not store.verify(mid_record, stored.payload_sha256)
    assert store.verify(response, stored.payload_sha256)


def test_location_outside_the_store_is_refused(store: EvidenceStore) -> None:
    for name in ("../../etc/passwd", "/etc/passwd", "warc/2026/12/01/../../../x.warc.gz",
                 "blobs/ab/cd/x"):
        with pytest.raises(ValueError):
            store.read_record(WarcLocation(name, 0, 10))


# -- crashes -------------------------------------------------------------------------------------

def _three_exchanges(store: EvidenceStore) -> tuple[Path, list[StoredExchange]]:
    with store:
        stored = [store.write_exchange(_exchange(body=os.urandom(3000))) for _ in range(3)]
    return store.warc_path(stored[0].response.file), stored


@pytest.mark.parametrize("cut", ["inside the gzip trailer", "mid-record", "just after a header"])
def test_torn_tail_is_cut_back_to_the_last_whole_record(store: EvidenceStore, cut: str) -> None:
    path, stored = _three_exchanges(store)
    last = stored[-1].response
    size = {"inside the gzip trailer": last.offset + last.length - 3,
            "mid-record": last.offset + last.length // 2,
            "just after a header": last.offset + 12}[cut]
    os.truncate(path, size)

    records = iter_records(path)
    kept = [next(records) for _ in range(1 + 3 + 3 + 1)]  # warcinfo, two exchanges, a request
    with pytest.raises(EvidenceCorruptError) as error:  # reading stops, it does not skip
        next(records)
    assert error.value.offset == last.offset
    assert not store.verify(last, stored[-1].payload_sha256)

    report = repair(path)
    assert report.repaired
    assert (report.records, report.kept_bytes) == (len(kept), last.offset)
    assert report.cut_bytes == size - last.offset
    assert report.reason is not None and f"offset {last.offset}" in report.reason
    assert path.stat().st_size == last.offset
    assert len(list(iter_records(path))) == len(kept)
    for exchange in stored[:2]:
        assert store.verify(exchange.response, exchange.payload_sha256)
    assert not repair(path).repaired


def test_zeros_after_a_power_cut_are_cut(store: EvidenceStore) -> None:
    path, _ = _three_exchanges(store)
    size = path.stat().st_size
    with open(path, "ab") as file:
        file.write(bytes(4096))
    report = repair(path)
    assert (report.records, report.kept_bytes, report.cut_bytes) == (10, size, 4096)


def test_whole_gzip_member_holding_a_cut_record_is_cut(store: EvidenceStore) -> None:
    """A member can be whole and its record still short of its Content-Length."""
    path, stored = _three_exchanges(store)
    last = stored[-1].metadata
    data = path.read_bytes()
    short = gzip.compress(gzip.decompress(data[last.offset:])[:-10])
    path.write_bytes(data[:last.offset] + short)
    report = repair(path)
    assert (report.kept_bytes, report.cut_bytes) == (last.offset, len(short))
    assert "Content-Length" in (report.reason or "")


def test_damage_before_intact_records_is_not_cut(store: EvidenceStore) -> None:
    path, stored = _three_exchanges(store)
    middle = stored[1].response
    data = bytearray(path.read_bytes())
    data[middle.offset + middle.length // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EvidenceCorruptError, match="not a torn tail"):
        repair(path)
    assert path.stat().st_size == len(data)
    assert not store.verify(middle, stored[1].payload_sha256)
    assert store.verify(stored[2].response, stored[2].payload_sha256)


def test_repair_refuses_a_file_a_live_writer_holds(store: EvidenceStore) -> None:
    with store:
        stored = store.write_exchange(_exchange())
        with pytest.raises(EvidenceFileBusyError):
            repair(store.warc_path(stored.response.file))
    assert not repair(store.warc_path(stored.response.file)).repaired


_KILLED_WRITER = """
import json, os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from ledger.evidence import EvidenceStore, Exchange
store = EvidenceStore(Path(sys.argv[1]))
stored = store.write_exchange(Exchange(
    url="https://music.example/a.mp3", method="GET", request_headers=[], status=200,
    reason="OK", response_headers=[], body=b"abc", fetched_at=datetime.now(UTC),
    ip_address=None))
print(json.dumps([stored.response.file, stored.response.offset, stored.response.length]),
      flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_after_write_exchange_returned_loses_nothing(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)],
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    location = WarcLocation(*json.loads(result.stdout))
    store = EvidenceStore(tmp_path)
    path = store.warc_path(location.file)
    size = path.stat().st_size
    assert store.verify(location, hashlib.sha256(b"abc").hexdigest())
    assert not repair(path).repaired  # the dead writer's lock died with it
    with store:
        assert store.write_exchange(_exchange()).response.file != location.file
    assert path.stat().st_size == size


# -- exchanges that cannot be kept as given ------------------------------------------------------

@pytest.mark.parametrize("changes", [
    {"response_headers": [("X-Evil", "1\r\nWARC-Type: forged")]},
    {"request_headers": [("Bad Name", "x")]},
    {"response_headers": [("X-Text", "\u2713 not wire bytes")]},
    {"fetched_at": datetime(2026, 12, 1, 9, 30)},
    {"url": "https://music.example/a b.mp3"},
    {"url": "file:///etc/passwd"},
    {"ip_address": "not-an-ip"},
    {"metadata": {"sha256": "0" * 64}},
    {"metadata": {"score": float("nan")}},
    {"metadata": {"nested": {"a": 1}}},
], ids=lambda changes: next(iter(changes)))
def test_exchange_that_would_corrupt_a_record_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _exchange(**changes)


# -- blobs ---------------------------------------------------------------------------------------

def test_blob_is_stored_once_read_only_under_its_digest(store: EvidenceStore,
                                                        tmp_path: Path) -> None:
    source = tmp_path / "media.mp3"
    source.write_bytes(BODY)
    sha256 = hashlib.sha256(BODY).hexdigest()
    first = store.put_blob(BODY)
    assert first == (sha256, f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}")
    path = store.blob_path(sha256)
    inode = path.stat().st_ino
    assert store.put_blob(source) == first
    assert path.stat().st_ino == inode  # not written again
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    assert path.stat().st_mode & 0o222 == 0
    with store.open_blob(sha256) as blob:
        assert blob.read() == BODY


@pytest.mark.parametrize("digest", [
    "../../../../etc/passwd", "a" * 63, "a" * 65, "A" * 64, "a" * 64 + "\n",
    "../" + "a" * 61, "g" * 64, "",
])
def test_hostile_digest_never_becomes_a_path(store: EvidenceStore, digest: str) -> None:
    with pytest.raises(ValueError):
        store.blob_path(digest)
    with pytest.raises(ValueError):
        store.open_blob(digest)
