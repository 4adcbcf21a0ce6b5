"""Reporting the identification benchmark: a JSON file and markdown tables in BENCHMARKS.md.

The tables go between ``<!-- identify:begin -->`` and ``<!-- identify:end -->``; a rerun
replaces them and leaves the rest of the document alone. Reads no settings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cases import (
    FALSE_POSITIVE_GOAL,
    FINGERPRINT_SPEED_GOAL,
    LATENCY_CASE,
    LATENCY_GOAL_SCALE1,
    LATENCY_GOAL_SCALE100,
    Case,
    Query,
)
from bench.catalog import CatalogPrints
from bench.corpus import Track
from bench.distractors import DISTRACTOR_SECONDS, DistractorCost
from bench.measure import Machine, Spread
from bench.repeats import SAME_AUDIO_NCC
from bench.results import CaseResult, ScaleScore
from bench.scale import WARM_UP_QUERIES, IndexBuild, ScaleRun
from fingerprints.landmarks import HASH_BITS
from fingerprints.triplets import TRIPLET_HASH_BITS

# The catalog size the memory goal speaks of, and what "fits comfortably" is taken to mean on
# the 24 GiB machine: at most half of it, leaving the rest to the workers and the page cache.
PROJECTED_HOURS = 10_000
MEMORY_GOAL_BYTES = 12 * 2**30
# A stored key: the uint32 key and the uint64 start of its entries.
_KEY_BYTES = 4 + 8

BEGIN = "<!-- identify:begin -->"
END = "<!-- identify:end -->"
_HEADER = """# Benchmarks

