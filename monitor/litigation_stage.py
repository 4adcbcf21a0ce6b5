"""The litigation stage as the CLI (and later the daemon) runs it: the case queue refreshed
from the ledger, and dossiers exported with pictures of each match, a PDF and (where a TSA is
configured) an RFC 3161 time-stamp. Builds the stage's rules and tools from ``[litigation]``;
the logic is the litigation package's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from fingerprints.decode import decode_file
from ledger.models import Case
from litigation.cases import RefreshReport, refresh_cases
from litigation.dossier import DossierOptions, ExportResult, export_dossier
from litigation.facts import DetectionFacts, WorkFacts
from litigation.rules import LitigationRules, Weights
from litigation.timestamp import TimestampToken, request_timestamp
from monitor.app import App

# Decoded for a picture: the matched stretch and a little around it, at a rate that shows the
# spectrum up to 11 kHz.
PICTURE_RATE = 22_050
PICTURE_SECONDS = 30.0


def litigation_rules(built: App) -> LitigationRules:
    s = built.settings.litigation
    return LitigationRules(
        weights=Weights(
            work=s.weight_work, eligible_work=s.weight_eligible_work,
            ignored_notice=s.weight_ignored_notice, reupload=s.weight_reupload,
            removed_after_notice=s.weight_removed_after_notice,
            counter_notice=s.weight_counter_notice, month_active=s.weight_month_active,
            reach=s.weight_reach, evidence=s.weight_evidence, urgency=s.weight_urgency),
        territory=s.territory, link_by_ip=s.link_by_ip,
        shared_hosts=frozenset(h.lower() for h in s.shared_hosts),
        reminder_days=tuple(s.reminder_days))


def refresh(built: App, holder_id: int | None = None) -> RefreshReport:
    with built.ledger.write() as session:
        return refresh_cases(session, built.clock, litigation_rules(built), actor=built.actor,
                             holder_id=holder_id)


class _Pictures:
    """The match picture of a detection: the captured audio beside the catalog's reference."""

    def __init__(self, built: App) -> None:
        self.built = built

    def __call__(self, detection: DetectionFacts, work: WorkFacts, audio: Path) -> bytes:
        from litigation.match_picture import render_match_picture  # matplotlib: on use only

        if not work.reference_audio:
            raise ValueError("the catalog kept no reference audio for this recording")
        limits = self.built.decode_limits
        end = detection.query_start + PICTURE_SECONDS + 1.0
        query = decode_file(audio, sample_rate=PICTURE_RATE, max_seconds=end,
                            timeout=limits.timeout_seconds,
                            memory_limit_mb=limits.memory_limit_mb)
        reference = self.built.references.load(work.reference_audio)
        return render_match_picture(
            query, reference, query_start=detection.query_start, query_end=detection.query_end,
            ref_start=detection.ref_start, speed=detection.speed,
            pitch_semitones=detection.pitch_semitones, max_seconds=PICTURE_SECONDS,
            title=f"detection {detection.detection_id}: {work.title}")


def dossier_options(built: App, *, pdf: bool = True,
                    on_progress: Callable[[str, int, int], None] | None = None
                    ) -> DossierOptions:
    s = built.settings.litigation

    def stamp(digest: bytes) -> TimestampToken:
        return request_timestamp(digest, s.tsa_url, timeout=s.tsa_timeout_seconds,
                                 client=built.http, username=s.tsa_username,
                                 password=s.tsa_password)

    return DossierOptions(pictures=_Pictures(built), timestamp=stamp if s.tsa_url else None,
                          tsa_url=s.tsa_url, pdf=_pdf if pdf else None,
                          generator="copyguard 0.1.0", on_progress=on_progress)


def _pdf(html: str, base: str) -> bytes:
    # WeasyPrint (and matplotlib above) take over a second to import: only when exporting,
    # not on every `copyguard` command.
    from litigation.pdf import html_to_pdf

    return html_to_pdf(html, base_url=base)


def default_dossier_path(built: App, case: Case) -> Path:
    stamp = built.clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return built.settings.dossier_dir / f"case-{case.id}-{stamp}.zip"


def export(built: App, case_id: int, out: Path, *, holder_id: int | None = None,
           pdf: bool = True,
           on_progress: Callable[[str, int, int], None] | None = None) -> ExportResult:
    with built.evidence() as evidence:
        return export_dossier(built.ledger, evidence, case_id, out, litigation_rules(built),
                              dossier_options(built, pdf=pdf, on_progress=on_progress),
                              actor=built.actor, holder_id=holder_id)


