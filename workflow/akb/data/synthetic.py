"""A synthetic audio benchmark in MMAU format whose answers are known by construction.

Every clip is synthesised from a handful of attributes (noise colour, chord quality, tempo, pitch
contour...), and the question asks for one of them in words that need auditory knowledge to map
(spectral slope -> "pink noise", 92 BPM -> "Andante", rising final pitch -> "a yes/no question").
So the suite has exact ground truth for the cascade, audio-grounded and text-prior diagnostics, and
its attributes double as seed descriptions for self-distillation.

Layout written by `generate_suite(out_dir, seed)`:

    out_dir/test.json, out_dir/train.json   JSON arrays of MMAU records (written last)
    out_dir/audio/<id>.wav                  16 kHz mono 16-bit PCM, 1-4 s

Record keys: the MMAU ones (`id, audio_id, question, choices, answer, dataset, task, split,
category, sub-category, difficulty`; `task` is the domain sound|music|speech) plus
- `metadata`: the clip's generating attributes, human-readable, with a one-line `summary`
  (the seed description for self-distillation), `duration_s`, `synthesis` and `cue` (where in the
  clip the answer can be heard). It holds the answer: never put it in a prompt.
- `reliance`: what the item was built to need.
    "whole_clip": no half of the clip decides the answer (events spread over both halves are counted;
                  a dynamics contour is asked about whose halves each fit two of the options).
    "any_part":   a part of the clip decides it. For most families any part does (noise colour,
                  chords, DTMF, and a tempo with at least two beats in each half); for intonation it is
                  the final syllable (`metadata.cue` says so).
    "none":       pure knowledge questions (test split only); the clip is room tone, so text-prior
                  diagnostics have items whose right answer needs no audio at all.

Item families (domain: family, reliance, choices):
    sound:  noise_colour (any_part, white/pink/brown/blue by spectral slope 0/-3/-6/+3 dB per
            octave), dtmf (any_part, telephone keypad key from its two tones),
            event_count (whole_clip, beeps/knocks/claps, 3-7 events spread over the clip)
    music:  triad (any_part, major/minor/diminished/augmented), tempo (any_part, metronome clicks,
            markings below), dynamics (whole_clip, crescendo/diminuendo/swell/reverse swell)
    speech: intonation (any_part, final rise = yes/no question, final fall = statement),
            voice (any_part, adult man / adult woman / young child from pitch and formants),
            syllable_count (whole_clip, 3-7 syllables), and either vowel (any_part, which
            formant-synthesised vowel /i ɛ ɑ ɔ u/ is sustained; the default) or, with espeak-ng,
            spoken_word (any_part, which hVd word espeak-ng says)
    each:   knowledge (none), test split only

Tempo markings use these ranges (BPM, common metronome tables; Adagio/Moderato/Vivace left out so
no drawn tempo sits where tables disagree): Largo 40-60, Andante 76-108, Allegro 120-156,
Presto 168-200. Tempi are drawn from the inner part of each range (`TEMPO_MARKINGS`).

Speech: by default (`speech_engine="formant"`) every speech clip comes from a numpy source-filter
(formant) synthesiser: a glottal pulse train through four formant resonators, with an explicit pitch
contour. It needs nothing outside Python, so the default suite is the same on every machine.
`speech_engine="espeak-ng"` has espeak-ng (a subprocess) speak hVd words instead of the sustained
vowels, and `"auto"` does so when `shutil.which("espeak-ng")` finds it: both are machine-dependent
(installed or not, and its version), which changes the suite and every score measured on it.
Intonation, voice and syllable items always use the formant synthesiser, because their labels are
pitch contours and formant scalings that must be exact. Each item's `metadata.synthesis` names the
engine.

Determinism: every clip draws from its own `numpy.random.Generator` (PCG64, the same stream on every
platform) seeded by (seed, split, family, index), so the same seed gives identical JSON and WAV bytes,
and the train and test splits draw differently. Nothing depends on dict or set iteration beyond
insertion order, on directory listings or on the locale; floats reach the JSON through Python's
exact repr and fixed-precision formats, and clips are quantised to little-endian 16-bit PCM by
round-half-even. `suite_digest` fingerprints a written suite; tests/test_provenance.py pins the
default config's digest, so a change of the synthesis (or of numpy or scipy output) is caught.
Ids are `akbsyn-<split>-<nnnn>`, so the splits never share one.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import shutil
import subprocess
import wave
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import lfilter, resample_poly

from akb.audio import SAMPLE_RATE
from akb.io import atomic_path, sha256_file, write_json

log = logging.getLogger(__name__)

DATASET = "akb-synthetic"
DOMAINS = ("sound", "music", "speech")
SPLITS = ("test", "train")
RELIANCES = ("whole_clip", "any_part", "none")
SPEECH_ENGINES = ("auto", "espeak-ng", "formant")
# Always available (numpy only): the default, so the default suite is the same on every machine.
DEFAULT_SPEECH_ENGINE = "formant"
DEFAULT_N_TEST = 360
DEFAULT_N_TRAIN = 600
KNOWLEDGE_PER_DOMAIN = 6

# Power spectral density ∝ f**exponent; the slope in dB per octave is about 3 x exponent.
NOISE_COLOURS = {"white": 0, "pink": -1, "brown": -2, "blue": 1}

DTMF_ROWS_HZ = (697, 770, 852, 941)
DTMF_COLS_HZ = (1209, 1336, 1477)
# '*' and '#' are left out: they have no word characters, which the official scorer needs.
DTMF_KEYS = {"1": (0, 0), "2": (0, 1), "3": (0, 2), "4": (1, 0), "5": (1, 1), "6": (1, 2),
             "7": (2, 0), "8": (2, 1), "9": (2, 2), "0": (3, 1)}  # key -> (row, column)

TRIAD_INTERVALS = {"major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8)}


@dataclass(frozen=True)
class TempoMarking:
    name: str
    range_bpm: tuple[int, int]  # as documented above
    drawn_bpm: tuple[int, int]  # inner part actually used


TEMPO_MARKINGS = (
    # Largo starts at 48 BPM so each half of the 4 s clip still holds two beats.
    TempoMarking("Largo", (40, 60), (48, 58)),
    TempoMarking("Andante", (76, 108), (82, 102)),
    TempoMarking("Allegro", (120, 156), (126, 150)),
    TempoMarking("Presto", (168, 200), (174, 196)),
)
TEMPO_CLIP_S = 4.0

# Dynamics contours: (option text, loudness trend in the first half, in the second half). Each
# half's trend fits two options, which is what makes these items need the whole clip.
DYNAMICS = {
    "crescendo": ("crescendo", "up", "up"),
    "diminuendo": ("diminuendo", "down", "down"),
    "swell": ("messa di voce (crescendo then diminuendo)", "up", "down"),
    "reverse_swell": ("reverse swell (diminuendo then crescendo)", "down", "up"),
}

# Adult male formants F1-F3 in Hz (Peterson & Barney 1952 averages); F4 is fixed at 3500 Hz.
VOWEL_FORMANTS = {"i": (270, 2290, 3010), "ɛ": (530, 1840, 2480), "ɑ": (730, 1090, 2440),
                  "ɔ": (570, 840, 2410), "u": (300, 870, 2240)}
VOWEL_CHOICES = {"i": "/i/ as in 'heed'", "ɛ": "/ɛ/ as in 'head'", "ɑ": "/ɑ/ as in 'father'",
                 "ɔ": "/ɔ/ as in 'thought'", "u": "/u/ as in 'food'"}
FORMANT_BANDWIDTHS = (60, 90, 150, 200)


@dataclass(frozen=True)
class Voice:
    choice: str  # option text
    f0_hz: tuple[float, float]  # range the speaker's mean pitch is drawn from
    formant_scale: float  # shorter vocal tracts raise every formant


VOICES = {
    "man": Voice("an adult man", (95, 130), 1.0),
    "woman": Voice("an adult woman", (185, 235), 1.17),
    "child": Voice("a young child", (265, 320), 1.3),
}

# hVd words (the classic vowel-study frame), all with distinct vowels in espeak-ng's en-us.
HVD_WORDS = {"heed": "i", "hid": "ɪ", "head": "ɛ", "had": "æ",
             "hod": "ɑ", "hood": "ʊ", "who'd": "u", "hud": "ʌ"}
ESPEAK_VOICES = {"en-us+m3": "male", "en-us+m7": "male", "en-us+f2": "female", "en-us+f4": "female"}

# Pure knowledge items: (question, answer, distractors). The clip is room tone.
KNOWLEDGE = {
    "sound": [
        ("Which noise colour has a flat power spectral density (equal power per hertz)?",
         "white noise", ["pink noise", "brown noise", "blue noise"]),
        ("Which noise colour has equal power in every octave band?",
         "pink noise", ["white noise", "brown noise", "blue noise"]),
        ("In a free field, doubling the distance from a point source lowers the sound pressure level "
         "by about how much?", "6 dB", ["1 dB", "3 dB", "20 dB"]),
        ("What is the approximate speed of sound in air at 20 °C?",
         "343 m/s", ["150 m/s", "1480 m/s", "3000 m/s"]),
        ("Compared with the same siren moving away, how does an approaching siren sound?",
         "higher in pitch", ["lower in pitch", "unchanged in pitch", "an octave lower"]),
        ("What is the usual upper frequency limit of hearing in young adults?",
         "about 20 kHz", ["about 2 kHz", "about 200 kHz", "about 200 Hz"]),
    ],
    "music": [
        ("Which musical term means gradually getting louder?",
         "crescendo", ["diminuendo", "staccato", "legato"]),
        ("How many semitones make up a perfect fifth?", "7", ["5", "6", "8"]),
        ("Which of these tempo markings is the slowest?", "Largo", ["Andante", "Allegro", "Presto"]),
        ("In standard concert pitch, what frequency is A4 tuned to?",
         "440 Hz", ["415 Hz", "432 Hz", "466 Hz"]),
        ("Which triad quality is built from two stacked minor thirds?",
         "diminished", ["major", "minor", "augmented"]),
        ("Raising a note by one octave changes its fundamental frequency how?",
         "it doubles", ["it halves", "it triples", "it rises by 100 Hz"]),
    ],
    "speech": [
        ("Which syllable of 'banana' carries the primary stress?",
         "the second", ["the first", "the third", "none of them"]),
        ("In English, how does the pitch of a yes/no question typically move at its end?",
         "it rises", ["it falls", "it stays level", "it drops to a whisper"]),
        ("Which vowel has the lowest first formant (F1)?", "/i/ as in 'heed'",
         ["/ɑ/ as in 'father'", "/æ/ as in 'had'", "/ɛ/ as in 'head'"]),
        ("What is the typical fundamental frequency of an adult male speaking voice?",
         "about 120 Hz", ["about 40 Hz", "about 500 Hz", "about 1000 Hz"]),
        ("Which word rhymes with 'thought'?", "caught", ["throat", "though", "thud"]),
        ("Which of these consonants is voiceless?", "/s/", ["/z/", "/v/", "/m/"]),
    ],
}

MIDI_A4 = 69
NOTE_LETTERS = "CDEFGAB"
LETTER_PITCH_CLASS = (0, 2, 4, 5, 7, 9, 11)
# Chord roots spelled the way they usually are, so thirds and fifths spell cleanly.
TRIAD_ROOTS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


# --------------------------------------------------------------------------------------------
# Signal helpers


def _n(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


def _db(db: float | np.ndarray) -> float | np.ndarray:
    return 10.0 ** (np.asarray(db) / 20.0)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _fade(x: np.ndarray, seconds: float = 0.01) -> np.ndarray:
    """Raised-cosine fade in and out, so clip and event edges do not click."""
    k = min(_n(seconds), x.size // 2)
    if k:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))
        x = x.copy()
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return x


def _db_envelope(points: list[tuple[float, float]], n: int) -> np.ndarray:
    """Gain curve through (fraction of clip, dBFS) breakpoints, linear in dB as loudness is heard."""
    fractions, levels = zip(*points)
    return _db(np.interp(np.linspace(0.0, 1.0, n), fractions, levels))


def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise with power spectral density ∝ f**exponent (shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    # Below 20 Hz the shaping is held flat: brown noise would otherwise be all inaudible rumble.
    spectrum *= np.maximum(freqs, 20.0) ** (exponent / 2.0)
    spectrum[0] = 0.0
    x = np.fft.irfft(spectrum, n)
    return x / _rms(x)


def _harmonic_tone(f0: float | np.ndarray, n: int, harmonics: int = 5) -> np.ndarray:
    """Sum of harmonics with 1/k amplitudes (a soft, string-like timbre); `f0` may vary per sample."""
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(np.asarray(f0, dtype=float), (n,))) / SAMPLE_RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    return tone / np.max(np.abs(tone))


def _event_sound(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One short event (<= 0.12 s) with peak 1: beep, knock, clap, or a metronome click."""
    if kind == "beep":
        t = np.arange(_n(rng.uniform(0.08, 0.12))) / SAMPLE_RATE
        return _fade(np.sin(2 * np.pi * rng.uniform(800, 1600) * t), 0.005)
    t = np.arange(_n(0.1)) / SAMPLE_RATE
    if kind == "knock":  # a damped low resonance with a little noise for the strike
        x = np.sin(2 * np.pi * rng.uniform(150, 350) * t) * np.exp(-t / 0.025)
        x += 0.2 * rng.standard_normal(t.size) * np.exp(-t / 0.004)
    elif kind == "clap":
        x = rng.standard_normal(t.size) * np.exp(-t / 0.02)
    elif kind == "click":  # woodblock-like metronome tick
        x = np.sin(2 * np.pi * rng.uniform(1800, 2400) * t) * np.exp(-t / 0.008)
    else:
        raise ValueError(f"unknown event kind {kind!r}")
    return _fade(x, 0.001) / np.max(np.abs(x))


