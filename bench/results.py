"""Scoring the outcomes of a scale run against what each query should have found.

A positive query is *correct* when the matcher names its recording and puts ``ref_start`` within
``tolerance`` seconds of where the query's ``query_start`` really is in that recording;
*recording-correct* when only the recording is right; *wrong* when another recording is named
(a false positive). A negative query is wrong whenever anything is named. An answer with the
right recording but another ``ref_start`` counts as correct *at a repeat* when the reference
holds the same audio at both places (:mod:`bench.repeats`: waveform correlation of at least
``SAME_AUDIO_NCC``); such answers are counted in ``repeat_correct`` and listed one by one in
``repeat_answers``, never merged silently. Reads no settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.cases import Case, Query
from bench.measure import Spread
from bench.repeats import SAME_AUDIO_NCC
from bench.scale import Outcome, ScaleRun

REPEAT_SECONDS = 10.0  # query seconds whose reference audio is compared for a repeat


@dataclass(frozen=True)
class CaseResult:
    case: str
    label: str
    goal: float | None  # top-1 accuracy to reach; None for negatives
    queries: int
    correct: int
    recording_correct: int
    wrong: int
    missed: int
    ref_error: Spread  # |ref_start error| in seconds, over recording-correct answers
    ref_bias: float | None  # median signed ref_start error, seconds
    speed_error: Spread  # |speed error| in percent of the true speed
    pitch_error: Spread  # |pitch error| in semitones
    match_seconds: Spread  # Matcher.match wall time during the (parallel) accuracy run
    repeat_correct: int = 0  # of the correct, those found at a repeat of the same audio

    @property
    def accuracy(self) -> float:
        return self.correct / self.queries if self.queries else 0.0

    @property
    def recording_accuracy(self) -> float:
        return self.recording_correct / self.queries if self.queries else 0.0

    @property
    def wrong_rate(self) -> float:
        return self.wrong / self.queries if self.queries else 0.0

    @property
    def passed(self) -> bool | None:
        return None if self.goal is None else self.accuracy >= self.goal


@dataclass(frozen=True)
class WrongAnswer:
    """A false positive, kept for the report so that it can be looked into."""

    query_id: str
    expected: int | None
    returned: int
    confidence: float
    score: int


@dataclass(frozen=True)
class RepeatAnswer:
    """A right recording found at another place that holds the same audio (counted correct)."""

    query_id: str
    expected_ref: float  # where the query's query_start is in the recording, seconds
    ref_start: float  # where the matcher put it
    correlation: float  # waveform correlation of the reference at the two places


# (recording id, seconds, other seconds, length) -> waveform correlation of the reference there
SameAudioCheck = Callable[[int, float, float, float], float]


@dataclass(frozen=True)
class ScaleScore:
    scale: int
    cases: tuple[CaseResult, ...]
    negatives: tuple[CaseResult, ...]
    wrong_answers: tuple[WrongAnswer, ...]
    repeat_answers: tuple[RepeatAnswer, ...] = ()

    @property
    def positive_queries(self) -> int:
        return sum(case.queries for case in self.cases)

    @property
    def mean_accuracy(self) -> float:
        return sum(c.correct for c in self.cases) / max(1, self.positive_queries)

    @property
    def worst_case(self) -> CaseResult | None:
        return min(self.cases, key=lambda c: c.accuracy, default=None)

    @property
    def positive_wrong_rate(self) -> float:
        return sum(c.wrong for c in self.cases) / max(1, self.positive_queries)

    @property
    def negative_queries(self) -> int:
        return sum(c.queries for c in self.negatives)

    @property
    def negative_false_positive_rate(self) -> float:
        return sum(c.wrong for c in self.negatives) / max(1, self.negative_queries)


def score(run: ScaleRun, queries: Sequence[Query], cases: Sequence[Case],
          tolerance: float, same_audio: SameAudioCheck | None = None) -> ScaleScore:
    """Every case's result; ``same_audio`` (None: no repeats recognised) checks answers with the
    right recording at another place."""
    outcome_of = {outcome.query_id: outcome for outcome in run.outcomes}
    repeats: list[RepeatAnswer] = []
    by_case: dict[str, list[tuple[Query, Outcome]]] = {}
    for query in queries:
        by_case.setdefault(query.case, []).append((query, outcome_of[query.query_id]))
    results = tuple(_case_result(case.name, case.label, case.goal,
                                 by_case.get(case.name, []), tolerance, same_audio, repeats)
                    for case in cases)
    negative_names = sorted(name for name in by_case if name.startswith("neg-"))
    negatives = tuple(_case_result(name, name.removeprefix("neg-"), None, by_case[name],
                                   tolerance, None, repeats) for name in negative_names)
    wrong = tuple(
        WrongAnswer(q.query_id, q.recording_id, o.recording_id, o.confidence, o.score)
        for pairs in by_case.values() for q, o in pairs
        if o.recording_id is not None and o.recording_id != q.recording_id
    )
    return ScaleScore(run.build.scale, results, negatives, wrong, tuple(repeats))


def _case_result(name: str, label: str, goal: float | None,
                 pairs: Sequence[tuple[Query, Outcome]], tolerance: float,
                 same_audio: SameAudioCheck | None, repeats: list[RepeatAnswer]) -> CaseResult:
    correct = recording_correct = wrong = missed = repeat_correct = 0
    ref_errors: list[float] = []
    signed: list[float] = []
    speed_errors: list[float] = []
    pitch_errors: list[float] = []
    for query, outcome in pairs:
        if outcome.recording_id is None:
            missed += 1
            continue
        if outcome.recording_id != query.recording_id:
            wrong += 1
            continue
        recording_correct += 1
        error = outcome.ref_start - query.expected_ref(outcome.query_start)
        signed.append(error)
        ref_errors.append(abs(error))
        speed_errors.append(100.0 * abs(outcome.speed - query.time_factor) / query.time_factor)
        pitch_errors.append(abs(outcome.pitch - query.pitch))
        if abs(error) <= tolerance:
            correct += 1
        elif same_audio is not None and query.recording_id is not None:
            expected = query.expected_ref(outcome.query_start)
            # The reference behind the answer: from query_start on, at most 10 s of query.
            seconds = min(REPEAT_SECONDS, query.seconds - outcome.query_start)
            correlation = same_audio(query.recording_id, expected, outcome.ref_start,
                                     seconds * query.time_factor)
            if correlation >= SAME_AUDIO_NCC:
                correct += 1
                repeat_correct += 1
                repeats.append(RepeatAnswer(query.query_id, expected, outcome.ref_start,
                                            correlation))
    signed.sort()
    return CaseResult(
        case=name, label=label, goal=goal, queries=len(pairs), correct=correct,
        recording_correct=recording_correct, wrong=wrong, missed=missed,
        ref_error=Spread.of(ref_errors),
        ref_bias=signed[len(signed) // 2] if signed else None,
        speed_error=Spread.of(speed_errors), pitch_error=Spread.of(pitch_errors),
        match_seconds=Spread.of([outcome.seconds for _, outcome in pairs]),
        repeat_correct=repeat_correct,
    )
