"""``cases export``: a case's dossier for counsel, as a directory or a zip.

It holds the report (HTML and PDF), the WARC records of every capture, page and removal
re-check (copied byte for byte from the evidence store), the captured audio, a picture of each
match, the notices as sent and the counter-notices received, ``timeline.csv``, ``works.csv``,
the chain of custody (``custody/audit.jsonl``), a draft certification, and ``manifest.json``
listing every file with its SHA-256 (time-stamped under RFC 3161 when a TSA is configured).

The dossier is built in a hidden staging directory beside the destination and moved into place
only when whole, so a crash leaves no half dossier under the name counsel will be given. The
case is scored again first, so the report shows it as it stands at export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import audit
from ledger.audit import canonical_time
from ledger.db import Ledger
from ledger.evidence import EvidenceError, EvidenceStore, WarcLocation
from ledger.models import (
    AuditHead,
    Capture,
    Case,
    CaseStatus,
    Dossier,
    RightsHolder,
    UrlCheck,
)
from ledger.urls import url_key
from litigation.cases import case_facts, get_case, rescore_case
from litigation.custody import CustodyExtract, extract
from litigation.errors import DossierError
from litigation.facts import CaseFacts, DetectionFacts, WorkFacts
from litigation.manifest import MANIFEST, TOKEN, hash_tree, manifest_bytes
from litigation.rules import LitigationRules
from litigation.scoring import Assessment, assess
from litigation.timeline import CaseEvent, Event, build_timeline, timeline_csv, works_csv
from litigation.timestamp import TimestampToken

log = logging.getLogger(__name__)
_AUDIO_SUFFIX = re.compile(r"\.(mp3|ogg|oga|opus|flac|wav|m4a|aac|webm|mp4)$", re.IGNORECASE)
_TYPES = {"audio/mpeg": ".mp3", "audio/ogg": ".ogg", "audio/flac": ".flac", "audio/wav": ".wav",
          "audio/x-wav": ".wav", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/opus": ".opus"}
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("litigation", "templates"),
                          # The report quotes what suspect sites served: escape all of it.
                          autoescape=jinja2.select_autoescape(["html.j2"]),
                          undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


class MatchPictures(Protocol):
    """Draws one detection's match (PNG) from the captured audio file; raises to leave it out,
    the message saying why."""

    def __call__(self, detection: DetectionFacts, work: WorkFacts, audio: Path) -> bytes: ...


@dataclass(frozen=True)
class DossierOptions:
    pictures: MatchPictures | None = None
    # Given manifest.json's SHA-256, a token from the time-stamping authority.
    timestamp: Callable[[bytes], TimestampToken] | None = None
    tsa_url: str = ""
    pdf: Callable[[str, str], bytes] | None = None  # (html, base directory) -> PDF
    generator: str = "copyguard"
    # Called as (step, done, total): "evidence" per capture, "pictures" per detection.
    on_progress: Callable[[str, int, int], None] | None = None


@dataclass
class ExportResult:
    path: Path
    dossier_id: int
    files: int
    bytes: int
    manifest_sha256: str
    timestamped_at: datetime | None
    notes: list[str] = field(default_factory=list)  # what could not be included, and why


@dataclass
class _Built:
    evidence: list[dict[str, Any]] = field(default_factory=list)
    evidence_files: dict[int, str] = field(default_factory=dict)  # capture id -> file
    audio: dict[int, Path] = field(default_factory=dict)  # capture id -> staged audio file
    pictures: dict[int, str] = field(default_factory=dict)
    picture_notes: dict[int, str] = field(default_factory=dict)
    notice_files: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def export_dossier(ledger: Ledger, evidence: EvidenceStore, case_id: int, out: Path,
                   rules: LitigationRules, options: DossierOptions, *, actor: str,
                   holder_id: int | None = None) -> ExportResult:
    out = out.absolute()
    if out.exists():
        raise DossierError(f"{out} exists already: a dossier is never written over another")
    with ledger.write() as session:
        case = get_case(session, case_id, holder_id)
        if case.status == CaseStatus.MERGED:
            raise DossierError(f"case {case_id} was merged into case {case.merged_into_id}: "
                               "export that one")
        rescore_case(session, ledger.clock, case, rules, actor=actor)
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        with ledger.read() as session:
            manifest, built, token = _build(session, ledger, evidence, case_id, staging, rules,
                                            options, actor)
        digest = hashlib.sha256(manifest).hexdigest()
        files = sum(1 for p in staging.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        _move_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with ledger.write() as session:
        case = get_case(session, case_id)
        row = Dossier(case_id=case.id, holder_id=case.holder_id, created_at=ledger.clock.now(),
                      created_by=actor, path=str(out), manifest_sha256=digest, files=files,
                      bytes=size, timestamped_at=token.gen_time if token else None)
        session.add(row)
        session.flush()
        audit.append(session, ledger.clock, actor=actor, action="case.exported",
                     entity_type="case", entity_id=case.id, holder_id=case.holder_id,
                     details={"dossier_id": row.id, "path": str(out), "manifest_sha256": digest,
                              "files": files, "bytes": size,
                              "timestamped_at": token.gen_time.isoformat() if token else None,
                              "notes": built.notes})
        dossier_id = row.id
    return ExportResult(out, dossier_id, files, size, digest,
                        token.gen_time if token else None, built.notes)


def _move_into_place(staging: Path, out: Path) -> None:
    if out.suffix.lower() != ".zip":
        os.replace(staging, out)
        return
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                archive.write(path, path.relative_to(staging).as_posix())
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _build(session: Session, ledger: Ledger, evidence: EvidenceStore, case_id: int,
           staging: Path, rules: LitigationRules, options: DossierOptions,
           actor: str) -> tuple[bytes, _Built, TimestampToken | None]:
    case = get_case(session, case_id)
    holder = session.get(RightsHolder, case.holder_id)
    assert holder is not None
    facts = case_facts(session, case, rules)
    assessment = assess(facts, rules, ledger.clock.now().date())
    exported_at = canonical_time(ledger.clock.now())
    built = _Built()
    _copy_evidence(session, evidence, facts, staging, built, options)
    _draw_pictures(facts, staging, options, built)
    _write_notices(facts, staging, built)
    custody = _custody(session, case, facts)
    _write(staging / "custody" / "audit.jsonl", "".join(line + "\n" for line in custody.lines))
    events = _case_events(custody)
    timeline = build_timeline(facts, events)
    _write(staging / "timeline.csv", timeline_csv(timeline))
    _write(staging / "works.csv", works_csv(facts, assessment))
    context = _report_context(session, case, holder, facts, assessment, timeline, built,
                              exported_at, actor, options)
    context["custody"] = custody
    _write(staging / "certification.txt",
           _ENV.get_template("certification.txt.j2").render(**context))
    html = _ENV.get_template("report.html.j2").render(**context)
    _write(staging / "report.html", html)
    if options.pdf is not None:
        (staging / "report.pdf").write_bytes(options.pdf(html, str(staging)))
    head = session.get(AuditHead, 1)
    header = {
        "generator": options.generator, "created_at": exported_at, "created_by": actor,
        "case": {"id": case.id, "name": case.name, "status": case.status, "track": case.track,
                 "score": case.score, "hosts": [h.host for h in case.hosts]},
        "holder": {"id": holder.id, "name": holder.name},
        "audit": {"file": "custody/audit.jsonl", "entries": custody.entries,
                  "redacted": custody.redacted, "first_seq": custody.first_seq,
                  "last_seq": custody.last_seq, "last_hash": custody.last_hash,
                  "ledger_head": {"seq": head.seq, "hash": head.hash} if head else None},
        "evidence": built.evidence, "notes": built.notes,
        "timestamp": {"requested": options.timestamp is not None,
                      "tsa_url": options.tsa_url or None, "token": TOKEN},
    }
    manifest = manifest_bytes(header, hash_tree(staging))
    (staging / MANIFEST).write_bytes(manifest)
    token = None
    if options.timestamp is not None:
        token = options.timestamp(hashlib.sha256(manifest).digest())
        (staging / TOKEN).write_bytes(token.der)
    return manifest, built, token


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _copy_record(evidence: EvidenceStore, location: WarcLocation, target: Path) -> None:
    """The record's gzip member, byte for byte: a WARC file of its own whose digests hold."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(evidence.warc_path(location.file), "rb") as source, open(target, "wb") as out:
        source.seek(location.offset)
        remaining = location.length
        while remaining > 0:
            chunk = source.read(min(remaining, 1 << 20))
            if not chunk:
                raise EvidenceError(f"{location.file} ends before offset "
                                    f"{location.offset + location.length}")
            out.write(chunk)
            remaining -= len(chunk)


