"""Reading audio clips: 16 kHz mono float32, with errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
SILENCE_PEAK = 1e-4  # below this peak amplitude (about -80 dBFS) a clip carries nothing to hear


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The clip as mono float32 at `sample_rate` (channels averaged; resampled by librosa when the
    file's rate differs). Decoding is libsndfile's (WAV, FLAC, OGG, MP3).

    Raises AudioError for a missing, undecodable or empty file. Silence is not an error here
    (a benchmark may use it on purpose); `is_silent` tells."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    try:
        frames, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
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