def _place(events: list[np.ndarray], onsets_s: list[float], n: int) -> np.ndarray:
    out = np.zeros(n)
    for event, onset in zip(events, onsets_s):
        start = _n(onset)
        out[start : start + event.size] += event[: n - start]
    return out


def _spread_onsets(rng: np.random.Generator, count: int, duration: float, min_gap: float) -> list[float]:
    """`count` onsets, one in each of `count` equal slots, at least `min_gap` apart.

    Slots make the events span the clip: with two or more, the first lies in the first half and
    the last in the second, so neither half holds them all."""
    margin = 0.1
    slot = (duration - 2 * margin) / count
    if slot < min_gap:
        raise ValueError(f"{count} events do not fit in {duration} s")
    return [margin + i * slot + rng.uniform(0.0, slot - min_gap) for i in range(count)]


def _background(rng: np.random.Generator, n: int, level_dbfs: float = -55.0) -> np.ndarray:
    """Faint pink room tone, so no clip is digitally silent between events."""
    return _coloured_noise(rng, n, NOISE_COLOURS["pink"]) * _db(level_dbfs)


# --------------------------------------------------------------------------------------------
# Formant (source-filter) speech synthesis


def _glottal_source(f0: np.ndarray) -> np.ndarray:
    """One pulse per pitch period, low-passed for the glottal spectrum's downward tilt."""
    cycles = np.floor(np.cumsum(f0) / SAMPLE_RATE)
    pulses = np.diff(cycles, prepend=0.0)
    return lfilter([1.0], [1.0, -0.95], pulses)


