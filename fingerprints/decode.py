"""Decode any audio file or byte string to mono float32 PCM with ffmpeg in a subprocess.

Untrusted input (anything a crawler fetched) is decoded by ``ffmpeg`` in a child process with a
wall-clock time limit and an address-space limit (``RLIMIT_AS``) set in the child, so a hostile
or broken file can neither hang nor exhaust the daemon. Reads no settings: the limits are
keyword arguments.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Sequence

import numpy as np

from fingerprints.audio import SAMPLE_RATE, Audio
from fingerprints.errors import DecodeError

# How much of ffmpeg's stderr goes into a DecodeError message.
_STDERR_TAIL_CHARS = 600


def decode_file(
    path: str | os.PathLike[str],
    *,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float | None = None,
    timeout: float = 120.0,
    memory_limit_mb: int = 1024,
    min_seconds: float = 0.5,
) -> Audio:
    """Decode the first audio stream of the file at ``path``.

    ``sample_rate``: output rate in Hz (ffmpeg resamples). ``max_seconds``: decode at most this
    much from the start (``-t``), which also bounds the memory the result needs. ``timeout``:
    seconds ffmpeg may run before it is killed. ``memory_limit_mb``: address-space limit of the
    ffmpeg process. ``min_seconds``: less decoded audio than this is an error (a file cut off
    after its first frames). Raises :class:`DecodeError` if the file is missing, unreadable,
    holds no or too little audio, or a limit is hit.
    """
    filename = os.fspath(path)
    if not os.path.exists(filename):
        raise DecodeError(f"no such file: {filename}")
    if not os.path.isfile(filename):
        raise DecodeError(f"not a regular file: {filename}")
    return _run_ffmpeg(
        filename,
        None,
        sample_rate=sample_rate,
        max_seconds=max_seconds,
        timeout=timeout,
        memory_limit_mb=memory_limit_mb,
        min_seconds=min_seconds,
        label=filename,
    )


def decode_bytes(
    data: bytes,
    *,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float | None = None,
    timeout: float = 120.0,
    memory_limit_mb: int = 1024,
    min_seconds: float = 0.5,
) -> Audio:
    """Decode an in-memory file (e.g. a download) fed to ffmpeg through its standard input.

    Same keyword arguments and errors as :func:`decode_file`.
    """
    if not data:
        raise DecodeError("<bytes>: empty input")
    return _run_ffmpeg(
        "pipe:0",
        data,
        sample_rate=sample_rate,
        max_seconds=max_seconds,
        timeout=timeout,
        memory_limit_mb=memory_limit_mb,
        min_seconds=min_seconds,
        label="<bytes>",
    )


def _ffmpeg_command(source: str, sample_rate: int, max_seconds: float | None) -> list[str]:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise DecodeError("ffmpeg is not installed (not found on PATH)")
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", source]
    if max_seconds is not None:
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        command += ["-t", f"{max_seconds:.6f}"]
    # -map 0:a:0: only the first audio stream (ignore cover art, video, a second language).
    command += ["-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"]
    return command


def _limit_memory(memory_limit_mb: int) -> Callable[[], None]:
    limit = int(memory_limit_mb) * 1024 * 1024

    # Runs in the child between fork and exec; it only calls setrlimit, which is safe there
    # even when the parent has other threads.
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _run_ffmpeg(
    source: str,
    data: bytes | None,
    *,
    sample_rate: int,
    max_seconds: float | None,
    timeout: float,
    memory_limit_mb: int,
    min_seconds: float,
    label: str,
) -> Audio:
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    command: Sequence[str] = _ffmpeg_command(source, sample_rate, max_seconds)
    try:
        completed = subprocess.run(
            command,
            input=data,
            stdin=subprocess.DEVNULL if data is None else None,
            capture_output=True,
            timeout=timeout,
            preexec_fn=_limit_memory(memory_limit_mb),
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise DecodeError(f"{label}: decoding took longer than {timeout:g} s") from error
    except OSError as error:
        raise DecodeError(f"{label}: could not run ffmpeg: {error}") from error
    stderr = completed.stderr.decode("utf-8", errors="replace").strip()
    if completed.returncode != 0:
        raise DecodeError(f"{label}: ffmpeg failed ({_describe_exit(completed.returncode)}): "
                          f"{_tail(stderr)}")
    usable = len(completed.stdout) - len(completed.stdout) % 4
    if usable == 0:
        detail = f": {_tail(stderr)}" if stderr else ""
        raise DecodeError(f"{label}: no audio samples decoded{detail}")
    if usable / 4 < min_seconds * sample_rate:
        # A file cut off after its first frames decodes "successfully" to a few milliseconds:
        # nothing can be identified in that, and the caller must hear that the file is broken.
        detail = f" ({_tail(stderr)})" if stderr else ""
        raise DecodeError(f"{label}: only {usable / 4 / sample_rate:.2f} s of audio could be "
                          f"decoded: the file is truncated or not audio{detail}")
    samples = np.frombuffer(completed.stdout[:usable], dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(samples)):
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(samples, -1.0, 1.0, out=samples)
    return Audio(samples=samples, sample_rate=sample_rate)


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by signal {-returncode}, possibly the memory limit"
    return f"exit status {returncode}"


def _tail(stderr: str) -> str:
    if not stderr:
        return "no error output"
    if len(stderr) <= _STDERR_TAIL_CHARS:
        return stderr
    return "..." + stderr[-_STDERR_TAIL_CHARS:]
