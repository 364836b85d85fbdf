"""Reading audio clips: 16 kHz mono float32, with errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
SILENCE_PEAK = 1e-4  # below this peak amplitude (about -80 dBFS) a clip carries nothing to hear


def _decode_errors() -> tuple[type[Exception], ...]:
    """What soundfile raises for a file it cannot read (older releases raise plain RuntimeError)."""
    import soundfile

    return (soundfile.LibsndfileError, RuntimeError, TypeError)


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file."""


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    return path


def audio_duration(path: str | Path) -> float:
    """The clip's duration in seconds, read from the file header without decoding the samples.

    A cheap check that a clip exists and libsndfile can open it (well under a millisecond per
    file), where `load_audio` decodes (and may resample) the whole clip. A file whose header is
    sound but whose body is damaged passes here and fails later in `load_audio`."""
    import soundfile

    path = _existing(path)
    try:
        info = soundfile.info(path)
    except _decode_errors() as e:
        raise AudioError(f"{path}: cannot decode audio ({e})") from None
    if info.frames <= 0:
        raise AudioError(f"{path}: audio file holds no samples")
    return info.frames / info.samplerate


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The clip as mono float32 at `sample_rate` (channels averaged; resampled by librosa when the
    file's rate differs). Decoding is libsndfile's (WAV, FLAC, OGG, MP3).

    Raises AudioError for a missing, undecodable or empty file. Silence is not an error here
    (a benchmark may use it on purpose); `is_silent` tells."""
    import soundfile

    path = _existing(path)
    try:
        frames, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except _decode_errors() as e:
        raise AudioError(f"{path}: cannot decode audio ({e})") from None
    audio = frames.mean(axis=1)
    if audio.size and file_rate != sample_rate:
        import librosa  # imported only when needed: its first import compiles with numba

        audio = librosa.resample(audio, orig_sr=file_rate, target_sr=sample_rate)
    if audio.size == 0:
        raise AudioError(f"{path}: audio file holds no samples")
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def is_silent(audio: np.ndarray) -> bool:
    return float(np.max(np.abs(audio))) < SILENCE_PEAK