def _formant_filter(x: np.ndarray, vowel: str, scale: float) -> np.ndarray:
    """Cascade of two-pole resonators at the vowel's formants (unity gain at 0 Hz each)."""
    formants = [f * scale for f in VOWEL_FORMANTS[vowel]] + [3500.0 * scale]
    for freq, bandwidth in zip(formants, FORMANT_BANDWIDTHS):
        r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
        a = [1.0, -2 * r * np.cos(2 * np.pi * freq / SAMPLE_RATE), r * r]
        x = lfilter([sum(a)], a, x)
    return x


def _utterance(
    rng: np.random.Generator, scale: float, pitch_points: list[tuple[float, float]], duration: float,
    syllables: list[tuple[float, float, str]],
) -> np.ndarray:
    """Voiced syllables (onset s, length s, vowel) at peak -6 dBFS, cut from one continuous pitch
    track through `pitch_points` (see `_pitch_track`), with formants scaled by `scale`.

    The gaps between syllables stand in for voiceless consonants; the pitch contour runs on
    through them, as it is heard to."""
    f0 = _pitch_track(pitch_points, _n(duration))
    source = _glottal_source(f0) + 0.02 * rng.standard_normal(f0.size)  # a little breath
    out = np.zeros(f0.size)
    for onset, length, vowel in syllables:
        a, b = _n(onset), min(_n(onset + length), f0.size)
        voiced = _formant_filter(source[a:b], vowel, scale)
        # Equal loudness per syllable: open vowels would otherwise be ~10 dB louder than close ones.
        out[a:b] += _fade(voiced / _rms(voiced), 0.02)
    return out / np.max(np.abs(out)) * _db(-6)


def _random_vowels(rng: np.random.Generator, n: int) -> list[str]:
    return [str(v) for v in rng.choice(list(VOWEL_FORMANTS), size=n)]


def _pitch_track(points: list[tuple[float, float]], n: int) -> np.ndarray:
    """F0 in Hz through (fraction of clip, Hz) breakpoints, interpolated in semitones."""
    fractions, hz = zip(*points)
    return 2.0 ** np.interp(np.linspace(0.0, 1.0, n), fractions, np.log2(hz))


