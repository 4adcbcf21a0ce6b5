"""Results of ``make bench-shared-index`` and their markdown for BENCHMARKS.md.

The section goes between ``<!-- shared-index:begin -->`` and ``<!-- shared-index:end -->``; a
rerun replaces only that text (the identify section has markers of its own). Reads no settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.cases import Case, Query
from bench.measure import Machine, Spread
from bench.report import write_section
from fingerprints import Match

BEGIN = "<!-- shared-index:begin -->"
END = "<!-- shared-index:end -->"


@dataclass(frozen=True)
class Answer:
    """What one engine answered for one query."""

    query_id: str
    case: str
    recording_id: int | None  # None: no match of at least min_confidence
    ref_start: float
    seconds: float  # wall time of Matcher.match_landmarks
    correct: bool  # right recording and ref_start within the tolerance; negatives: no match
    # Of ``seconds``: in lookup, in lookup_quads (0 when the pairs sufficed), in other index calls
    index_seconds: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def of(cls, query: Query, match: Match | None, seconds: float, tolerance: float,
           index_seconds: tuple[float, float, float]) -> Answer:
        if match is None:
            return cls(query.query_id, query.case, None, 0.0, seconds,
                       query.recording_id is None, index_seconds)
        right = (match.recording_id == query.recording_id and
                 abs(match.ref_start - query.expected_ref(match.query_start)) <= tolerance)
        return cls(query.query_id, query.case, match.recording_id, match.ref_start, seconds,
                   right, index_seconds)

    def same_as(self, other: Answer) -> bool:
        return (self.recording_id == other.recording_id
                and abs(self.ref_start - other.ref_start) < 0.05)


@dataclass(frozen=True)
class EngineRun:
    name: str
    build_seconds: float  # adding every recording (and saving, for the local index)
    settle_seconds: float  # PostgreSQL: VACUUM ANALYZE after loading
    bytes: int  # files on disk, or tables with their indexes
    hashes: int  # pair hashes held (IndexStats.hashes)
    answers: tuple[Answer, ...]


@dataclass(frozen=True)
class ScaleResult:
    scale: int
    recordings: int
    audio_seconds: float
    engines: tuple[EngineRun, EngineRun]  # local, PostgreSQL
    load_average: float  # 1-minute load when matching started
    tables: dict[str, tuple[int, int, int]]  # PostgreSQL table -> (rows, heap, index bytes)
    extraction: tuple[float, ...]  # seconds extracting each query's landmarks


@dataclass(frozen=True)
class Report:
    machine: Machine
    command: str
    server: str
    catalog_tracks: int
    catalog_seconds: float
    cases: tuple[Case, ...]
    queries: tuple[Query, ...]
    scales: tuple[ScaleResult, ...]
    tolerance: float
    wall_seconds: float


def update_document(path: Path, section: str) -> None:
    """Put ``section`` between the shared-index markers of ``path`` (appended if missing)."""
    write_section(path, section, BEGIN, END)


def markdown(report: Report) -> str:
    parts = [_preamble(report), _build_table(report), _table_sizes(report),
             _latency_table(report), _index_time_table(report), _accuracy_table(report),
             _method(report)]
    return "\n\n".join(part for part in parts if part) + "\n"


def _preamble(report: Report) -> str:
    m = report.machine
    loads = ", ".join(f"x{s.scale}: {s.load_average:.2f}" for s in report.scales)
    positives = sum(1 for q in report.queries if q.recording_id is not None)
    negatives = len(report.queries) - positives
    return "\n".join([
        "## Shared index: local replica against PostgreSQL (`make bench-shared-index`)",
        "",
        f"Command: `{report.command}` — total {report.wall_seconds / 60:.1f} min.",
        "",
        f"Machine: {m.cpu_model}, {m.cores} cores, {_bytes(m.memory_bytes)} RAM, Python "
        f"{m.python}. Date: {m.date}. Commit: `{m.git_commit}`. Load average at the start: "
        f"{m.load_average[0]:.2f} / {m.load_average[1]:.2f} / {m.load_average[2]:.2f} (1 / 5 "
        f"/ 15 min); when matching began, {loads} (2 cores: above 1 means other work shared "
        "them, and the timings are that much slower).",
        "",
        f"Database: {report.server} on the same machine, over TCP to 127.0.0.1, the engine "
        "made as the ledger makes it (pool pre-ping on).",
        "",
        f"Catalog: {report.catalog_tracks} tracks of Debian's `wesnoth-1.16-music` "
        f"({report.catalog_seconds / 3600:.2f} h), grown for larger scales with the "
        "distractors of `make bench-identify` (time-reversed catalog tracks, then synthesized "
        f"tracks). Queries: {positives} positive in {len(report.cases)} cases "
        f"({', '.join(c.label for c in report.cases)}), {negatives} negative (synthesized "
        "music and noise).",
    ])


def _build_table(report: Report) -> str:
    rows = ["### Build and storage", "",
            "| catalog | recordings | audio | pair hashes | engine | build | storage | "
            "per hour of audio |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for scale in report.scales:
        hours = scale.audio_seconds / 3600
        for engine in scale.engines:
            build = f"{engine.build_seconds:.1f} s"
            if engine.settle_seconds:
                build += f" + {engine.settle_seconds:.1f} s VACUUM ANALYZE"
            rows.append(f"| x{scale.scale} | {scale.recordings} | {hours:.1f} h | "
                        f"{engine.hashes / 1e6:.2f} M | {engine.name} | {build} | "
                        f"{_bytes(engine.bytes)} | {_bytes(engine.bytes / hours)} |")
    return "\n".join(rows)


def _table_sizes(report: Report) -> str:
    if not report.scales:
        return ""
    largest = report.scales[-1]
    rows = [f"PostgreSQL tables at x{largest.scale} (`pg_table_size` / `pg_indexes_size`):", "",
            "| table | rows | heap | indexes |", "| --- | --- | --- | --- |"]
    for name, (count, heap, indexes) in sorted(largest.tables.items()):
        shown = f"{count / 1e6:.2f} M" if count >= 100_000 else f"{count:,}"
        rows.append(f"| `{name}` | {shown} | {_bytes(heap)} | {_bytes(indexes)} |")
    return "\n".join(rows)


def _latency_table(report: Report) -> str:
    rows = ["### Query latency", "",
            "`Matcher.match_landmarks` per query, one process, engines in turn; landmark "
            "extraction excluded (it is the same for both).", "",
            "| catalog | case | n | local replica median / p95 | PostgreSQL median / p95 | "
            "extraction median |",
            "| --- | --- | --- | --- | --- | --- |"]
    for scale in report.scales:
        local, database = scale.engines
        extraction = Spread.of(scale.extraction)
        for case, label in _cases(report):
            mine = [a.seconds for a in local.answers if case in (None, a.case)]
            theirs = [a.seconds for a in database.answers if case in (None, a.case)]
            rows.append(f"| x{scale.scale} | {label} | {len(mine)} | {_ms(Spread.of(mine))} | "
                        f"{_ms(Spread.of(theirs))} | "
                        f"{_ms(extraction, p95=False) if case is None else ''} |")
    return "\n".join(rows)


def _index_time_table(report: Report) -> str:
    rows = ["Of that, the time spent in the index, median / p95 over all queries (the "
            "peak-group lookup over the queries that needed it: those the pair landmarks did "
            "not match with confidence):", "",
            "| catalog | engine | pair lookup | peak-group lookup (queries) | other index calls |",
            "| --- | --- | --- | --- | --- |"]
    for scale in report.scales:
        for engine in scale.engines:
            pairs = Spread.of([a.index_seconds[0] for a in engine.answers])
            used = [a.index_seconds[1] for a in engine.answers if a.index_seconds[1] > 0]
            other = Spread.of([a.index_seconds[2] for a in engine.answers])
            rows.append(f"| x{scale.scale} | {engine.name} | {_ms(pairs)} | "
                        f"{_ms(Spread.of(used))} ({len(used)}) | {_ms(other)} |")
    return "\n".join(rows)


def _accuracy_table(report: Report) -> str:
    rows = ["### Accuracy and agreement", "",
            f"top-1: right recording with ref_start within ±{report.tolerance:g} s (negatives: "
            "no match). Same answer: both name the same recording (or none) with ref_start "
            "within 0.05 s.", "",
            "| catalog | case | n | top-1 local replica | top-1 PostgreSQL | same answer |",
            "| --- | --- | --- | --- | --- | --- |"]
    for scale in report.scales:
        local, database = scale.engines
        for case, label in _cases(report):
            pairs = [(a, b) for a, b in zip(local.answers, database.answers, strict=True)
                     if case in (None, a.case)]
            n = len(pairs)
            rows.append(
                f"| x{scale.scale} | {label} | {n} | {_count(sum(a.correct for a, _ in pairs), n)}"
                f" | {_count(sum(b.correct for _, b in pairs), n)} | "
                f"{_count(sum(a.same_as(b) for a, b in pairs), n)} |")
    return "\n".join(rows)


def _method(report: Report) -> str:
    return "\n".join([
        "### Method", "",
        "- Local replica: `FingerprintIndex`, every recording added then saved (that is the "
        "build time), reopened memory-mapped for the queries; storage is its files on disk.",
        "- PostgreSQL: `SqlFingerprintIndex.add` per recording (binary COPY of its postings, one "
        "transaction each, as a catalog import or a sync does), then `VACUUM ANALYZE`; storage is "
        "`pg_total_relation_size` of its tables (heap, btrees, TOAST).",
        "- Each query's landmarks are extracted once; both engines match them with the same "
        "`Matcher` defaults, in turn, the first one alternating; five untimed queries warm both "
        "up first. The PostgreSQL figures include the round trips: one lookup per family, and "
        "small reads (recording count, slot data, peaks of the candidates verified).",
        "- PostgreSQL runs on the same two cores as the matcher (and as whatever else ran: see "
        "the load average). On a database machine of its own the round trips would be longer "
        "but its CPU not shared; the lookups' own cost is the index scans, not the wire.",
    ])


def _cases(report: Report) -> list[tuple[str | None, str]]:
    cases: list[tuple[str | None, str]] = [(c.name, c.label) for c in report.cases]
    if any(q.recording_id is None for q in report.queries):
        cases += [(name, f"negative: {name[4:]}") for name in
                  sorted({q.case for q in report.queries if q.recording_id is None})]
    return [*cases, (None, "all")]


def _ms(spread: Spread, p95: bool = True) -> str:
    if spread.median is None or spread.p95 is None:
        return "—"
    if not p95:
        return f"{1000 * spread.median:.1f} ms"
    return f"{1000 * spread.median:.1f} / {1000 * spread.p95:.1f} ms"


def _count(hits: int, total: int) -> str:
    return f"{100 * hits / total:.1f} % ({hits}/{total})" if total else "—"


def _bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{count:.0f} B"
        count /= 1024
    return f"{count:.1f} GiB"

