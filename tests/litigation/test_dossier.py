"""Dossier export and verification over a realistic history with real evidence: WARC records
written by the evidence store, a local RFC 3161 authority, the PDF rendered. Changing one byte
of any file, deleting one or adding one makes `verify_dossier` fail and name the file."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from fingerprints.audio import Audio
from fingerprints.synth import synthesize_track
from ledger.clock import FixedClock
from ledger.db import Ledger, open_ledger
from ledger.errors import NotFoundError
from ledger.evidence import EvidenceStore, Exchange
from ledger.models import AuditEntry, Capture, Dossier
from litigation.cases import list_cases, refresh_cases
from litigation.dossier import DossierOptions, ExportResult, export_dossier
from litigation.dossier_verify import verify_dossier
from litigation.errors import DossierError
from litigation.facts import DetectionFacts, WorkFacts
from litigation.match_picture import render_match_picture
from litigation.pdf import html_to_pdf
from litigation.rules import LitigationRules
from litigation.timestamp import TimestampToken, request_timestamp
from tests.litigation.case_history import CaseStory, build_case_story
from tests.litigation.pdf_tools import pdf_page_count, pdf_page_pixels, pdf_page_text
from tests.litigation.tsa_server import TsaTestServer

RULES = LitigationRules()
RATE = 11025


def _store_evidence(ledger: Ledger, root: Path) -> None:
    """Real WARC records for every capture (and its page) of the story."""
    with ledger.write() as session, EvidenceStore(root, software="copyguard/test") as store:
        for capture in session.execute(select(Capture).order_by(Capture.id)).scalars():
            body = b"ID3" + hashlib.sha256(capture.url.encode()).digest() * 200
            host = capture.url.split("/")[2]
            stored = store.write_exchange(Exchange(
                url=capture.url, method="GET", request_headers=[("Host", host)], status=200,
                reason="OK", response_headers=[("Content-Type", "audio/mpeg")], body=body,
                fetched_at=capture.fetched_at, ip_address=capture.ip_address))
            page = store.write_exchange(Exchange(
                url=capture.page_url or capture.url, method="GET",
                request_headers=[("Host", host)], status=200, reason="OK",
                response_headers=[("Content-Type", "text/html")],
                body=f'<a href="{capture.url}">listen</a>'.encode(),
                fetched_at=capture.fetched_at, ip_address=capture.ip_address))
            capture.sha256, capture.size = stored.payload_sha256, stored.payload_length
            capture.warc_file, capture.warc_record_id = stored.response.file, stored.response_id
            capture.warc_offset, capture.warc_length = (stored.response.offset,
                                                        stored.response.length)
            capture.page_warc_file = page.response.file
            capture.page_warc_offset, capture.page_warc_length = (page.response.offset,
                                                                  page.response.length)


def _pictures(detection: DetectionFacts, work: WorkFacts, audio: Path) -> bytes:
    if "mirror" in detection.url:
        raise ValueError("the mirror's copy could not be decoded")
    reference = Audio(synthesize_track(seed=work.recording_id, seconds=20.0, sample_rate=RATE),
                      RATE)
    return render_match_picture(reference, reference, query_start=2.0, query_end=12.0,
                                ref_start=2.0, title=work.title)


@dataclass(frozen=True)
class Exported:
    story: CaseStory
    case_id: int
    result: ExportResult
    tsa: TsaTestServer
    ledger: Ledger
    evidence: Path


def _export_story(ledger: Ledger, clock: FixedClock, folder: Path,
                  tsa: TsaTestServer) -> Exported:
    with ledger.write() as session:
        story = build_case_story(session, clock)
    _store_evidence(ledger, folder / "evidence")
    with ledger.write() as session:
        refresh_cases(session, clock, RULES, actor="test")
        blog = next(c for c in list_cases(session, holder_id=story.example)
                    if c.name == "pirate-blog.example")
        case_id = blog.id

    def stamp(digest: bytes) -> TimestampToken:
        return request_timestamp(digest, tsa.url)

    options = DossierOptions(pictures=_pictures, timestamp=stamp, tsa_url=tsa.url,
                             pdf=lambda html, base: html_to_pdf(html, base_url=base))
    with EvidenceStore(folder / "evidence", software="copyguard/test") as store:
        result = export_dossier(ledger, store, case_id, folder / "out" / "dossier", RULES,
                                options, actor="legal:test", holder_id=story.example)
    return Exported(story, case_id, result, tsa, ledger, folder / "evidence")


@pytest.fixture
def exported_here(ledger: Ledger, clock: FixedClock, tmp_path: Path,
                  tsa: TsaTestServer) -> Exported:
    """Exported on this test's database (SQLite, then PostgreSQL)."""
    return _export_story(ledger, clock, tmp_path, tsa)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tsa: TsaTestServer) -> Iterator[Exported]:
    """Exported once on SQLite, for the tests that only read or copy the dossier (an export
    with its PDF and pictures takes seconds)."""
    folder = tmp_path_factory.mktemp("dossier")
    clock = FixedClock(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    ledger = open_ledger(f"sqlite:///{folder}/ledger.db", clock=clock)
    try:
        yield _export_story(ledger, clock, folder, tsa)
    finally:
        ledger.close()


def test_a_dossier_holds_everything_and_verifies(ledger: Ledger,
                                                exported_here: Exported) -> None:
    exported = exported_here
    root = exported.result.path
    names = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert {"report.html", "report.pdf", "timeline.csv", "works.csv", "certification.txt",
            "custody/audit.jsonl", "manifest.json", "manifest.tst"} <= names
    # Five detections on the blog's three hosts: five captures, their pages, five audio files.
    assert len([n for n in names if n.startswith("evidence/capture-")]) == 5
    assert len([n for n in names if n.startswith("evidence/page-")]) == 5
    assert len([n for n in names if n.startswith("audio/")]) == 5
    assert len([n for n in names if n.startswith("images/")]) == 4  # the mirror's failed
    assert any("could not be decoded" in (root / "report.html").read_text() for _ in [0])
    manifest = json.loads((root / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} == names - {"manifest.json", "manifest.tst"}
    assert all(e["payload_verified"] for e in manifest["evidence"] if e["kind"] == "capture")

    report = verify_dossier(root, ca_file=exported.tsa.ca_file)
    assert report.ok, report.problems
    assert report.files == len(names) - 2 and report.warc_records == 10
    assert report.timestamp is not None and report.audit_entries > 0

    with ledger.read() as session:
        dossier = session.execute(select(Dossier)).scalar_one()
        assert dossier.manifest_sha256 == hashlib.sha256(
            (root / "manifest.json").read_bytes()).hexdigest()
        assert dossier.timestamped_at is not None
        exported_entry = session.execute(select(AuditEntry).where(
            AuditEntry.action == "case.exported")).scalar_one()
        assert json.loads(exported_entry.details)["manifest_sha256"] == dossier.manifest_sha256


def test_the_report_pdf_renders(exported: Exported) -> None:
    pdf = (exported.result.path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf_page_count(pdf) >= 3
    first = pdf_page_pixels(pdf, 0, scale=0.5)
    assert first.shape[0] > first.shape[1]  # portrait A4
    assert (first.mean(axis=2) < 200).mean() > 0.03  # text and tables, not a blank page
    text = pdf_page_text(pdf, 0)
    assert "pirate-blog.example" in text and "Scoring breakdown" in text


def test_the_dossier_keeps_to_its_holder_and_case(exported: Exported) -> None:
    ledger = exported.ledger
    root = exported.result.path
    everything = "\n".join(p.read_text(errors="ignore") for p in root.rglob("*")
                           if p.is_file() and p.suffix in (".jsonl", ".csv", ".html", ".txt"))
    assert "Mara's Song" not in everything and "Mara Jones" not in everything
    assert "honest-host.example" not in everything  # another case of the same holder
    custody = [json.loads(line) for line in
               (root / "custody" / "audit.jsonl").read_text().splitlines()]
    whole = [e for e in custody if not e.get("redacted")]
    assert whole and all(e["holder_id"] in (exported.story.example, None) for e in whole)
    assert {e["action"] for e in whole} >= {"case.opened", "case.scored"}
    # Exporting it as another holder is refused, as if it did not exist.
    with pytest.raises(NotFoundError), EvidenceStore(exported.evidence, software="t") as store:
        export_dossier(ledger, store, exported.case_id, root.parent / "other", RULES,
                       DossierOptions(), actor="t", holder_id=exported.story.mara)


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    # A token's last byte is its signature's: the middle may fall in an embedded copy of the
    # CA certificate, which verification rightly takes from the trusted CA file instead.
    data[-1 if path.suffix == ".tst" else len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def copies(exported: Exported, tmp_path: Path) -> tuple[Path, Path]:
    return exported.result.path, tmp_path / "copies"


@pytest.mark.parametrize("name", [
    "report.pdf", "report.html", "timeline.csv", "works.csv", "certification.txt",
    "custody/audit.jsonl", "evidence/capture-{capture}.warc.gz", "audio/capture-{capture}.mp3",
    "images/detection-{detection}.png", "manifest.json", "manifest.tst"])
def test_one_byte_changed_anywhere_is_named(copies: tuple[Path, Path], exported: Exported,
                                            name: str) -> None:
    original, scratch = copies
    manifest = json.loads((original / "manifest.json").read_text())
    capture = manifest["evidence"][0]["capture_id"]
    detection = next(f["path"] for f in manifest["files"] if f["path"].startswith("images/"))
    name = name.format(capture=capture, detection=detection.split("-")[1].split(".")[0])
    root = scratch / "dossier"
    shutil.copytree(original, root)
    assert verify_dossier(root, ca_file=exported.tsa.ca_file).ok
    _flip_one_byte(root / name)
    report = verify_dossier(root, ca_file=exported.tsa.ca_file)
    assert not report.ok
    named = {"manifest.json": "manifest.tst"}.get(name, name)  # its hash is what was stamped
    assert any(p.startswith(named) or p.startswith(name) for p in report.problems), \
        report.problems


def test_a_deleted_or_added_file_is_named(copies: tuple[Path, Path]) -> None:
    original, scratch = copies
    deleted = scratch / "deleted"
    shutil.copytree(original, deleted)
    (deleted / "works.csv").unlink()
    report = verify_dossier(deleted)
    assert report.problems == ["works.csv: missing (listed in the manifest)"]
    added = scratch / "added"
    shutil.copytree(original, added)
    (added / "evidence" / "extra.warc.gz").write_bytes(b"planted")
    assert verify_dossier(added).problems == ["evidence/extra.warc.gz: added (not in the "
                                              "manifest)"]
    no_token = scratch / "no-token"
    shutil.copytree(original, no_token)
    (no_token / "manifest.tst").unlink()
    assert verify_dossier(no_token).problems == [
        "manifest.tst: missing (the manifest says it was time-stamped)"]


def test_an_edited_custody_entry_with_a_fixed_manifest_is_still_caught(
        copies: tuple[Path, Path]) -> None:
    """Re-hashing the manifest after editing the custody log does not help: the entry's own
    hash breaks, and the manifest no longer matches the time-stamp token."""
    original, scratch = copies
    root = scratch / "rewritten"
    shutil.copytree(original, root)
    custody = root / "custody" / "audit.jsonl"
    lines = custody.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if '"case.scored"' in line)
    entry = json.loads(lines[index])
    entry["details"] = entry["details"].replace('"score":', '"score":1')
    lines[index] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    custody.write_text("\n".join(lines) + "\n")
    manifest = json.loads((root / "manifest.json").read_text())
    for item in manifest["files"]:
        if item["path"] == "custody/audit.jsonl":
            item["sha256"] = hashlib.sha256(custody.read_bytes()).hexdigest()
            item["size"] = custody.stat().st_size
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    problems = verify_dossier(root).problems
    assert any("case.scored" in p and "edited" in p for p in problems), problems
    assert any(p.startswith("manifest.tst:") for p in problems), problems


def test_a_zip_dossier_verifies_and_a_changed_member_is_named(
        exported: Exported, tmp_path: Path) -> None:
    ledger = exported.ledger
    out = tmp_path / "zipped" / "case.zip"
    with EvidenceStore(exported.evidence, software="copyguard/test") as store:
        result = export_dossier(ledger, store, exported.case_id, out, RULES, DossierOptions(),
                                actor="legal:test")
    assert result.path == out and verify_dossier(out).ok
    assert not list(out.parent.glob(".*"))  # no staging or partial file left behind
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(out) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "timeline.csv":
                data = data.replace(b"captured", b"Captured", 1)
            target.writestr(info, data)
    problems = verify_dossier(tampered).problems
    assert len(problems) == 1 and problems[0].startswith("timeline.csv: changed"), problems
    with pytest.raises(DossierError, match="exists already"), \
            EvidenceStore(exported.evidence, software="copyguard/test") as store:
        export_dossier(ledger, store, exported.case_id, out, RULES, DossierOptions(),
                       actor="legal:test")


def test_a_failed_export_leaves_nothing_under_the_name(exported: Exported,
                                                       tmp_path: Path) -> None:
    ledger = exported.ledger
    def broken_pdf(html: str, base: str) -> bytes:
        raise RuntimeError("the renderer crashed")

    out = tmp_path / "failed" / "dossier"
    with pytest.raises(RuntimeError), EvidenceStore(exported.evidence,
                                                    software="copyguard/test") as store:
        export_dossier(ledger, store, exported.case_id, out, RULES,
                       DossierOptions(pdf=broken_pdf), actor="legal:test")
    assert not out.exists() and not list(out.parent.iterdir())
    with ledger.read() as session:
        paths = session.execute(select(Dossier.path)).scalars().all()
        assert str(out) not in paths


def test_verify_names_a_path_that_is_no_dossier(tmp_path: Path) -> None:
    assert verify_dossier(tmp_path / "nowhere").problems[0].endswith("no such file or directory")
    (tmp_path / "empty").mkdir()
    assert verify_dossier(tmp_path / "empty").problems[0].startswith("manifest.json: missing")
    (tmp_path / "bad.zip").write_bytes(np.zeros(10, dtype=np.uint8).tobytes())
    assert "not a dossier" in verify_dossier(tmp_path / "bad.zip").problems[0]