def _semitones(hz: float, st: float) -> float:
    return hz * 2.0 ** (st / 12.0)


# --------------------------------------------------------------------------------------------
# espeak-ng


@functools.cache
def _espeak_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    # "eSpeak NG text-to-speech: 1.51  Data at: ..."
    return out.split(":")[1].split()[0] if ":" in out else out.strip()


def _espeak(exe: str, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering of `text`, resampled from its 22,050 Hz to 16 kHz."""
    import soundfile

    wav = subprocess.run(
        [exe, "-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "--stdout", text],
        capture_output=True, check=True, timeout=30,
    ).stdout
    audio, rate = soundfile.read(io.BytesIO(wav), dtype="float64")
    # 16000 / 22050 = 320 / 441; polyphase resampling is exact and deterministic.
    return resample_poly(audio, SAMPLE_RATE // np.gcd(SAMPLE_RATE, rate), rate // np.gcd(SAMPLE_RATE, rate))


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _resolve_engine(speech_engine: str) -> str | None:
    """Path of espeak-ng to use, or None for the formant fallback."""
    if speech_engine not in SPEECH_ENGINES:
        raise ValueError(f"speech_engine must be one of {SPEECH_ENGINES}, not {speech_engine!r}")
    exe = shutil.which("espeak-ng")
    if speech_engine == "espeak-ng" and exe is None:
        raise RuntimeError("speech_engine='espeak-ng' but espeak-ng is not on PATH "
                           "(e.g. apt-get install espeak-ng)")
    return exe if speech_engine != "formant" else None


# --------------------------------------------------------------------------------------------
# Item families. Each `make` gets its own generator and the item's index within the family;
# the label cycles with the index so every label is equally common.


@dataclass
class Draft:
    """One generated item before its id, choice order and record are fixed."""

    audio: np.ndarray
    question: str
    answer: str
    distractors: list[str]
    metadata: dict[str, Any]
    difficulty: str = "medium"


@dataclass(frozen=True)
class Family:
    key: str
    domain: str
    category: str
    reliance: str
    n_choices: int
    make: Callable[[np.random.Generator, int], Draft]


def _pick(rng: np.random.Generator, options: list[str], k: int) -> list[str]:
    return [options[i] for i in rng.choice(len(options), size=k, replace=False)]


def _clip_metadata(kind: str, audio: np.ndarray, summary: str, synthesis: str, cue: str,
                   **attributes: Any) -> dict[str, Any]:
    """The record's `metadata`: attributes first, then length, engine, where the cue is, and a summary."""
    return {"kind": kind, **attributes, "duration_s": round(audio.size / SAMPLE_RATE, 2),
            "synthesis": synthesis, "cue": cue, "summary": summary}


NUMPY_SYNTH = "numpy additive synthesis"
FORMANT_SYNTH = "formant synthesis (glottal pulses through formant resonators, numpy)"


def _count_choices(rng: np.random.Generator, count: int) -> list[str]:
    """Four consecutive numbers holding `count` at a random place: no choice stands out by value."""
    start = max(1, count - int(rng.integers(0, 4)))
    return [str(c) for c in range(start, start + 4) if c != count]


def _count_difficulty(count: int) -> str:
    return "easy" if count <= 4 else "medium" if count <= 5 else "hard"


def _make_noise_colour(rng: np.random.Generator, index: int) -> Draft:
    colour = list(NOISE_COLOURS)[index % len(NOISE_COLOURS)]
    duration, level = rng.uniform(1.5, 3.0), rng.uniform(-24, -18)
    audio = _fade(_coloured_noise(rng, _n(duration), NOISE_COLOURS[colour]) * _db(level), 0.05)
    slope = round(10 * np.log10(2) * NOISE_COLOURS[colour])
    return Draft(
        audio,
        "Judging by how its power is spread across frequencies, what colour of noise is this?",
        f"{colour} noise",
        [f"{c} noise" for c in NOISE_COLOURS if c != colour],
        _clip_metadata("noise", audio, f"{duration:.1f} s of steady {colour} noise "
                       f"({slope:+d} dB per octave) at {level:.0f} dBFS RMS.", NUMPY_SYNTH,
                       "spectral slope, constant throughout", colour=colour,
                       spectral_slope_db_per_octave=slope, level_dbfs_rms=round(level, 1)),
        "easy" if colour in ("white", "brown") else "medium",
    )


def _make_dtmf(rng: np.random.Generator, index: int) -> Draft:
    key = list(DTMF_KEYS)[index % len(DTMF_KEYS)]
    row, col = DTMF_KEYS[key]
    low, high = DTMF_ROWS_HZ[row], DTMF_COLS_HZ[col]
    # Distractors that share the row or the column, so both tones must be identified.
    same_row = [k for k, (r, c) in DTMF_KEYS.items() if r == row and k != key]
    same_col = [k for k, (r, c) in DTMF_KEYS.items() if c == col and k != key]
    distractors = _pick(rng, same_row, min(1, len(same_row))) + _pick(rng, same_col, 1)
    rest = [k for k in DTMF_KEYS if k != key and k not in distractors]
    distractors += _pick(rng, rest, 3 - len(distractors))
    duration = rng.uniform(1.0, 2.0)
    t = np.arange(_n(duration)) / SAMPLE_RATE
    tone = _fade(np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t), 0.01) * _db(-9)
    audio = tone + _background(rng, t.size, -45)
    return Draft(
        audio,
        "This is a telephone keypad (DTMF) tone. Which key was pressed?",
        key,
        distractors,
        _clip_metadata("dtmf_tone", audio, f"{duration:.1f} s telephone keypad tone for key {key} "
                       f"({low} Hz + {high} Hz) over faint line noise.", NUMPY_SYNTH,
                       "two steady tones throughout", key=key, low_hz=low, high_hz=high),
        "hard",
    )


