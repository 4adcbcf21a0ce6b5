"""``python -m bench.compare_latency INDEX_DIR``: median latency of clean 10 s queries against
the benchmark catalog, for comparing two versions of the code on one machine at one moment.

Builds the x1 catalog index in INDEX_DIR with the code it is run with (unless one is there),
then times ``Matcher.match`` on the first clean 10 s queries of the cached benchmark query set
(``make bench-identify`` makes it), one process, after five warm-up queries. To compare with an
older commit: ``git worktree add /tmp/old COMMIT``, then ``PYTHONPATH=/tmp/old python
bench/compare_latency.py /tmp/old-index`` (this file, the old commit's packages) beside
``python -m bench.compare_latency /tmp/new-index``. Reads no settings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.corpus import CATALOG_PACKAGE, package_tracks
from fingerprints import (
    SAMPLE_RATE,
    Audio,
    FingerprintIndex,
    Matcher,
    decode_file,
    extract_landmarks,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--cache", type=Path, default=Path(__file__).parent / "cache")
    options = parser.parse_args()
    sets = sorted(options.cache.glob("queries-41t5x22c-*/manifest.json"))
    if not sets:
        parser.error(f"no benchmark query set in {options.cache}: run make bench-identify")
    manifest = json.loads(sets[0].read_text())
    queries = [q for q in manifest["queries"] if q["case"] == "clean10"][: options.queries]
    index = FingerprintIndex.open(options.index)
    if len(index) == 0:
        for track in package_tracks(CATALOG_PACKAGE):
            audio = decode_file(track.path)
            index.add(track.recording_id, extract_landmarks(audio), audio.duration)
        index.save()
        index = FingerprintIndex.open(options.index)
    matcher = Matcher(index)
    clips = [Audio(np.load(sets[0].parent / q["file"]), SAMPLE_RATE) for q in queries]
    for clip in clips[:5]:
        matcher.match(clip)
    seconds = []
    for clip in clips:
        started = time.perf_counter()
        matcher.match(clip)
        seconds.append(time.perf_counter() - started)
    print(f"{options.index}: {len(seconds)} clean 10 s queries, median "
          f"{1000 * np.median(seconds):.1f} ms, p95 {1000 * np.percentile(seconds, 95):.1f} ms")


if __name__ == "__main__":
    main()
