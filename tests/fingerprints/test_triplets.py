"""Speed/pitch/tempo-invariant peak-group hashes: invariance, and query probes covering them."""

from __future__ import annotations

import numpy as np

from fingerprints.triplets import (
    DEFAULT_TRIPLET_PARAMS,
    make_triplets,
    query_probes,
    reference_hashes,
)


def random_peaks(seed: int, count: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(0, 20 * count // 30, count))
    bins = rng.uniform(20.0, 300.0, count)
    order = np.lexsort((bins, times))
    return times[order], bins[order]


def reference_keys(times: np.ndarray, bins: np.ndarray) -> set[tuple[int, int]]:
    params = DEFAULT_TRIPLET_PARAMS
    groups = make_triplets(times, bins, params, params.reference_fanout)
    return set(zip(reference_hashes(groups, params).tolist(), groups.anchors.tolist(),
                   strict=True))


def test_scaled_peaks_keep_most_hashes_among_the_query_probes() -> None:
    params = DEFAULT_TRIPLET_PARAMS
    times, bins = random_peaks(1)
    stored = reference_keys(times, bins)
    for time_factor, freq_factor in ((1.0, 1.0), (1.25, 1.25), (0.9, 1.0), (1.0, 2 ** (2 / 12))):
        # The query plays `time_factor` faster: its frame t is reference frame t * factor.
        query_times = np.rint(times / time_factor).astype(np.int64)
        groups = make_triplets(query_times, bins * freq_factor, params, params.query_fanout)
        probes, rows = query_probes(groups, params)
        found = set(zip(probes.tolist(), groups.anchors[rows].tolist(), strict=True))
        assert len(stored & found) >= 0.6 * len(stored), (time_factor, freq_factor)


def test_low_peaks_take_no_part() -> None:
    times, bins = random_peaks(2)
    groups = make_triplets(times, np.minimum(bins, 10.0), DEFAULT_TRIPLET_PARAMS, 4)
    assert len(groups) == 0