Figures measured by the project's benchmark scripts. Each section is written by its script;
edit the text outside the markers only.
"""


@dataclass(frozen=True)
class ScaleReport:
    run: ScaleRun
    score: ScaleScore
    distractor_cost: DistractorCost
    wall_seconds: float
    excerpts: int  # excerpts per track and case matched at this scale


@dataclass(frozen=True)
class BenchReport:
    machine: Machine
    command: str
    quick: bool
    seed: int
    tolerance: float
    workers: int
    catalog: tuple[Track, ...]
    prints: CatalogPrints
    cases: tuple[Case, ...]
    queries: tuple[Query, ...]
    skipped: tuple[str, ...]
    query_seconds: float  # making (or loading) the query set
    scales: tuple[ScaleReport, ...]
    wall_seconds: float
    library_code: str  # hash of the fingerprints package's sources at the start
    library_changed: bool  # the package's sources changed while the benchmark ran


def results_path(directory: Path, quick: bool) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return directory / f"identify-{'quick-' if quick else ''}{stamp}.json"


def write_json(report: BenchReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": dataclasses.asdict(report.machine),
        "command": report.command,
        "quick": report.quick,
        "seed": report.seed,
        "tolerance_seconds": report.tolerance,
        "workers": report.workers,
        "wall_seconds": report.wall_seconds,
        "library_code": report.library_code,
        "library_changed": report.library_changed,
        "catalog": {
            "tracks": [{"recording_id": t.recording_id, "name": t.name, "path": str(t.path),
                        "duration": t.duration} for t in report.catalog],
            "audio_seconds": report.prints.audio_seconds,
            "hashes": report.prints.hashes,
            "fingerprint_cpu_seconds": report.prints.cpu_seconds,
            "fingerprint_wall_seconds": report.prints.wall_seconds,
            "fingerprint_speed": report.prints.speed,
            "fingerprint_speed_without_decoding": report.prints.speed_without_decoding,
        },
        "cases": [dataclasses.asdict(case) for case in report.cases],
        "skipped": list(report.skipped),
        "query_set_seconds": report.query_seconds,
        "queries": [dataclasses.asdict(query) for query in report.queries],
        "scales": [{
            "scale": s.score.scale,
            "excerpts_per_track_and_case": s.excerpts,
            "wall_seconds": s.wall_seconds,
            "build": dataclasses.asdict(s.run.build),
            "distractor_cost": dataclasses.asdict(s.distractor_cost),
            "latency": dataclasses.asdict(s.run.latency),
            "latency_spread": dataclasses.asdict(Spread.of(s.run.latency.latencies)),
            "match_wall_seconds": s.run.match_wall_seconds,
            "worker_peak_rss": s.run.worker_peak_rss,
            "min_confidence": s.run.min_confidence,
            "cases": [_case_json(c) for c in s.score.cases],
            "negatives": [_case_json(c) for c in s.score.negatives],
            "wrong_answers": [dataclasses.asdict(w) for w in s.score.wrong_answers],
            "repeat_answers": [dataclasses.asdict(r) for r in s.score.repeat_answers],
            "outcomes": [dataclasses.asdict(o) for o in s.run.outcomes],
        } for s in report.scales],
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    temporary.replace(path)


def _case_json(case: CaseResult) -> dict[str, Any]:
    data = dataclasses.asdict(case)
    data.update(accuracy=case.accuracy, recording_accuracy=case.recording_accuracy,
                wrong_rate=case.wrong_rate, passed=case.passed)
    return data


def update_document(path: Path, section: str) -> None:
    """Put ``section`` between the identify markers of ``path`` (created if missing)."""
    write_section(path, section, BEGIN, END)


def write_section(path: Path, section: str, begin: str, end: str) -> None:
    """Put ``section`` between the markers ``begin`` and ``end`` of the benchmarks document
    ``path``, appended with them if they are missing (the document created if it is)."""
    text = path.read_text() if path.exists() else _HEADER
    block = f"{begin}\n{section.strip()}\n{end}"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


# -- markdown ---------------------------------------------------------------------------


def markdown(report: BenchReport) -> str:
    first = report.scales[0] if report.scales else None
    parts = [_preamble(report)]
    if first is not None:
        parts += [_goal_table(report), _case_table(report, first), _negative_table(report),
                  _scaling_table(report), _false_positive_list(report), _repeat_list(report)]
    parts.append(_method(report))
    return "\n\n".join(part for part in parts if part)


def _preamble(report: BenchReport) -> str:
    m = report.machine
    positives = sum(1 for q in report.queries if q.recording_id is not None)
    negatives = len(report.queries) - positives
    scales = ", ".join(f"x{s.score.scale}" for s in report.scales)
    kind = "**Quick smoke run (not the reference figures).** " if report.quick else ""
    if report.library_changed:
        kind += ("**The fingerprints package changed while this ran: the figures may mix "
                 "versions.** ")
    return "\n".join([
        "## Identification (`make bench-identify`)",
        "",
        f"{kind}Command: `{report.command}` — total {report.wall_seconds / 60:.1f} min "
        f"on {report.workers} worker processes.",
        "",
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.memory_bytes / 2**30:.0f} GiB RAM, "
        f"Python {m.python}. Date: {m.date}. Commit: `{m.git_commit}` (fingerprints sources "
        f"`{report.library_code}`). Load average at the "
        f"start: {m.load_average[0]:.2f} (other work on the machine skews the timings).",
        "",
        f"Catalog: {len(report.catalog)} tracks of Debian's `wesnoth-1.16-music` "
        f"({report.prints.audio_seconds / 3600:.2f} h). Queries: {positives} positive in "
        f"{len(report.cases)} cases, {negatives} negative; seed {report.seed}; "
        f"ref_start tolerance ±{report.tolerance:g} s; matcher min_confidence "
        f"{report.scales[0].run.min_confidence if report.scales else float('nan'):g}. "
        f"Scales run: {scales or 'none'}.",
    ])


def _pass(ok: bool | None) -> str:
    return "—" if ok is None else ("pass" if ok else "**FAIL**")


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def _spread(spread: Spread, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    if spread.median is None or spread.p95 is None:
        return "—"
    return f"{spread.median * scale:.{digits}f} / {spread.p95 * scale:.{digits}f}{unit}"


def _latency(report: BenchReport, scale: int) -> Spread | None:
    for s in report.scales:
        if s.score.scale == scale:
            return Spread.of(s.run.latency.latencies)
    return None


def _goal_table(report: BenchReport) -> str:
    first = report.scales[0]
    rows = ["| goal | measured | target | result |", "| --- | --- | --- | --- |"]
    speed = report.prints.speed
    rows.append(f"| fingerprinting speed (decoding included, per core) | {speed:.0f}x real time"
                f" | ≥ {FINGERPRINT_SPEED_GOAL:.0f}x | {_pass(speed >= FINGERPRINT_SPEED_GOAL)} |")
    for scale, goal in ((1, LATENCY_GOAL_SCALE1), (100, LATENCY_GOAL_SCALE100)):
        latency = _latency(report, scale)
        if latency is not None and latency.median is not None:
            rows.append(f"| median query latency, 10 s excerpt, x{scale} catalog | "
                        f"{1000 * latency.median:.1f} ms | < {1000 * goal:.0f} ms | "
                        f"{_pass(latency.median < goal)} |")
        else:
            rows.append(f"| median query latency, 10 s excerpt, x{scale} catalog | not run | "
                        f"< {1000 * goal:.0f} ms | — |")
    for s in report.scales:
        fp = s.score.negative_false_positive_rate
        rows.append(f"| negatives matched to anything, x{s.score.scale} | {_pct(fp, 2)} "
                    f"({sum(c.wrong for c in s.score.negatives)}/{s.score.negative_queries})"
                    f" | ≤ {_pct(FALSE_POSITIVE_GOAL)} | {_pass(fp <= FALSE_POSITIVE_GOAL)} |")
        wrong = s.score.positive_wrong_rate
        rows.append(f"| positives matched to a wrong recording, x{s.score.scale} | "
                    f"{_pct(wrong, 2)} ({sum(c.wrong for c in s.score.cases)}/"
                    f"{s.score.positive_queries}) | ≤ {_pct(FALSE_POSITIVE_GOAL)} | "
                    f"{_pass(wrong <= FALSE_POSITIVE_GOAL)} |")
    build = first.run.build
    hours = build.audio_seconds / 3600
    rows.append(f"| index size per hour of audio, x{build.scale} | "
                f"{_bytes(build.bytes_on_disk / hours)} on disk, "
                f"{_bytes(build.bytes_in_memory / hours)} in memory | (no goal) | — |")
    projected = projected_memory(build)
    peaks = build.peak_bytes / hours * PROJECTED_HOURS
    rows.append(f"| index memory for {PROJECTED_HOURS:,} h of music (hash tables, projected "
                f"from x{build.scale}; the peak table, {_bytes(peaks)}, is read on disk) | "
                f"{_bytes(projected)} | ≤ {_bytes(MEMORY_GOAL_BYTES)} (half of 24 GiB) | "
                f"{_pass(projected <= MEMORY_GOAL_BYTES)} |")
    passed = sum(1 for c in first.score.cases if c.passed)
    rows.append(f"| cases at their accuracy goal, x{first.score.scale} | {passed} of "
                f"{len(first.score.cases)} | all | {_pass(passed == len(first.score.cases))} |")
    return "### Goals\n\n" + "\n".join(rows)


def _case_table(report: BenchReport, first: ScaleReport) -> str:
    others = [s for s in report.scales[1:]]
    head = ("| case | n | top-1 | recording only | wrong rec. | goal | result "
            "| ref_start err. median / p95 | speed err. median / p95 | pitch err. median / p95 "
            "| match time median / p95 |")
    head += "".join(f" top-1 x{s.score.scale}{_subset_note(report, s)} |" for s in others)
    rule = "|" + " --- |" * (11 + len(others))
    rows = [head, rule]
    for number, case in enumerate(first.score.cases):
        repeats = f" ({case.repeat_correct} at a repeat)" if case.repeat_correct else ""
        row = (f"| {case.label} | {case.queries} | {_pct(case.accuracy)}{repeats} | "
               f"{_pct(case.recording_accuracy)} | {_pct(case.wrong_rate)} | "
               f"≥ {_pct(case.goal)} | {_pass(case.passed)} | "
               f"{_spread(case.ref_error, ' s')} | {_spread(case.speed_error, ' %')} | "
               f"{_spread(case.pitch_error, ' st')} | "
               f"{_spread(case.match_seconds, ' ms', 1000, 0)} |")
        for s in others:
            other = s.score.cases[number]
            mark = "" if other.passed else " ✗"
            row += f" {_pct(other.accuracy)}{mark} |"
        rows.append(row)
    return (f"### Accuracy per case (catalog x{first.score.scale})\n\n"
            "top-1: right recording and ref_start within the tolerance, or at a repeat of the "
            "same audio (counted and listed under \"Answers at a repeat\"); recording only: right "
            "recording whatever the time; wrong rec.: another recording named (false "
            "positive). Errors are absolute, over right-recording answers: ref_start in "
            "seconds, speed in percent of the true speed, pitch in semitones. Match time is "
            "the wall time of `Matcher.match` while two processes matched in parallel.\n\n"
            + "\n".join(rows))


def _subset_note(report: BenchReport, scale: ScaleReport) -> str:
    first = report.scales[0]
    if scale.excerpts >= first.excerpts:
        return ""
    return f" ({scale.excerpts} of {first.excerpts} excerpts)"


def _negative_table(report: BenchReport) -> str:
    first = report.scales[0]
    head = "| negatives | n |" + "".join(f" matched x{s.score.scale} |" for s in report.scales)
    rows = [head, "|" + " --- |" * (2 + len(report.scales))]
    for number, negative in enumerate(first.score.negatives):
        row = f"| {negative.label} | {negative.queries} |"
        for s in report.scales:
            other = s.score.negatives[number]
            row += f" {other.wrong} ({_pct(other.wrong_rate)}) |"
        rows.append(row)
    return ("### False positives on negative queries\n\n"
            "Any match on a negative is a false positive.\n\n" + "\n".join(rows))


def _scaling_table(report: BenchReport) -> str:
    size = ["| catalog | recordings | audio | hashes | index on disk (per hour) "
            "| index arrays in memory (per hour) | build | distractors computed |",
            "|" + " --- |" * 8]
    speed = ["| catalog | latency median / p95 | load average | serving RSS (before index) "
             "| worker peak RSS | queries (positive + negative) | mean top-1 | worst case "
             "| wrong rec. | negatives matched | wall time |", "|" + " --- |" * 11]
    for s in report.scales:
        b = s.run.build
        hours = b.audio_seconds / 3600
        cost = s.distractor_cost
        computed = (f"{cost.computed_recordings} in {cost.wall_seconds / 60:.1f} min"
                    if cost.computed_recordings else "none (cached or not needed)")
        size.append(
            f"| x{b.scale} | {b.recordings} | {hours:.1f} h | {b.hashes / 1e6:.1f} M | "
            f"{_bytes(b.bytes_on_disk)} ({_bytes(b.bytes_on_disk / hours)}) | "
            f"{_bytes(b.bytes_in_memory)} ({_bytes(b.bytes_in_memory / hours)}) | "
            f"{b.build_seconds:.0f} s | {computed} |")
        latency = Spread.of(s.run.latency.latencies)
        worst = s.score.worst_case
        speed.append(
            f"| x{b.scale} | {_spread(latency, ' ms', 1000, 1)} | "
            f"{s.run.latency.load_average:.2f} | {_bytes(s.run.latency.memory_after.rss)} "
            f"({_bytes(s.run.latency.memory_before_index.rss)}) | "
            f"{_bytes(s.run.worker_peak_rss)} | "
            f"{s.score.positive_queries} + {s.score.negative_queries} | "
            f"{_pct(s.score.mean_accuracy)} | "
            f"{worst.label if worst else '-'}: {_pct(worst.accuracy if worst else None)} | "
            f"{_pct(s.score.positive_wrong_rate, 2)} | "
            f"{_pct(s.score.negative_false_positive_rate, 2)} | "
            f"{s.wall_seconds / 60:.1f} min |")
    return ("### Scaling\n\n"
            "Index arrays: what the index holds were it all paged in. Build: from landmarks in "
            "memory or cache to a saved index.\n\n" + "\n".join(size) + "\n\n"
            f"Latency: one process matching the `{LATENCY_CASE}` queries one after another after "
            f"{WARM_UP_QUERIES} warm-up queries, decoding excluded (landmark extraction "
            "included); the load average when it started tells whether other work shared the "
            "two cores. Serving RSS: that process after the run, the index memory-mapped (the "
            "pages queries touched are resident); in brackets before it opened the index. "
            "Worker peak RSS: the largest of the accuracy-run processes. Wall time: the whole "
            "scale, distractors and build included.\n\n" + "\n".join(speed))


def _false_positive_list(report: BenchReport, limit: int = 15) -> str:
    lines = []
    for s in report.scales:
        for wrong in s.score.wrong_answers[:limit]:
            expected = "nothing" if wrong.expected is None else f"#{wrong.expected}"
            lines.append(f"- x{s.score.scale} `{wrong.query_id}`: expected {expected}, got "
                         f"#{wrong.returned} (confidence {wrong.confidence:.2f}, score "
                         f"{wrong.score})")
        extra = len(s.score.wrong_answers) - limit
        if extra > 0:
            lines.append(f"- x{s.score.scale}: {extra} more in the JSON results")
    if not lines:
        return "### False positives\n\nNone at any scale."
    return "### False positives\n\n" + "\n".join(lines)


def _repeat_list(report: BenchReport) -> str:
    """Answers counted correct because the reference repeats the passage (bench.repeats)."""
    lines = [f"- x{s.score.scale} `{r.query_id}`: expected ref_start {r.expected_ref:.1f} s, "
             f"found at {r.ref_start:.1f} s; reference waveform correlation of the two places "
             f"{r.correlation:.2f}" for s in report.scales for r in s.score.repeat_answers]
    head = ("### Answers at a repeat\n\nRight recording, another ref_start, and the reference "
            f"holds the same audio at both places (waveform correlation ≥ {SAME_AUDIO_NCC}, "
            "`bench/repeats.py`): counted in top-1.")
    return head + "\n\n" + ("\n".join(lines) if lines else "None.")


def _method(report: BenchReport) -> str:
    skipped = "".join(f"\n  - {note}" for note in summarise_skipped(report.skipped))
    prints = report.prints
    return "\n".join([
        "### Method",
        "",
        "- Each positive query is a random excerpt (fixed seed; five per track and case, so "
        "about 200 a case) cut with one second of context either side, altered with "
        "`fingerprints.alter`, cut to 10 s (5 s for \"5 s clean\"), written as a file (WAV, "
        "or MP3 for the codec cases) and decoded by `fingerprints.decode.decode_bytes`. "
        "Queries are made at 44.1 kHz. The ± cases are reported as one row per sign, each "
        "with all five excerpts per track.",
        "- Speed is resampling (`asetrate`: pitch and tempo together); pitch and tempo "
        "changes use rubberband with the other kept. A speed or tempo query of 10 s covers "
        "10 s x factor of the reference.",
        "- Noise SNR is measured in the band the matcher analyses (0-5.5 kHz): the noise is "
        "made by `alter.add_noise` at the matcher's 11025 Hz against the band-limited signal. "
        "Full-band white noise of the same label would be about 6 dB easier.",
        "- Embedded: a 10 s excerpt replaces seconds 25-35 of 60 s of unrelated music, level "
        "matched (half planetblupi tracks, half synthesized music).",
        "- Negatives (10 s each): espeak-ng speech in 12 voices, planetblupi music "
        "(`planetblupi-music-ogg`, not in the catalog), synthesized music of seeds no index "
        "holds, white/pink/brown noise and mains hum at -35...-10 dBFS, digital silence and "
        "16-bit dither.",
        f"- Fingerprinting speed: {prints.audio_seconds:.0f} s of catalog audio in "
        f"{prints.cpu_seconds:.1f} CPU s (process plus ffmpeg children; "
        f"{prints.speed_without_decoding:.0f}x without decoding).",
        "- Scaling: the xk catalog adds (k - 1) catalog-durations of distractors: a "
        "time-reversed copy of every catalog track (real music that must not match), then "
        f"synthesized tracks of {DISTRACTOR_SECONDS:.0f} s (`synthesize_track`, seeds from "
        "1,000,000). Their landmarks are cached under `bench/cache/` and reused by reruns.",
        f"- Not used as query sources:{skipped or ' none.'}",
    ])


def summarise_skipped(notes: Sequence[str]) -> list[str]:
    """One line per track instead of one per (track, case)."""
    by_track: dict[str, list[str]] = {}
    for note in notes:
        track, _, why = note.partition(": ")
        by_track.setdefault(track, []).append(why)
    lines = []
    for track, whys in by_track.items():
        if len(whys) == 1:
            lines.append(f"{track}: {whys[0]}")
        else:
            cases = ", ".join(why.rsplit(" ", 1)[-1] for why in whys)
            length = whys[0].split(",")[0]
            lines.append(f"{track} ({length}) is too short for: {cases}")
    return lines


def _bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def projected_memory(build: IndexBuild, hours: float = PROJECTED_HOURS) -> float:
    """Bytes of the hash tables lookups read, for ``hours`` of audio like ``build``'s: the
    per-entry arrays grow with the hours; the key tables with the key space (every pair and
    group hash present) and, for the peak table's, with the recordings. The peak table itself
    is not counted: only the verification of a few candidates a query reads it."""
    built_hours = build.audio_seconds / 3600
    entries = build.entry_bytes / built_hours * hours
    recordings = build.recordings / built_hours * hours
    keys = (2**HASH_BITS + 2**TRIPLET_HASH_BITS + recordings) * _KEY_BYTES
    return entries + keys