def _audio_name(capture: Capture) -> str:
    match = _AUDIO_SUFFIX.search(urlsplit(capture.url).path)
    if match:
        return f"capture-{capture.id}.{match.group(1).lower()}"
    kind = (capture.content_type or "").split(";")[0].strip().lower()
    return f"capture-{capture.id}{_TYPES.get(kind, '.bin')}"


def _copy_evidence(session: Session, evidence: EvidenceStore, facts: CaseFacts, staging: Path,
                   built: _Built, options: DossierOptions) -> None:
    captures = sorted({d.capture_id for d in facts.detections})
    for number, capture_id in enumerate(captures, start=1):
        if options.on_progress is not None:
            options.on_progress("evidence", number - 1, len(captures))
        capture = session.get(Capture, capture_id)
        assert capture is not None
        location = WarcLocation(capture.warc_file, capture.warc_offset, capture.warc_length)
        name = f"evidence/capture-{capture.id}.warc.gz"
        try:
            _copy_record(evidence, location, staging / name)
            verified = evidence.verify(location, capture.sha256)
            record = evidence.read_record(location)
            audio = staging / "audio" / _audio_name(capture)
            audio.parent.mkdir(parents=True, exist_ok=True)
            with record.open_payload() as payload, open(audio, "wb") as out:
                shutil.copyfileobj(payload, out)
        except (OSError, EvidenceError, ValueError) as exc:
            built.notes.append(f"capture {capture.id} ({capture.url}): evidence not readable "
                               f"from {capture.warc_file}: {exc}")
            (staging / name).unlink(missing_ok=True)
            continue
        if not verified:
            built.notes.append(f"capture {capture.id}: the stored payload no longer matches "
                               f"SHA-256 {capture.sha256}")
        built.evidence_files[capture.id] = name
        built.audio[capture.id] = audio
        built.evidence.append({
            "file": name, "kind": "capture", "capture_id": capture.id, "url": capture.url,
            "source": capture.warc_file, "offset": capture.warc_offset,
            "length": capture.warc_length, "record_id": capture.warc_record_id,
            "payload_sha256": capture.sha256, "payload_verified": verified,
            "fetched_at": canonical_time(capture.fetched_at), "ip_address": capture.ip_address,
            "audio": audio.relative_to(staging).as_posix()})
        if capture.page_warc_file and capture.page_warc_offset is not None \
                and capture.page_warc_length:
            page = WarcLocation(capture.page_warc_file, capture.page_warc_offset,
                                capture.page_warc_length)
            page_name = f"evidence/page-{capture.id}.warc.gz"
            try:
                _copy_record(evidence, page, staging / page_name)
            except (OSError, EvidenceError, ValueError) as exc:
                built.notes.append(f"capture {capture.id}: page record not readable: {exc}")
                (staging / page_name).unlink(missing_ok=True)
            else:
                built.evidence.append({
                    "file": page_name, "kind": "page", "capture_id": capture.id,
                    "url": capture.page_url, "source": page.file, "offset": page.offset,
                    "length": page.length})
    _copy_checks(session, evidence, facts, staging, built)


