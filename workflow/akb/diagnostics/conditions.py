"""The audio each diagnostic condition gives an item (arXiv 2604.24401, "All That Glitters Is Not
Audio"): `full`, `none`, `backbone`, the 14 fragment runs `fragment-N-k` and our extras `silence`
and `noise`. Running a condition is here; analysing the runs is akb.diagnostics.analysis."""

from __future__ import annotations

import numpy as np

from akb.audio import SAMPLE_RATE
from akb.data.audio_bench import item_audio

# --------------------------------------------------------------------------------------------
# Conditions

FULL, NONE, BACKBONE = "full", "none", "backbone"
SILENCE, NOISE = "silence", "noise"  # extras, not in the published protocol
FRAGMENT_NS = (2, 3, 4, 5)


def fragment_condition(n: int, k: int) -> str:
    """"fragment-3-1": piece k (0-based) of the clip cut into n."""
    return f"fragment-{n}-{k}"


def parse_fragment_condition(condition: str) -> tuple[int, int] | None:
    """(n, k) of a fragment condition name, None for any other condition."""
    parts = condition.split("-")
    if len(parts) == 3 and parts[0] == "fragment" and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return None


FRAGMENT_CONDITIONS = tuple(fragment_condition(n, k) for n in FRAGMENT_NS for k in range(n))  # 14 runs
PROTOCOL_CONDITIONS = (FULL, NONE, BACKBONE, *FRAGMENT_CONDITIONS)  # the published protocol
EXTRA_CONDITIONS = (SILENCE, NOISE)  # our additions: what a model does with audio of no content
# What the metrics below need; `backbone` is reported when present but no metric depends on it.
REQUIRED_CONDITIONS = (FULL, NONE, *FRAGMENT_CONDITIONS)

# --------------------------------------------------------------------------------------------
# Audio per condition

# A piece under 0.1 s holds less than one syllable or a few pitch periods, so a model cannot hear
# anything in it, and it is shorter than the windows of common front ends (Whisper's encoder sees
# 20 ms frames). The reference only says "too short to cut"; this floor is ours. min_samples=1
# keeps every clip that can be cut at all (no empty piece).
MIN_FRAGMENT_SAMPLES = SAMPLE_RATE // 10
NOISE_RMS_DBFS = -30.0  # audible, yet below typical benchmark speech (about -20 to -25 dBFS RMS)


class FragmentError(ValueError):
    """A clip too short to cut into the requested pieces; recorded as the run's error, never padded."""


def fragment(audio: np.ndarray, n: int, k: int, min_samples: int = MIN_FRAGMENT_SAMPLES) -> np.ndarray:
    """Piece k (0-based) of `audio` cut into n equal contiguous pieces: size = len // n, pieces
    k < n-1 are audio[k*size:(k+1)*size] and the last one takes the remainder, so the n pieces
    concatenate back to the clip. Raises FragmentError when size < min_samples (samples)."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"fragment expects a mono 1-D clip, got shape {audio.shape}")
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"need n >= 1 and 0 <= k < n, got n={n}, k={k}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1 (an empty piece is never a fragment), got {min_samples}")
    size = audio.size // n
    if size < min_samples:
        raise FragmentError(f"clip of {audio.size} samples is too short to cut into {n} pieces: "
                            f"{size} samples each, fewer than {min_samples}")
    end = (k + 1) * size if k < n - 1 else audio.size
    return audio[k * size:end].copy()


def silence_like(audio: np.ndarray) -> np.ndarray:
    """Digital silence as long as the clip (extra condition `silence`)."""
    return np.zeros(np.asarray(audio).shape[-1], dtype=np.float32)


def noise_like(audio: np.ndarray, seed: int = 0, rms_dbfs: float = NOISE_RMS_DBFS) -> np.ndarray:
    """White Gaussian noise as long as the clip at a fixed RMS level and seed (extra condition
    `noise`): the same length gives the same samples, so reruns are identical."""
    noise = np.random.default_rng(seed).standard_normal(np.asarray(audio).shape[-1])
    return (noise * 10 ** (rms_dbfs / 20)).astype(np.float32)


def condition_audio(audio: np.ndarray, condition: str, *, min_samples: int = MIN_FRAGMENT_SAMPLES,
                    noise_seed: int = 0) -> np.ndarray | None:
    """The audio a run of `condition` gets; None means no audio in the prompt at all (`none`, and
    `backbone`, which goes to the text LLM). Raises FragmentError for a clip too short to cut."""
    if condition == FULL:
        return audio
    if condition in (NONE, BACKBONE):
        return None
    if condition == SILENCE:
        return silence_like(audio)
    if condition == NOISE:
        return noise_like(audio, seed=noise_seed)
    parsed = parse_fragment_condition(condition)
    if parsed is None:
        raise ValueError(f"unknown condition {condition!r}")
    return fragment(audio, *parsed, min_samples=min_samples)


def condition_clips(items, condition: str, sample_rate: int = SAMPLE_RATE,
                    min_fragment_samples: int = MIN_FRAGMENT_SAMPLES) -> tuple[dict, dict[str, str]]:
    """(item id -> the audio `condition` gives the item, None for no audio; item id -> error) for
    MCQItems: a clip too short to cut is recorded for its item, never padded, while an unusable clip
    stops the run with its item named. Every evaluation (this project's audio LLMs and published
    ones) hears its items through this."""
    clips, errors = {}, {}
    for item in items:
        # item_audio: every clip of a multi-audio item (MMAU-Pro), in order, with a short gap.
        audio = None if condition in (NONE, BACKBONE) else item_audio(item, sample_rate)
        try:
            clips[item.id] = None if audio is None else condition_audio(audio, condition,
                                                                        min_samples=min_fragment_samples)
        except ValueError as e:  # FragmentError
            errors[item.id] = str(e)
    return clips, errors