EVENT_KINDS = {"beep": "beeps", "knock": "knocks", "clap": "claps"}


def _make_event_count(rng: np.random.Generator, index: int) -> Draft:
    count = 3 + index % 5
    kind = list(EVENT_KINDS)[(index // 5) % len(EVENT_KINDS)]
    duration = rng.uniform(3.0, 4.0)
    onsets = _spread_onsets(rng, count, duration, min_gap=0.3)
    events = [_event_sound(kind, rng) * _db(rng.uniform(-12, -6)) for _ in onsets]
    audio = _place(events, onsets, _n(duration)) + _background(rng, _n(duration))
    return Draft(
        audio,
        f"How many {EVENT_KINDS[kind]} can be heard in the clip?",
        str(count),
        _count_choices(rng, count),
        _clip_metadata("event_sequence", audio, f"{count} {EVENT_KINDS[kind]} spread over {duration:.1f} s "
                       f"of quiet room tone, at {', '.join(f'{t:.2f}' for t in onsets)} s.", NUMPY_SYNTH,
                       "events spread over the whole clip", event=kind, count=count,
                       onsets_s=[round(t, 3) for t in onsets]),
        _count_difficulty(count),
    )


def _midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - MIDI_A4) / 12.0)


def _spell(root: str, octave: int, semitones: int, letter_steps: int) -> str:
    """Note name `semitones` above `root` spelled on the letter `letter_steps` above it (C -> Eb,
    not D#), with its scientific-pitch octave."""
    root_letter = NOTE_LETTERS.index(root[0])
    root_pc = (LETTER_PITCH_CLASS[root_letter] + root.count("#") - root.count("b")) % 12
    letter = (root_letter + letter_steps) % 7
    wanted = root_pc + semitones
    alter = (wanted - LETTER_PITCH_CLASS[letter] + 6) % 12 - 6
    note_octave = octave + (root_letter + letter_steps) // 7
    return f"{NOTE_LETTERS[letter]}{'#' * alter if alter > 0 else 'b' * -alter}{note_octave}"


def _make_triad(rng: np.random.Generator, index: int) -> Draft:
    quality = list(TRIAD_INTERVALS)[index % len(TRIAD_INTERVALS)]
    root_name = TRIAD_ROOTS[int(rng.integers(len(TRIAD_ROOTS)))]
    octave = int(rng.integers(3, 5))
    root_pc = TRIAD_ROOTS.index(root_name)
    root_midi = 12 * (octave + 1) + root_pc
    notes = [_spell(root_name, octave, iv, steps) for iv, steps in zip(TRIAD_INTERVALS[quality], (0, 2, 4))]
    duration = rng.uniform(2.0, 3.0)
    n = _n(duration)
    decay = np.exp(-np.arange(n) / SAMPLE_RATE / rng.uniform(1.5, 3.0))
    chord = sum(_harmonic_tone(_midi_hz(root_midi + iv), n) for iv in TRIAD_INTERVALS[quality])
    audio = _fade(chord * decay, 0.01) / 3 * _db(-6)
    return Draft(
        audio,
        "Which quality of triad is being played?",
        quality,
        [q for q in TRIAD_INTERVALS if q != quality],
        _clip_metadata("triad", audio, f"A {root_name}{octave} {quality} triad ({', '.join(notes)}) "
                       f"sounded together and left to decay over {duration:.1f} s.", NUMPY_SYNTH,
                       "all three notes sound throughout", root=f"{root_name}{octave}", quality=quality,
                       notes=notes, frequencies_hz=[round(_midi_hz(root_midi + iv), 1)
                                                    for iv in TRIAD_INTERVALS[quality]]),
        "medium" if quality in ("major", "minor") else "hard",
    )


def _make_tempo(rng: np.random.Generator, index: int) -> Draft:
    marking = TEMPO_MARKINGS[index % len(TEMPO_MARKINGS)]
    bpm = int(rng.integers(marking.drawn_bpm[0], marking.drawn_bpm[1] + 1))
    beat = 60.0 / bpm
    first = rng.uniform(0.05, 0.12)
    onsets = list(np.arange(first, TEMPO_CLIP_S - 0.12, beat))
    click = _event_sound("click", rng) * _db(-6)
    audio = _place([click] * len(onsets), onsets, _n(TEMPO_CLIP_S)) + _background(rng, _n(TEMPO_CLIP_S))
    return Draft(
        audio,
        "A metronome is ticking. Which tempo marking best matches its tempo?",
        marking.name,
        [m.name for m in TEMPO_MARKINGS if m is not marking],
        _clip_metadata("metronome", audio, f"A metronome ticking steadily at {bpm} BPM "
                       f"({len(onsets)} clicks in {TEMPO_CLIP_S:.0f} s).", NUMPY_SYNTH,
                       "steady beats throughout (at least two in each half)", tempo_bpm=bpm,
                       marking=marking.name, marking_range_bpm=list(marking.range_bpm), clicks=len(onsets)),
        "medium",
    )


def _make_dynamics(rng: np.random.Generator, index: int) -> Draft:
    contour = list(DYNAMICS)[index % len(DYNAMICS)]
    choice, first_half, second_half = DYNAMICS[contour]
    duration = rng.uniform(3.0, 4.0)
    quiet, loud = rng.uniform(-40, -34), rng.uniform(-9, -6)
    turn = rng.uniform(0.45, 0.55)
    level = {"up": (quiet, loud), "down": (loud, quiet)}
    if first_half == second_half:
        points = [(0.0, level[first_half][0]), (1.0, level[first_half][1])]
    else:
        points = [(0.0, level[first_half][0]), (turn, level[first_half][1]), (1.0, level[second_half][1])]
    n = _n(duration)
    midi = int(rng.integers(57, 70))  # A3..A4
    vibrato = _midi_hz(midi) * (1 + 0.004 * np.sin(2 * np.pi * 5.5 * np.arange(n) / SAMPLE_RATE))
    audio = _fade(_harmonic_tone(vibrato, n) * _db_envelope(points, n), 0.02)
    shape = {"crescendo": "rises steadily", "diminuendo": "falls steadily",
             "swell": "rises then falls", "reverse_swell": "falls then rises"}[contour]
    return Draft(
        audio,
        "How does the loudness of this sustained note change over the whole clip? "
        "Choose the matching dynamic marking.",
        choice,
        [c for c, _, _ in DYNAMICS.values() if c != choice],
        _clip_metadata("sustained_note", audio, f"A sustained violin-like note (MIDI {midi}) whose loudness "
                       f"{shape} between {quiet:.0f} and {loud:.0f} dBFS over {duration:.1f} s.", NUMPY_SYNTH,
                       "the loudness contour over the whole clip", contour=contour,
                       level_points=[[round(f, 2), round(db, 1)] for f, db in points],
                       pitch_midi=midi),
        "easy" if first_half == second_half else "medium",
    )