def _copy_checks(session: Session, evidence: EvidenceStore, facts: CaseFacts, staging: Path,
                 built: _Built) -> None:
    for check in _url_checks(session, facts):
        if not check.warc_file or check.warc_offset is None or not check.warc_length:
            continue
        location = WarcLocation(check.warc_file, check.warc_offset, check.warc_length)
        name = f"evidence/check-{check.id}.warc.gz"
        try:
            _copy_record(evidence, location, staging / name)
        except (OSError, EvidenceError, ValueError) as exc:
            built.notes.append(f"re-check {check.id} ({check.url}): record not readable: {exc}")
            (staging / name).unlink(missing_ok=True)
            continue
        built.evidence.append({
            "file": name, "kind": "re-check", "check_id": check.id, "url": check.url,
            "checked_at": canonical_time(check.checked_at), "http_status": check.http_status,
            "source": check.warc_file, "offset": check.warc_offset,
            "length": check.warc_length, "record_id": check.warc_record_id})


def _url_checks(session: Session, facts: CaseFacts) -> list[UrlCheck]:
    """The removal re-checks of the case's noticed URLs."""
    keys = sorted({url_key(i.url) for n in facts.notices for i in n.items})
    if not keys:
        return []
    return list(session.execute(select(UrlCheck).where(UrlCheck.url_key.in_(keys))
                                .order_by(UrlCheck.id)).scalars())


