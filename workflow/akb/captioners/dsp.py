"""The offline `dsp` captioner: a factual description of a clip built from signal features alone.

It needs no model, so the cascade can run (and be tested) without a hub or a GPU. Every sentence
reports something measured, with its number, so that a text LLM reading the caption gets evidence
rather than a guess: level and loudness contour, silence, tonal vs noise-like (and the noise colour
from the spectral slope), pitch and its contour, simultaneous notes and triad quality, onsets and a
tempo when the onsets are evenly spaced.

Analysis plan (one pass per clip, STFTs shared where the resolution allows):
  * sample domain: level, clipping, frame RMS (silence, loudness contour);
  * one long-window STFT (256 ms, 3.9 Hz bins): tonality, spectral slope, centroid, note peaks;
  * librosa's onset envelope (its own short-window mel spectrogram, needed for timing precision);
  * pYIN, only for clips with a single pitch line, since it is by far the slowest step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from akb.audio import SAMPLE_RATE, SILENCE_PEAK, is_silent
from akb.captioners import Captioner

# Long-window STFT: fine frequency resolution for pitch peaks and the noise slope.
N_FFT = 4096
HOP = 1024
# Frame RMS, onsets and pYIN share a 16 ms hop, so their frames line up.
FRAME_HOP = 256
RMS_FRAME = 512  # 32 ms: short enough to see the gaps between clicks
PYIN_FRAME = 2048
PYIN_FMIN = 40.0  # below C2, so that a low hum is not clamped to the search floor
PYIN_FMAX = 2093.0  # C7
# A quarter-semitone pYIN grid is ~6x faster than the default tenth and still names notes exactly.
PYIN_RESOLUTION = 0.25

SILENT_DBFS = -60.0  # frames quieter than this count as silence
MIN_GAP_S = 0.2  # shorter quiet stretches are pauses inside a sound, not silence worth reporting
SHORT_CLIP_S = 0.25  # below this, contour, onset and pYIN analyses have too few frames to mean anything

PEAK_RATIO = 10.0  # a bin 10 dB above its local median is a spectral peak, not a noise fluctuation
TONAL_FRACTION = 0.7  # share of energy in peaks above which a clip is called tonal
NOISE_FRACTION = 0.1  # ... and below which it is called noise-like
NOTE_FLOOR = 0.1  # a peak more than 20 dB (amplitude) below the frame's strongest is not a note
HARMONIC_TOLERANCE = 0.03  # about half a semitone: a partial this close to n*f0 belongs to f0
MAX_NOTE_FRAMES = 150  # peak-picking on more frames than this adds time but not information
MIN_CHORD_S = 0.25  # a triad must hold this long to enter a chord sequence

# Onsets: the envelope is mean dB rise per mel band per frame. Steady noise wobbles around
# 0.5 and rarely peaks 1 dB above its local mean; note and click onsets rise 2.5 to 40.
ONSET_MIN_DELTA = 1.0
ONSET_DELTA_PER_MEDIAN = 1.5  # busy signals (speech) have a high median flux; ask more of a peak
ONSET_LEAD_S = 0.1  # silence put before the clip, so that a sound present at t=0 has an onset too
REGULAR_SPREAD = 0.1  # inter-onset intervals varying less than this (std/mean) form a pulse

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
TRIADS = {"major": (0, 4, 7), "minor": (0, 3, 7), "diminished": (0, 3, 6), "augmented": (0, 4, 8)}
INTERVALS = (
    "unison/octave", "minor second", "major second", "minor third", "major third", "perfect fourth",
    "tritone", "perfect fifth", "minor sixth", "major sixth", "minor seventh", "major seventh",
)
# Noise colours by power-spectral-density slope (dB/octave): white 0, pink -3, brown -6.
NOISE_COLOURS = (
    (1.5, "rising toward high frequencies (blue/violet-like noise)"),
    (-1.5, "white noise"),
    (-4.5, "pink noise"),
    (-7.5, "brown (red) noise"),
    (-np.inf, "steeper than brown noise (a low rumble)"),
)


class DspCaptioner(Captioner):
    """Captions from librosa/numpy features; deterministic, offline, CPU-only."""

    name = "dsp"

    def __init__(self, sample_rate: int = SAMPLE_RATE):
        self.sample_rate = sample_rate

    def caption(self, audios: list[np.ndarray]) -> list[str]:
        return [caption_clip(audio, self.sample_rate) for audio in audios]


def caption_clip(audio: np.ndarray, sr: int = SAMPLE_RATE) -> str:
    """The caption of one mono float clip in [-1, 1] (a few sentences, each backed by numbers)."""
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"dsp captioner: expected a mono 1-D clip, got shape {y.shape}")
    # load_audio already rejects NaN/inf; arrays from elsewhere get them zeroed rather than crash.
    y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    duration = y.size / sr
    if y.size == 0:
        return "An empty clip: it holds no samples."
    if is_silent(y):
        return _silent_caption(y, duration)

    sentences = [_level_sentence(y, duration)]
    # The offset is reported above; left in, it would leak into the low bins as a fake rumble.
    y = y - np.mean(y, dtype=np.float64).astype(np.float32)
    if is_silent(y):
        return " ".join(sentences + ["Apart from that constant offset the clip is silent."])
    active = _frame_db(y) >= SILENT_DBFS
    frame_s = FRAME_HOP / sr
    if not active.any():
        quiet = f"It is near-silent: no 32 ms frame rises above {SILENT_DBFS:.0f} dBFS."
        return " ".join(sentences + [quiet])
    short = duration < SHORT_CLIP_S
    if not short:
        sentences.append(_loudness_sentence(y, sr, active, frame_s))
    sentences.append(_silence_sentence(active, frame_s, duration))

    spectrum = _analyse_spectrum(y, sr)
    # A noise colour describes continuous noise; bursts between silences or a clip of a few
    # milliseconds get the measured slope only.
    sentences.append(_character_sentence(spectrum, name_colour=not short and active.mean() > 0.5))
    if spectrum.kind != "noise":
        sentences.append(_pitch_or_chord_sentence(y, sr, spectrum, active, short))
    if not short:
        sentences.append(_onset_sentence(_onsets(y, sr), duration))
    return " ".join(s for s in sentences if s)


def _plural(n: float, word: str) -> str:
    return f"{n:.0f} {word}" + ("" if round(n) == 1 else "s")


def _duration(seconds: float) -> str:
    return f"{seconds:.2f}-second" if seconds >= 0.1 else f"{1000 * seconds:.1f}-millisecond"


# ---------------------------------------------------------------------------------------------
# Level, loudness contour, silence


def _db(power: np.ndarray | float) -> np.ndarray | float:
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def _silent_caption(y: np.ndarray, duration: float) -> str:
    peak = float(np.max(np.abs(y)))
    detail = "all samples are zero" if peak == 0 else f"peak level {_db(peak**2):.0f} dBFS"
    return (
        f"A {_duration(duration)} clip that is silent ({detail}, below the "
        f"{_db(SILENCE_PEAK**2):.0f} dBFS silence threshold): no sound events, no pitch."
    )


def _level_sentence(y: np.ndarray, duration: float) -> str:
    peak = float(np.max(np.abs(y)))
    rms_db = _db(float(np.mean(y.astype(np.float64) ** 2)))
    text = f"A {_duration(duration)} clip; overall RMS level {rms_db:.1f} dBFS, peak {_db(peak**2):.1f} dBFS."
    offset = float(np.mean(y, dtype=np.float64))
    if abs(offset) >= 0.01:  # 1% of full scale: audible as a click at start/stop, worth a mention
        text += f" The waveform carries a DC offset of {offset:+.3f} ({_db(offset**2):.0f} dBFS)."
    clipped = _clipped_fraction(y)
    if clipped > 0:
        text += (
            f" {100 * clipped:.1f}% of the samples sit flat at the waveform's extremes in runs of 3 or "
            "more: a flat-topped waveform, as produced by clipping."
        )
    return text


def _clipped_fraction(y: np.ndarray) -> float:
    """Share of samples in flat runs (>= 3 samples) at the positive or negative extreme. Clipping
    shows as exact plateaus, whereas a smooth waveform never repeats its extreme value 3 samples in
    a row (for tones above ~30 Hz at 16 kHz), so plateaus are counted rather than near-peak
    samples. Each polarity is checked on its own: clipping is often asymmetric."""
    lengths = []
    for sign, extreme in ((1, float(y.max())), (-1, float(y.min()))):
        if sign * extreme >= 0.05:  # a plateau on the far side of zero is an offset, not clipping
            lengths += [b - a for a, b in _runs(sign * y >= sign * extreme * (1 - 1e-4)) if b - a >= 3]
    if len(lengths) < 2:  # one plateau can be a held sample; clipping repeats
        return 0.0
    return float(sum(lengths)) / y.size


def _frame_db(y: np.ndarray) -> np.ndarray:
    import librosa

    rms = librosa.feature.rms(y=y, frame_length=RMS_FRAME, hop_length=FRAME_HOP, center=True)[0]
    return _db(rms.astype(np.float64) ** 2)


def _loudness_sentence(y: np.ndarray, sr: int, active: np.ndarray, frame_s: float) -> str:
    """Compare RMS across equal segments of the sounding span (leading/trailing silence is
    trimmed, so that a sound starting late does not read as a crescendo)."""
    first, last = np.flatnonzero(active)[[0, -1]]
    span = y[int(first * frame_s * sr) : int((last + 1) * frame_s * sr)].astype(np.float64)
    span_s = span.size / sr
    if span_s < 2 * SHORT_CLIP_S:
        return ""
    n = int(np.clip(span_s // 0.25, 2, 6))
    levels = np.array([_db(np.mean(seg**2)) for seg in np.array_split(span, n)])
    listing = ", ".join(f"{v:.0f}" for v in levels)
    segments = f"RMS of {n} successive {span_s / n:.2f} s segments {listing} dBFS"
    return f"Loudness {_contour_kind(levels)}: {segments}."


def _contour_kind(levels: np.ndarray) -> str:
    """A 6 dB change (twice the power) is the least called a trend; up to 3 dB of movement against
    it is tolerated, since real sounds never change perfectly smoothly."""
    change = levels[-1] - levels[0]
    steps = np.diff(levels)
    spread = levels.max() - levels.min()
    if change >= 6 and steps[steps < 0].sum() >= -3:
        return f"rises over the clip, getting louder by {change:.0f} dB"
    if change <= -6 and steps[steps > 0].sum() <= 3:
        return f"falls over the clip, getting quieter by {-change:.0f} dB"
    top = int(np.argmax(levels))
    if 0 < top < levels.size - 1 and levels[top] - max(levels[0], levels[-1]) >= 6:
        return "rises then falls"
    if spread >= 6:
        return f"fluctuates over a {spread:.0f} dB range"
    return f"is steady (within {spread:.0f} dB)"


def _silence_sentence(active: np.ndarray, frame_s: float, duration: float) -> str:
    min_frames = int(np.ceil(MIN_GAP_S / frame_s))
    gaps = [(a, b) for a, b in _runs(~active) if b - a >= min_frames]
    if not gaps:
        return ""
    share = min(1.0, sum(b - a for a, b in gaps) * frame_s / duration)
    n = active.size
    parts = []
    if gaps[0][0] == 0:
        parts.append(f"{gaps[0][1] * frame_s:.2f} s at the start")
    inner = [(a, b) for a, b in gaps if a > 0 and b < n]
    if inner:
        a, b = max(inner, key=lambda g: g[1] - g[0])
        parts.append(
            f"{len(inner)} gap{'s' if len(inner) > 1 else ''} inside "
            f"(longest {(b - a) * frame_s:.2f} s, at {a * frame_s:.2f}-{b * frame_s:.2f} s)"
        )
    if gaps[-1][1] == n and gaps[-1][0] > 0:
        parts.append(f"{(n - gaps[-1][0]) * frame_s:.2f} s at the end")
    where = ", ".join(parts)
    return f"Silence (below {SILENT_DBFS:.0f} dBFS) covers {100 * share:.0f}% of the clip: {where}."


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


# ---------------------------------------------------------------------------------------------
# Spectrum: tonality, noise colour


@dataclass
class _Spectrum:
    freqs: np.ndarray
    times: np.ndarray  # centre of each kept (non-silent) frame, seconds
    hop_s: float
    power: np.ndarray  # (bins, kept frames)
    ratio: np.ndarray  # power over its local median across frequency: peakiness per bin
    flatness: float  # nan for clips shorter than one STFT window
    peak_fraction: float
    slope_db_per_octave: float
    slope_residual_db: float
    centroid_hz: float
    kind: str  # "tonal" | "noise" | "mixed"


def _analyse_spectrum(y: np.ndarray, sr: int) -> _Spectrum:
    import librosa
    from scipy.ndimage import median_filter

    padded = np.pad(y, (0, max(0, N_FFT - y.size)))  # short clips: avoid librosa's n_fft warning
    power = np.abs(librosa.stft(padded, n_fft=N_FFT, hop_length=HOP)) ** 2
    energy = power.sum(axis=0)
    keep = energy >= energy.max() * 1e-4
    power = power[:, keep].astype(np.float64)
    times = np.flatnonzero(keep) * HOP / sr
    freqs = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    # Dividing by the local median removes the overall tilt, so brown noise (steep but peak-free)
    # is not mistaken for tonal, as plain spectral flatness would suggest.
    ratio = power / (median_filter(power, size=(31, 1), mode="nearest") + power.max() * 1e-12)
    band = (freqs >= 50) & (freqs <= min(7000.0, 0.45 * sr))
    r = ratio[band] + 1e-12
    flatness = float(np.median(np.exp(np.log(r).mean(axis=0)) / r.mean(axis=0)))
    if y.size < N_FFT:  # mostly zero padding: its smooth leakage floor would read as noise
        flatness = float("nan")
    in_band = power[band]
    peak_fraction = float(in_band[ratio[band] > PEAK_RATIO].sum() / max(in_band.sum(), 1e-30))
    mean_power = power.mean(axis=1)
    slope, residual = _spectral_slope(freqs, mean_power, sr)
    audible = freqs >= 20  # sub-audio drift (random-walk noise) would drag the centroid to ~0 Hz
    centroid = float((freqs * mean_power)[audible].sum() / max(mean_power[audible].sum(), 1e-30))
    if peak_fraction >= TONAL_FRACTION:
        kind = "tonal"
    elif peak_fraction <= NOISE_FRACTION:
        kind = "noise"
    else:
        kind = "mixed"
    return _Spectrum(
        freqs, times, HOP / sr, power, ratio, flatness, peak_fraction, slope, residual, centroid, kind
    )


def _spectral_slope(freqs: np.ndarray, mean_power: np.ndarray, sr: int) -> tuple[float, float]:
    """Least-squares slope (dB/octave) of the power spectral density over third-octave bands
    63 Hz - 6.3 kHz, and the rms residual of that line. Bands, not bins, so that each octave
    weighs the same (bins would let the top octaves dominate the fit)."""
    x, level = [], []
    for fc in 63.0 * 2.0 ** (np.arange(21) / 3):
        if fc > 0.4 * sr:  # the anti-aliasing roll-off near Nyquist is no property of the sound
            break
        sel = (freqs >= fc * 2 ** (-1 / 6)) & (freqs < fc * 2 ** (1 / 6))
        if sel.any():
            x.append(np.log2(fc))
            level.append(_db(mean_power[sel].mean()))
    slope, intercept = np.polyfit(x, level, 1)
    residual = float(np.sqrt(np.mean((np.polyval([slope, intercept], x) - level) ** 2)))
    return float(slope), residual


def _character_sentence(s: _Spectrum, name_colour: bool) -> str:
    evidence = f"{100 * s.peak_fraction:.0f}% of the energy in sharp spectral peaks"
    evidence += (
        f", tilt-corrected spectral flatness {s.flatness:.2f} "
        "(0 = pure tone, about 0.56 = random noise, 1 = perfectly smooth spectrum)"
        if np.isfinite(s.flatness)
        else ""
    )
    centroid = f"spectral centroid {s.centroid_hz:.0f} Hz"
    if s.kind == "tonal":
        return f"The sound is tonal: {evidence}; {centroid}."
    if s.kind == "mixed":
        return f"The sound mixes tones and noise: {evidence}; {centroid}."
    slope = f"{s.slope_db_per_octave:+.1f} dB per octave"
    if not name_colour:
        return (
            f"The sound has no sharp spectral peaks ({evidence}); {centroid}; "
            f"its power spectrum slopes by {slope}."
        )
    colour = next(name for bound, name in NOISE_COLOURS if s.slope_db_per_octave > bound)
    text = (
        f"The sound is noise-like, with no sharp spectral peaks ({evidence}); {centroid}. "
        f"Its power spectrum slopes by {slope}, closest to {colour} "
        "(white is flat, pink -3 dB/octave, brown -6 dB/octave)"
    )
    if s.slope_residual_db > 3:
        text += (
            f"; the spectrum departs from a straight line by {s.slope_residual_db:.0f} dB rms, "
            "so the colour is approximate"
        )
    return text + "."


# ---------------------------------------------------------------------------------------------
# Notes and chords from spectral peaks


@dataclass
class _Notes:
    times: list[float]  # frames with at least one note
    frame_s: float  # spacing of the analysed frames
    frames: list[list[tuple[float, float]]]  # (MIDI number, amplitude) per note, low to high
    polyphonic: bool
    pitch_classes: list[int]  # present in at least half of the note frames, low to high
    midi: list[int]  # typical note (with octave) of each of those pitch classes
    dominant_hz: float  # median frequency of each frame's strongest note
    bass_hz: float  # median frequency of each frame's lowest note


def _note_summary(s: _Spectrum) -> _Notes:
    """Notes per frame from spectral peaks, after folding each harmonic into its fundamental, so
    that e.g. the 3rd harmonic of C (a G) is not counted as a note of its own."""
    step = max(1, s.power.shape[1] // MAX_NOTE_FRAMES)
    columns = range(0, s.power.shape[1], step)
    picked = [(s.times[j], _frame_notes(s.freqs, s.power[:, j], s.ratio[:, j])) for j in columns]
    picked = [(t, f) for t, f in picked if f]
    if not picked:
        return _Notes([], 0.0, [], False, [], [], float("nan"), float("nan"))
    times, frames = [t for t, _ in picked], [f for _, f in picked]
    per_frame_pcs = [{round(m) % 12 for m, _ in f} for f in frames]
    polyphonic = float(np.median([len(p) for p in per_frame_pcs])) >= 2
    counts = np.zeros(12)
    heights: dict[int, list[float]] = {}
    for f, pcs in zip(frames, per_frame_pcs):
        counts[list(pcs)] += 1
        for m, _ in f:
            heights.setdefault(round(m) % 12, []).append(m)
    common = [pc for pc in range(12) if counts[pc] >= 0.5 * len(frames)]
    typical = {pc: round(np.median(heights[pc])) for pc in common}
    common.sort(key=lambda pc: typical[pc])
    strongest = [max(f, key=lambda note: note[1])[0] for f in frames]
    return _Notes(
        times, step * s.hop_s, frames, polyphonic, common, [typical[pc] for pc in common],
        _midi_hz(float(np.median(strongest))), _midi_hz(float(np.median([f[0][0] for f in frames]))),
    )


def _frame_notes(freqs: np.ndarray, power: np.ndarray, ratio: np.ndarray) -> list[tuple[float, float]]:
    """(MIDI number, amplitude) of each note in one frame, low to high."""
    from scipy.signal import find_peaks

    lo, hi = np.searchsorted(freqs, [55.0, 4200.0])
    log_p = _db(power[lo:hi])
    idx, _ = find_peaks(log_p)
    idx = idx[ratio[lo:hi][idx] > PEAK_RATIO]
    if idx.size == 0:
        return []
    idx = idx[log_p[idx] >= log_p[idx].max() - 40]
    # Parabolic interpolation on dB: the 3.9 Hz bin grid alone is a third of a semitone at C3.
    a, b, c = log_p[idx - 1], log_p[idx], log_p[idx + 1]
    curvature = a - 2 * b + c
    offset = 0.5 * (a - c) / np.where(curvature == 0, -1e-9, curvature)
    hz = (lo + idx + offset) * (freqs[1] - freqs[0])
    return _harmonic_sieve(hz, np.sqrt(power[lo + idx]))


def _harmonic_sieve(hz: np.ndarray, amp: np.ndarray) -> list[tuple[float, float]]:
    """Walk peaks from low to high; a peak near n*f0 of an accepted note is that note's partial.
    Non-octave partials are folded only when not louder than their fundamental: a loud fifth
    above a bass note is more likely a chord tone than its 3rd harmonic. That exception needs a
    note that is no partial of the bass at all, though: without one, the frame is a single tone
    with a strong upper partial (a plucked string, a clarinet), not a chord."""
    notes: list[tuple[float, float]] = []
    loudest = amp.max()
    for f, a in sorted(zip(hz, amp)):
        partial = any(_is_partial(f, f0) and (round(f / f0) in (2, 4, 8) or a <= a0) for f0, a0 in notes)
        if not partial and a >= NOTE_FLOOR * loudest:
            notes.append((f, a))
    if all(_is_partial(f, notes[0][0]) for f, _ in notes[1:]):
        notes = notes[:1]
    return [(float(69 + 12 * np.log2(f / 440.0)), float(a)) for f, a in notes]


def _is_partial(f: float, f0: float) -> bool:
    n = round(f / f0)
    return n >= 2 and abs(f / (n * f0) - 1) < HARMONIC_TOLERANCE


def _midi_hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _note_name(midi: float) -> str:
    m = round(midi)
    return f"{PITCH_CLASSES[m % 12]}{m // 12 - 1}"


def _hz_name(hz: float) -> str:
    return f"{hz:.0f} Hz ({_note_name(69 + 12 * np.log2(hz / 440.0))})"


def _chord_name(root: int, quality: str) -> str:
    return f"{PITCH_CLASSES[root]} {quality}"


def _triad(pitch_classes: list[int]) -> tuple[int, str] | None:
    """(root, quality) when the set is exactly a triad; roots are tried from the bass up, which
    names the symmetric augmented triad after its lowest note."""
    pcs = set(pitch_classes)
    if len(pcs) != 3:
        return None
    for root in pitch_classes:
        for quality, steps in TRIADS.items():
            if {(root + s) % 12 for s in steps} == pcs:
                return root, quality
    return None


def _chord_sequence(notes: _Notes) -> list[tuple[str, float, float]]:
    """(chord, start s, end s) runs of frames holding the same triad, when the triad changes.
    Frames spanning a chord change hold both chords' notes and match no triad; such frames and
    blips shorter than MIN_CHORD_S are skipped, and neighbours with the same chord merged."""
    labels = [_frame_triad(f) for f in notes.frames]
    runs: list[tuple[str, float, float]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        gap = i < len(labels) and notes.times[i] - notes.times[i - 1] > 1.5 * notes.frame_s
        if i < len(labels) and labels[i] == labels[start] and not gap:
            continue
        label, t0, t1 = labels[start], notes.times[start], notes.times[i - 1] + notes.frame_s
        if label and t1 - t0 >= MIN_CHORD_S:
            if runs and runs[-1][0] == label:
                runs[-1] = (label, runs[-1][1], t1)
            else:
                runs.append((label, t0, t1))
        start = i
    return runs if len({name for name, _, _ in runs}) >= 2 else []


def _frame_triad(frame: list[tuple[float, float]]) -> str | None:
    pcs = list(dict.fromkeys(round(m) % 12 for m, _ in frame))  # bass first, no repeats
    triad = _triad(pcs)
    return _chord_name(*triad) if triad else None


def _chord_sentence(notes: _Notes) -> str:
    """The chord (or chord sequence) of a polyphonic clip, or "" when no stable set of notes exists."""
    sequence = _chord_sequence(notes)
    if sequence:
        listing = ", ".join(f"{name} ({t0:.2f}-{t1:.2f} s)" for name, t0, t1 in sequence[:8])
        more = f", and {len(sequence) - 8} more" if len(sequence) > 8 else ""
        return f"Several notes sound at once, and the triad they form changes over time: {listing}{more}."
    names = [PITCH_CLASSES[pc] for pc in notes.pitch_classes]
    if len(names) < 2:  # no stable set of notes to name; the caller falls back to a pitch track
        return ""
    text = (
        f"Several notes sound at once: pitch classes {', '.join(names[:-1])} and {names[-1]} "
        f"(typical notes {', '.join(_note_name(m) for m in notes.midi)}, low to high)"
    )
    triad = _triad(notes.pitch_classes)
    if triad:
        name = _chord_name(*triad)
        text += f"; together they form {'an' if name[0] in 'AEF' else 'a'} {name} triad"
    elif len(names) == 2:
        text += f"; the interval between them is a {INTERVALS[(notes.midi[1] - notes.midi[0]) % 12]}"
    else:
        text += "; they do not form a major, minor, diminished or augmented triad"
    return text + "."


# ---------------------------------------------------------------------------------------------
# Pitch track (pYIN)


@dataclass
class _Pitch:
    voiced_share: float  # of the sounding (non-silent) frames
    midi: np.ndarray  # voiced frames only
    times: np.ndarray


def _pitch_or_chord_sentence(y: np.ndarray, sr: int, s: _Spectrum, active: np.ndarray, short: bool) -> str:
    notes = _note_summary(s)
    # Simultaneous notes are trusted only in clearly tonal clips: in speech and other mixed sounds a
    # pitch gliding within the 256 ms window leaves several peaks that look like a chord.
    chords = _chord_sentence(notes) if s.kind == "tonal" and notes.polyphonic else ""
    if chords:
        return chords
    strongest = f"strongest spectral note {_hz_name(notes.dominant_hz)}" if notes.frames else ""
    if short:
        return f"Pitch: {strongest} (too short for a pitch contour)." if strongest else ""
    if notes.frames and notes.bass_hz > 0.95 * PYIN_FMAX:
        # pYIN would report a subharmonic inside its search range; the spectral note is the measurement.
        limit = f"{PYIN_FMAX:.0f} Hz"
        return f"Pitch: {strongest}, above the {limit} pitch-tracker range, so no contour is given."
    pitch = _pitch_track(y, sr, active)
    if pitch.midi.size >= 5 and pitch.voiced_share >= 0.1:
        return _pitch_sentence(pitch)
    share = f"{100 * pitch.voiced_share:.0f}%"
    text = f"No stable pitch line: pYIN finds a pitch in {share} of the sounding frames"
    return text + (f"; {strongest}." if strongest else ".")


def _pitch_track(y: np.ndarray, sr: int, active: np.ndarray) -> _Pitch:
    import librosa

    f0, voiced, _ = librosa.pyin(
        y, fmin=PYIN_FMIN, fmax=PYIN_FMAX, sr=sr, frame_length=PYIN_FRAME, hop_length=FRAME_HOP,
        resolution=PYIN_RESOLUTION,
    )
    n = min(f0.size, active.size)  # same hop and centring; guard against an off-by-one anyway
    keep = voiced[:n] & np.isfinite(f0[:n]) & active[:n]
    times = librosa.times_like(f0, sr=sr, hop_length=FRAME_HOP)[:n]
    share = float(keep.sum() / max(active[:n].sum(), 1))
    return _Pitch(share, 69 + 12 * np.log2(f0[:n][keep] / 440.0), times[keep])


def _pitch_sentence(p: _Pitch) -> str:
    hz = _midi_hz(p.midi)
    lo, hi = np.percentile(hz, [5, 95])
    text = (
        f"Pitch (pYIN, found in {100 * p.voiced_share:.0f}% of the sounding frames): "
        f"median {_hz_name(float(np.median(hz)))}, range {lo:.0f}-{hi:.0f} Hz"
    )
    body, end = _pitch_contour(p)
    contour = ", then ".join(part for part in (body, end) if part)
    return text + (f"; {contour}." if contour else ".")


def _pitch_contour(p: _Pitch) -> tuple[str, str]:
    """(the pitch before the ending, the ending or ""). The ending is the last 20% of the pitched
    span, kept within 0.25-1 s: a question-like rise or a final fall is confined to about that and
    would be diluted in a whole-clip trend."""
    t0, t1 = p.times[0], p.times[-1]
    window = float(np.clip(0.2 * (t1 - t0), 0.25, 1.0))
    tail = p.times >= t1 - window
    head = ~tail
    end = ""
    if tail.sum() >= 3:
        slope = np.polyfit(p.times[tail], p.midi[tail], 1)[0]
        change = slope * (p.times[tail][-1] - p.times[tail][0])
        final = _hz_name(_midi_hz(float(np.median(p.midi[-3:]))))
        if abs(change) >= 1:
            direction, way = ("rising", "up") if change > 0 else ("falling", "down")
            end = (
                f"{direction} at the end: {way} about {_plural(abs(change), 'semitone')} "
                f"over the final {window:.2f} s, ending near {final}"
            )
    if head.sum() < 3:  # the pitched span is about as short as the ending window
        return "", end
    spread = np.subtract(*np.percentile(p.midi[head], [95, 5]))
    trend = np.polyfit(p.times[head], p.midi[head], 1)[0] * (p.times[head][-1] - p.times[head][0])
    if spread < 1:
        body = f"steady (within {spread:.1f} semitones)"
    elif abs(trend) >= 1 and abs(trend) >= 0.6 * spread:
        body = f"{'rising' if trend > 0 else 'falling'} by about {_plural(abs(trend), 'semitone')}"
    else:
        body = f"varying over about {_plural(spread, 'semitone')}"
    return (body if end else body + " through to the end"), end


# ---------------------------------------------------------------------------------------------
# Onsets and tempo


def _onsets(y: np.ndarray, sr: int) -> np.ndarray:
    """Onset times in seconds. The envelope keeps its absolute units rather than being scaled to
    its maximum as librosa does by default: scaling would turn the tiny frame-to-frame wobble of a
    held tone into "onsets"."""
    import librosa

    lead = int(ONSET_LEAD_S * sr)
    env = librosa.onset.onset_strength(y=np.pad(y, (lead, 0)), sr=sr, hop_length=FRAME_HOP)
    per_s = sr / FRAME_HOP
    times = librosa.onset.onset_detect(
        onset_envelope=env, sr=sr, hop_length=FRAME_HOP, units="time", normalize=False,
        delta=max(ONSET_MIN_DELTA, ONSET_DELTA_PER_MEDIAN * float(np.median(env))),
        wait=int(0.05 * per_s), pre_max=int(0.03 * per_s), post_max=int(0.03 * per_s) + 1,
        pre_avg=int(0.1 * per_s), post_avg=int(0.1 * per_s) + 1,
    )
    return np.maximum(times - lead / sr, 0.0)


def _onset_sentence(times: np.ndarray, duration: float) -> str:
    n = times.size
    if n == 0:
        return "No distinct onsets: the sound changes too gradually to mark separate events."
    at_start = " (the start of the clip)" if times[0] < 0.05 else ""
    if n == 1:
        return f"One distinct sound event, with its onset at {times[0]:.2f} s{at_start}; no further onsets."
    text = f"{n} distinct sound events (onsets from {times[0]:.2f} s{at_start} to {times[-1]:.2f} s"
    intervals = np.diff(times)
    spread = float(intervals.std() / intervals.mean())
    if n >= 4 and spread <= REGULAR_SPREAD:
        # The fitted spacing averages out the 16 ms quantisation of each onset time.
        period = float(np.polyfit(np.arange(n), times, 1)[0])
        return text + (
            f"), evenly spaced one every {period:.2f} s (interval variation {100 * spread:.0f}%): "
            f"a regular pulse of about {60 / period:.0f} BPM."
        )
    return text + (
        f", {n / duration:.1f} per second); the spacing is irregular "
        f"(intervals {intervals.min():.2f}-{intervals.max():.2f} s), so no tempo is given."
    )


__all__ = ["DspCaptioner", "caption_clip"]
