"""Reading audio clips: 16 kHz mono float32, with errors that name the file and the problem."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
SILENCE_PEAK = 1e-4  # below this peak amplitude (about -80 dBFS) a clip carries nothing to hear
# Clipping: this share of samples at (or, after resampling's ripple, within 1% of) full scale. A
# clean recording normalised to 0 dBFS touches full scale at a few peaks, far under 1%; a clipped
# one sits there for whole flat-topped stretches. (The synthetic suite peaks at 0.98.)
CLIPPED_LEVEL = 0.99
CLIPPED_SHARE = 0.01
# libsndfile's log of a WAV whose data chunk claims more bytes than the file holds: "data : 96000
# (should be 956)". It reads what is there, so a cut-off copy would otherwise pass as a short clip.
# Streaming writers put 0 or a huge sentinel (0x7FFFF000, 0xFFFFFFFF) before they know the length,
# and some writers miscount by a few bytes: neither is truncation, so only a sizeable shortfall is.
_CUT_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)
_STREAMED_LENGTH = 0x7FFFF000
TRUNCATED_SHARE = 0.01  # of the announced sample bytes missing


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
    if path.stat().st_size == 0:  # libsndfile would call it an unrecognised format
        raise AudioError(f"{path}: audio file is empty (0 bytes)")
    return path


def _truncation(info) -> str | None:
    """Why a file whose header libsndfile read is cut short, or None."""
    cut = _CUT_DATA_CHUNK.search(getattr(info, "extra_info", "") or "")
    if cut is None:
        return None
    announced, held = int(cut[1]), int(cut[2])
    if not 0 < announced < _STREAMED_LENGTH or held >= announced * (1 - TRUNCATED_SHARE):
        return None
    return f"audio file is truncated: its header announces {cut[1]} bytes of samples, the file holds {cut[2]}"


def _open_info(path: Path):
    """soundfile's header info of an existing file, or AudioError for one that is undecodable,
    empty or truncated."""
    import soundfile

    try:
        info = soundfile.info(path)
    except _decode_errors() as e:
        raise AudioError(f"{path}: cannot decode audio ({e})") from None
    if info.frames <= 0:
        raise AudioError(f"{path}: audio file holds no samples")
    if problem := _truncation(info):
        raise AudioError(f"{path}: {problem}")
    return info


def audio_duration(path: str | Path) -> float:
    """The clip's duration in seconds, read from the file header without decoding the samples.

    A cheap check that a clip exists and libsndfile can open it (well under a millisecond per
    file), where `load_audio` decodes (and may resample) the whole clip. A file whose header is
    sound but whose samples are damaged (NaN) passes here and fails later in `load_audio`; a WAV cut
    short (an interrupted copy) fails here, since its header announces more than the file holds."""
    info = _open_info(_existing(path))
    return info.frames / info.samplerate


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The clip as mono float32 at `sample_rate` (channels averaged; resampled by librosa when the
    file's rate differs). Decoding is libsndfile's (WAV, FLAC, OGG, MP3).

    Raises AudioError for a missing, undecodable, empty or truncated file, or NaN/infinite samples.
    Silence and clipping are not errors here (a benchmark may use them on purpose); `is_silent` and
    `is_clipped` tell."""
    import soundfile

    path = _existing(path)
    _open_info(path)
    try:
        frames, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except _decode_errors() as e:
        raise AudioError(f"{path}: cannot decode audio ({e})") from None
    audio = frames.mean(axis=1)
    if audio.size and file_rate != sample_rate:
        import librosa  # imported only when needed: its first import compiles with numba

        audio = librosa.resample(audio, orig_sr=file_rate, target_sr=sample_rate)
    if not np.isfinite(audio).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    return audio.astype(np.float32, copy=False)


def load_clip(path: str | Path, item_ids: list[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """`load_audio` for a benchmark's clip: an unusable one (NaN samples behind a sound header,
    which the benchmark's header check passed) stops the job with an error naming the file and
    the items that use it."""
    try:
        return load_audio(path, sample_rate)
    except AudioError as e:
        raise AudioError(f"{e} ({items_label(item_ids)})") from None


def items_label(item_ids: list[str]) -> str:
    """"item q1" or "items q1, q2, q3 and 4 more": which items a clip belongs to, in messages."""
    shown = ", ".join(item_ids[:3]) + (f" and {len(item_ids) - 3} more" if len(item_ids) > 3 else "")
    return f"item{'s' if len(item_ids) > 1 else ''} {shown}"


def is_silent(audio: np.ndarray) -> bool:
    return float(np.max(np.abs(audio))) < SILENCE_PEAK


def is_clipped(audio: np.ndarray) -> bool:
    """At least CLIPPED_SHARE of the samples at full scale: the waveform's tops were cut off."""
    return float(np.mean(np.abs(audio) >= CLIPPED_LEVEL)) >= CLIPPED_SHARE