def _speaker(rng: np.random.Generator, voice_key: str) -> tuple[Voice, float]:
    voice = VOICES[voice_key]
    return voice, float(rng.uniform(*voice.f0_hz))


def _make_intonation(rng: np.random.Generator, index: int) -> Draft:
    question = index % 2 == 0
    # Adults only: a child's final rise would go past the range pitch trackers search.
    voice, f0 = _speaker(rng, ("man", "woman")[(index // 2) % 2])
    n_syllables = int(rng.integers(3, 6))
    syllables, t = [], 0.15
    for vowel in _random_vowels(rng, n_syllables):
        length = rng.uniform(0.15, 0.25) if len(syllables) < n_syllables - 1 else rng.uniform(0.4, 0.5)
        syllables.append((t, length, vowel))
        t += length + rng.uniform(0.06, 0.1)
    final_onset, final_length, _ = syllables[-1]
    duration = final_onset + final_length + 0.15
    # Gentle declination up to the final syllable, which alone carries the cue.
    end_st = rng.uniform(6, 9) if question else -rng.uniform(5, 7)
    end_hz = _semitones(f0, -1.0 + end_st)
    points = [(0.0, _semitones(f0, 1.0)), (final_onset / duration, _semitones(f0, -1.0)),
              ((final_onset + final_length) / duration, end_hz), (1.0, end_hz)]
    audio = _utterance(rng, voice.formant_scale, points, duration, syllables)
    kind = "yes/no question" if question else "statement"
    summary = (f"{voice.choice.capitalize()} says {n_syllables} nonsense syllables around {f0:.0f} Hz; "
               f"the pitch drifts down, then the final syllable {'rises' if question else 'falls'} "
               f"{abs(end_st):.0f} semitones, as in a {kind}.")
    return Draft(
        audio,
        "A speaker says a short phrase of nonsense syllables. Judging by its intonation, "
        "is it a yes/no question or a statement?",
        f"a {kind}",
        ["a statement" if question else "a yes/no question"],
        _clip_metadata("utterance", audio, summary, FORMANT_SYNTH, "pitch movement on the final syllable",
                       intonation=kind, final_pitch_change_semitones=round(end_st, 1), speaker=voice.choice,
                       mean_f0_hz=round(f0), vowels=[v for _, _, v in syllables],
                       final_syllable_s=[round(final_onset, 3), round(final_onset + final_length, 3)]),
        "easy",
    )


def _make_voice(rng: np.random.Generator, index: int) -> Draft:
    voice, f0 = _speaker(rng, list(VOICES)[index % len(VOICES)])
    n_syllables = int(rng.integers(2, 5))
    duration = 0.5 * n_syllables + 0.3
    vowels = _random_vowels(rng, n_syllables)
    onsets = _spread_onsets(rng, n_syllables, duration, min_gap=0.4)
    syllables = [(o, rng.uniform(0.2, 0.3), v) for o, v in zip(onsets, vowels)]
    points = [(0.0, _semitones(f0, 1.5)), (0.5, f0), (1.0, _semitones(f0, -1.5))]  # gentle declination
    audio = _utterance(rng, voice.formant_scale, points, duration, syllables)
    summary = (f"{voice.choice.capitalize()} (pitch around {f0:.0f} Hz, formants x{voice.formant_scale} "
               f"of an adult man's) says {n_syllables} vowel syllables.")
    return Draft(
        audio,
        "Judging by the voice, who is most likely speaking?",
        voice.choice,
        [v.choice for v in VOICES.values() if v is not voice],
        _clip_metadata("utterance", audio, summary, FORMANT_SYNTH, "voice pitch and formants throughout",
                       speaker=voice.choice, mean_f0_hz=round(f0), formant_scale=voice.formant_scale,
                       vowels=vowels),
        "easy",
    )


def _make_syllable_count(rng: np.random.Generator, index: int) -> Draft:
    count = 3 + index % 5
    voice, f0 = _speaker(rng, list(VOICES)[(index // 5) % len(VOICES)])
    duration = float(np.clip(0.45 * count + 0.4, 2.0, 4.0))
    vowels = _random_vowels(rng, count)
    onsets = _spread_onsets(rng, count, duration, min_gap=0.32)
    syllables = [(o, rng.uniform(0.14, 0.19), v) for o, v in zip(onsets, vowels)]
    points = [(0.0, _semitones(f0, 1.0)), (1.0, _semitones(f0, -2.0))]
    audio = _utterance(rng, voice.formant_scale, points, duration, syllables)
    summary = (f"{voice.choice.capitalize()} says {count} separate vowel syllables ({' '.join(vowels)}) "
               f"spread over {duration:.1f} s.")
    return Draft(
        audio,
        "How many syllables does the speaker utter?",
        str(count),
        _count_choices(rng, count),
        _clip_metadata("utterance", audio, summary, FORMANT_SYNTH, "syllables spread over the whole clip",
                       count=count, speaker=voice.choice, mean_f0_hz=round(f0), vowels=vowels,
                       onsets_s=[round(t, 3) for t in onsets]),
        _count_difficulty(count),
    )


def _make_vowel(rng: np.random.Generator, index: int) -> Draft:
    vowel = list(VOWEL_FORMANTS)[index % len(VOWEL_FORMANTS)]
    voice, f0 = _speaker(rng, ("man", "woman")[(index // len(VOWEL_FORMANTS)) % 2])
    duration = rng.uniform(1.0, 1.6)
    points = [(0.0, _semitones(f0, 1.0)), (1.0, _semitones(f0, -1.0))]
    audio = _utterance(rng, voice.formant_scale, points, duration, [(0.1, duration - 0.2, vowel)])
    formants = [round(f * voice.formant_scale) for f in VOWEL_FORMANTS[vowel]]
    summary = (f"{voice.choice.capitalize()} sustains the vowel /{vowel}/ for {duration - 0.2:.1f} s "
               f"at about {f0:.0f} Hz (formants {formants} Hz).")
    return Draft(
        audio,
        "Which vowel is the speaker sustaining?",
        VOWEL_CHOICES[vowel],
        _pick(rng, [c for v, c in VOWEL_CHOICES.items() if v != vowel], 3),
        _clip_metadata("sustained_vowel", audio, summary, FORMANT_SYNTH, "vowel formants throughout",
                       vowel=f"/{vowel}/", speaker=voice.choice, mean_f0_hz=round(f0), formants_hz=formants),
        "medium",
    )


def _make_spoken_word(exe: str) -> Callable[[np.random.Generator, int], Draft]:
    def make(rng: np.random.Generator, index: int) -> Draft:
        word = list(HVD_WORDS)[index % len(HVD_WORDS)]
        voice = list(ESPEAK_VOICES)[(index // len(HVD_WORDS)) % len(ESPEAK_VOICES)]
        rate, pitch = int(rng.integers(130, 191)), int(rng.integers(35, 66))
        speech = _espeak(exe, word, voice, rate, pitch)
        lead = _n(rng.uniform(0.15, 0.3))
        tail = max(_n(0.2), _n(1.0) - lead - speech.size)  # short words still make a 1 s clip
        audio = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
        audio = audio / np.max(np.abs(audio)) * _db(-6) + _background(rng, audio.size)
        return Draft(
            audio,
            "Which word does the speaker say?",
            word,
            _pick(rng, [w for w in HVD_WORDS if w != word], 3),
            _clip_metadata("spoken_word", audio,
                           f"A {ESPEAK_VOICES[voice]} synthetic voice says the word '{word}' "
                           f"(vowel /{HVD_WORDS[word]}/) at {rate} words per minute.",
                           f"espeak-ng {_espeak_version(exe)}", "the whole word", transcript=word,
                           vowel=f"/{HVD_WORDS[word]}/", voice=voice, speaker_gender=ESPEAK_VOICES[voice],
                           speaking_rate_wpm=rate, espeak_pitch=pitch),
            "medium",
        )

    return make


def _make_knowledge(domain: str) -> Callable[[np.random.Generator, int], Draft]:
    def make(rng: np.random.Generator, index: int) -> Draft:
        question, answer, distractors = KNOWLEDGE[domain][index]
        duration = rng.uniform(1.0, 1.5)
        audio = _fade(_background(rng, _n(duration), -45.0), 0.05)
        return Draft(
            audio, question, answer, list(distractors),
            _clip_metadata("room_tone", audio, f"{duration:.1f} s of faint room tone; nothing else is heard.",
                           NUMPY_SYNTH, "none: the question is answerable from knowledge alone"),
        )

    return make


def families(speech_engine: str = DEFAULT_SPEECH_ENGINE) -> list[Family]:
    """The item families, sound then music then speech (knowledge families last in each domain)."""
    exe = _resolve_engine(speech_engine)
    word = (Family("spoken_word", "speech", "Word recognition", "any_part", 4, _make_spoken_word(exe))
            if exe else Family("vowel", "speech", "Vowel identity", "any_part", 4, _make_vowel))
    return [
        Family("noise_colour", "sound", "Noise colour", "any_part", 4, _make_noise_colour),
        Family("dtmf", "sound", "Telephone tones (DTMF)", "any_part", 4, _make_dtmf),
        Family("event_count", "sound", "Event counting", "whole_clip", 4, _make_event_count),
        Family("triad", "music", "Chord quality", "any_part", 4, _make_triad),
        Family("tempo", "music", "Tempo", "any_part", 4, _make_tempo),
        Family("dynamics", "music", "Dynamics", "whole_clip", 4, _make_dynamics),
        Family("intonation", "speech", "Intonation", "any_part", 2, _make_intonation),
        Family("voice", "speech", "Speaker characteristics", "any_part", 3, _make_voice),
        Family("syllable_count", "speech", "Syllable counting", "whole_clip", 4, _make_syllable_count),
        word,
    ] + [Family(f"knowledge_{d}", d, "Auditory knowledge (no audio needed)", "none", 4, _make_knowledge(d))
         for d in DOMAINS]


# --------------------------------------------------------------------------------------------
# Planning and writing a split


def _even(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def family_counts(n: int, split: str, speech_engine: str = DEFAULT_SPEECH_ENGINE,
                  knowledge_per_domain: int = KNOWLEDGE_PER_DOMAIN) -> dict[str, int]:
    """Items per family: domains as equal as possible, knowledge items (test split only) first,
    the rest shared evenly by the domain's audio families."""
    counts = {}
    fams = families(speech_engine)
    for domain, n_domain in zip(DOMAINS, _even(n, len(DOMAINS))):
        n_knowledge = min(knowledge_per_domain, len(KNOWLEDGE[domain]), n_domain) if split == "test" else 0
        counts[f"knowledge_{domain}"] = n_knowledge
        audio_families = [f.key for f in fams if f.domain == domain and f.reliance != "none"]
        counts.update(zip(audio_families, _even(n_domain - n_knowledge, len(audio_families))))
    return counts


def _rng(seed: int, split: str, *keys: str | int) -> np.random.Generator:
    """A generator for one stream; strings are hashed so adding a family never shifts another."""
    words = [zlib.crc32(k.encode()) if isinstance(k, str) else k for k in (split, *keys)]
    return np.random.default_rng([seed, *words])


def _arrange(answer: str, distractors: list[str], position: int, rng: np.random.Generator) -> list[str]:
    others = [distractors[i] for i in rng.permutation(len(distractors))]
    return others[:position] + [answer] + others[position:]


def _write_wav(path: Path, audio: np.ndarray) -> None:
    """16-bit PCM through the standard `wave` module, whose output bytes depend only on the samples."""
    peak = float(np.max(np.abs(audio)))
    if peak > 0.98:  # a global gain keeps every labelled level relation intact
        audio = audio * (0.98 / peak)
    pcm = np.round(audio * 32767).astype("<i2")
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def generate_split(out_dir: str | Path, seed: int, split: str, n: int, *,
                   speech_engine: str = DEFAULT_SPEECH_ENGINE, knowledge_per_domain: int = KNOWLEDGE_PER_DOMAIN,
                   ) -> Path:
    """Write `n` items of `split` (audio first, `<split>.json` last); returns the JSON path."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if n < 1:
        raise ValueError(f"n must be positive, not {n}")
    out_dir = Path(out_dir)
    json_path = out_dir / f"{split}.json"
    # An older suite's JSON next to half-rewritten audio would look complete: remove it first.
    json_path.unlink(missing_ok=True)

    by_key = {f.key: f for f in families(speech_engine)}
    counts = family_counts(n, split, speech_engine, knowledge_per_domain)
    plan = [(key, i) for key, count in counts.items() for i in range(count)]
    # Interleave families so any prefix of the file is a fair sample of the suite.
    plan = [plan[i] for i in _rng(seed, split, "order").permutation(len(plan))]
    # Answer positions: an exact round-robin per family, shuffled, so no letter is favoured.
    positions = {key: _rng(seed, split, "positions", key).permutation(np.arange(n_key) % by_key[key].n_choices)
                 for key, n_key in counts.items()}

    records = []
    for number, (key, index) in enumerate(plan, 1):
        family = by_key[key]
        rng = _rng(seed, split, key, index)
        draft = family.make(rng, index)
        if len(draft.distractors) + 1 != family.n_choices or draft.answer in draft.distractors:
            raise RuntimeError(f"{key}[{index}]: bad choices {draft.answer!r} / {draft.distractors!r}")
        item_id = f"akbsyn-{split}-{number:04d}"
        _write_wav(out_dir / "audio" / f"{item_id}.wav", draft.audio)
        records.append({
            "id": item_id,
            "audio_id": f"./audio/{item_id}.wav",
            "question": draft.question,
            "choices": _arrange(draft.answer, draft.distractors, int(positions[key][index]), rng),
            "answer": draft.answer,
            "dataset": DATASET,
            "task": family.domain,
            "split": split,
            "category": family.category,
            "sub-category": family.key,
            "difficulty": draft.difficulty,
            "reliance": family.reliance,
            "metadata": draft.metadata,
        })
    write_json(json_path, records)
    log.info("wrote %s: %d items", json_path, len(records))
    return json_path


def generate_suite(
    out_dir: str | Path, seed: int, n_test: int = DEFAULT_N_TEST, n_train: int = DEFAULT_N_TRAIN, *,
    speech_engine: str = DEFAULT_SPEECH_ENGINE, knowledge_per_domain: int = KNOWLEDGE_PER_DOMAIN,
) -> dict[str, Path]:
    """Write the test and train splits under `out_dir`; returns {split: JSON path}.

    `speech_engine`: "formant" (the default: never espeak-ng, the same suite on every machine),
    "auto" (espeak-ng when on PATH, else formant synthesis) or "espeak-ng" (required); the last two
    depend on the machine. Knowledge items go to the test split only: in training they would put
    test questions into the distillation data."""
    sizes = {"test": n_test, "train": n_train}
    return {split: generate_split(out_dir, seed, split, n, speech_engine=speech_engine,
                                  knowledge_per_domain=knowledge_per_domain)
            for split, n in sizes.items() if n > 0}


def load_suite(path: str | Path) -> list[dict]:
    """Records of one written split (`<out_dir>/<split>.json`)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def suite_files(out_dir: str | Path) -> list[Path]:
    """The files a written suite consists of: each split's JSON and every clip, sorted by path."""
    out_dir = Path(out_dir)
    splits = [out_dir / f"{split}.json" for split in SPLITS if (out_dir / f"{split}.json").is_file()]
    if not splits:
        raise FileNotFoundError(f"{out_dir}: no {' or '.join(f'{s}.json' for s in SPLITS)}: not a synthetic suite")
    return sorted([*splits, *(out_dir / "audio").glob("*.wav")], key=lambda p: p.relative_to(out_dir).as_posix())


def suite_digest(out_dir: str | Path) -> str:
    """Hex sha256 fingerprint of a written suite: of the lines `<sha256>  <path>` of `suite_files`,
    as `sha256sum` prints them, so it can be checked without Python:
    `cd DIR && sha256sum audio/*.wav *.json | LC_ALL=C sort -k2 | sha256sum` (with no other JSON there)."""
    out_dir = Path(out_dir)
    manifest = "".join(f"{sha256_file(p)}  {p.relative_to(out_dir).as_posix()}\n" for p in suite_files(out_dir))
    return hashlib.sha256(manifest.encode()).hexdigest()


def speech_synthesis(records: list[dict]) -> list[str]:
    """The engines that voiced the speech items (their `metadata.synthesis`), sorted."""
    return sorted({r["metadata"]["synthesis"] for r in records if r["task"] == "speech" and r["reliance"] != "none"})
