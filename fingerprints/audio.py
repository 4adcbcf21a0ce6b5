"""The decoded-audio value type shared by every module of the package.

Reads no settings. ``SAMPLE_RATE`` is the one rate all decoding produces by default; the
landmark and Chromaprint code accept any rate but the index should hold one rate only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# 11025 Hz keeps everything up to 5.5 kHz, where the strong, codec-robust spectral peaks of
# music live, and makes the STFT four times cheaper than at 44.1 kHz (as audfprint does).
SAMPLE_RATE: int = 11025


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        samples = np.asarray(self.samples)
        if samples.ndim != 1:
            raise ValueError(f"samples must be mono (1-D), got shape {samples.shape}")
        if samples.dtype != np.float32:
            # Frozen dataclass: normalise the dtype once here so every consumer can rely on it.
            object.__setattr__(self, "samples", samples.astype(np.float32))

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return float(len(self.samples)) / float(self.sample_rate)