def _draw_pictures(facts: CaseFacts, staging: Path, options: DossierOptions,
                   built: _Built) -> None:
    works = {w.recording_id: w for w in facts.works}
    for number, detection in enumerate(facts.detections):
        if options.on_progress is not None:
            options.on_progress("pictures", number, len(facts.detections))
        audio = built.audio.get(detection.capture_id)
        if options.pictures is None:
            built.picture_notes[detection.detection_id] = "pictures were not asked for"
            continue
        if audio is None:
            built.picture_notes[detection.detection_id] = "the captured audio is not readable"
            continue
        try:
            png = options.pictures(detection, works[detection.recording_id], audio)
        except Exception as exc:  # a picture is an illustration: its failure loses no evidence
            log.warning("no picture for detection %s: %s", detection.detection_id, exc)
            built.picture_notes[detection.detection_id] = str(exc) or type(exc).__name__
            continue
        name = f"images/detection-{detection.detection_id}.png"
        (staging / "images").mkdir(exist_ok=True)
        (staging / name).write_bytes(png)
        built.pictures[detection.detection_id] = name


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


def _write_notices(facts: CaseFacts, staging: Path, built: _Built) -> None:
    for notice in facts.notices:
        stem = f"notices/{_safe(notice.reference)}"
        if notice.body_text:
            _write(staging / f"{stem}.txt",
                   f"Subject: {notice.subject or ''}\nTo: {notice.recipient}\n"
                   f"Sent: {notice.sent_at.isoformat() if notice.sent_at else 'not sent'}\n\n"
                   f"{notice.body_text}")
            built.notice_files[notice.notice_id] = f"{stem}.txt"
        if notice.body_html:
            _write(staging / f"{stem}.html", notice.body_html)
    for counter in facts.counters:
        _write(staging / f"notices/counter-notice-{counter.counter_id}.txt",
               f"Received: {counter.received_at.isoformat()}\nFrom: {counter.sender or ''}\n"
               f"Rule: {counter.rule}\n\n{counter.message}")


def _custody(session: Session, case: Case, facts: CaseFacts) -> CustodyExtract:
    merged = session.execute(select(Case.id).where(Case.merged_into_id == case.id)).scalars()
    notices = [n.notice_id for n in facts.notices]
    checks = [check.id for check in _url_checks(session, facts)]
    return extract(session, case.holder_id, {
        "case": [case.id, *merged], "holder": [case.holder_id],
        "detection": [d.detection_id for d in facts.detections],
        "capture": [d.capture_id for d in facts.detections],
        "recording": [w.recording_id for w in facts.works],
        "notice": notices, "url_check": checks})


def _case_events(custody: CustodyExtract) -> list[CaseEvent]:
    events = []
    for line in custody.lines:
        entry = json.loads(line)
        if entry.get("redacted") or entry.get("entity_type") != "case":
            continue
        details = json.loads(entry["details"])
        if entry["action"] == "case.scored":
            detail = f"score {details.get('score')}, track {details.get('track')}"
        else:
            detail = "; ".join(f"{k} {v}" for k, v in details.items()
                               if k in ("from", "to", "reason", "assignee", "into", "text",
                                        "deadline", "days_before") and v not in (None, ""))
        events.append(CaseEvent(datetime.fromisoformat(entry["at"]), entry["action"],
                                entry["actor"], detail, entry["seq"]))
    return events


def _report_context(session: Session, case: Case, holder: RightsHolder, facts: CaseFacts,
                    assessment: Assessment, timeline: list[Event], built: _Built,
                    exported_at: str,
                    actor: str, options: DossierOptions) -> dict[str, Any]:
    seen = [d.fetched_at for d in facts.detections]
    statuses: dict[str, int] = {}
    for notice in facts.notices:
        statuses[notice.status] = statuses.get(notice.status, 0) + 1
    return {
        "case": case, "holder": holder, "facts": facts, "hosts": case.hosts,
        "damages": case.damages, "timeline": timeline, "exported_at": exported_at,
        "exported_by": actor, "urls": len({d.url for d in facts.detections}),
        "first_seen": min(seen).date() if seen else "-",
        "last_seen": max(seen).date() if seen else "-",
        "notice_statuses": ", ".join(f"{v} {k}" for k, v in sorted(statuses.items())) or "none",
        "works_by_id": {w.recording_id: w for w in assessment.works},
        "titles": {w.recording_id: w.title for w in facts.works},
        "pictures": built.pictures, "picture_notes": built.picture_notes,
        "evidence_files": built.evidence_files, "notice_files": built.notice_files,
        "timestamped": options.timestamp is not None, "tsa_url": options.tsa_url,
        "evidence_count": len(built.evidence), "audio_count": len(built.audio),
    }
