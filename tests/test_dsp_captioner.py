"""The offline `dsp` captioner on synthetic clips whose properties are known by construction."""

import re

import numpy as np
import pytest

from akb.audio import SAMPLE_RATE as SR
from akb.captioners import Captioner
from akb.captioners.dsp import DspCaptioner

RNG = np.random.default_rng(7)
PITCH_CLASSES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def _t(seconds):
    return np.arange(int(seconds * SR)) / SR


def _hz(note):
    name, octave = note[:-1], int(note[-1])
    return 440.0 * 2 ** ((PITCH_CLASSES.index(name) + 12 * (octave + 1) - 69) / 12)


def _tone(hz, seconds, amp=0.5, partials=(1.0,)):
    """A harmonic tone; partials are the relative amplitudes of harmonics 1, 2, 3..."""
    wave = sum(a * np.sin(2 * np.pi * hz * (k + 1) * _t(seconds)) for k, a in enumerate(partials))
    return amp * wave / np.max(np.abs(wave))


def _chord(notes, seconds=2.0):
    # Three harmonics per note: the 3rd harmonic of C is a G, which must not count as a note.
    wave = sum(_tone(_hz(n), seconds, 1.0, (1.0, 0.5, 0.25)) for n in notes)
    return 0.6 * wave / np.max(np.abs(wave))


def _glide_at_end(start_hz, end_hz, seconds=2.0, glide_s=0.5):
    freq = np.full(int(seconds * SR), start_hz)
    freq[-int(glide_s * SR) :] = np.geomspace(start_hz, end_hz, int(glide_s * SR))
    return 0.5 * np.sin(2 * np.pi * np.cumsum(freq) / SR)


def _noise(exponent, seconds=2.0):
    """Noise with power spectral density ~ 1/f**exponent (0 white, 2 brown), above 20 Hz."""
    n = int(seconds * SR)
    spectrum = np.fft.rfft(RNG.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spectrum[f < 20] = 0
    wave = np.fft.irfft(spectrum * np.maximum(f, 20) ** (-exponent / 2), n)
    return 0.5 * wave / np.max(np.abs(wave))


def _click_track(n=8, bpm=120, start=0.25):
    period = 60 / bpm
    wave = np.zeros(int((start + n * period) * SR))
    click = _tone(2000, 0.02, 0.8) * np.exp(-_t(0.02) / 0.004)
    for k in range(n):
        i = int((start + k * period) * SR)
        wave[i : i + click.size] += click
    return wave


CLIPS = {
    "crescendo": _tone(440, 3.0, 1.0) * np.geomspace(0.01, 0.8, 3 * SR),
    "decrescendo": _tone(440, 3.0, 1.0) * np.geomspace(0.8, 0.01, 3 * SR),
    "white": _noise(0),
    "brown": _noise(2),
    "c_major": _chord(["C4", "E4", "G4"]),
    "a_minor": _chord(["A3", "C4", "E4"]),
    "clicks": _click_track(),
    "rise_at_end": _glide_at_end(220, 330),
    "fall_at_end": _glide_at_end(220, 147),
    "silence": np.zeros(2 * SR),
    "short": _tone(440, 0.1),
    "clipped": np.clip(_tone(220, 1.0, 2.0), -1, 1),
}


@pytest.fixture(scope="module")
def captions():
    # One batch for all clips: the interface is batch-in, list-out, in order.
    texts = DspCaptioner().caption([clip.astype(np.float32) for clip in CLIPS.values()])
    return dict(zip(CLIPS, texts))


def _slope(text):
    return float(re.search(r"slopes by ([+-]\d+\.\d) dB per octave", text).group(1))


def test_interface(captions):
    captioner = DspCaptioner()
    assert isinstance(captioner, Captioner) and captioner.name == "dsp"
    assert len(captions) == len(CLIPS) and all(isinstance(c, str) and c for c in captions.values())
    assert captioner.caption([]) == []


def test_loudness_contour(captions):
    assert "Loudness rises" in captions["crescendo"] and "louder" in captions["crescendo"]
    assert "Loudness falls" in captions["decrescendo"] and "quieter" in captions["decrescendo"]
    assert "Loudness is steady" in captions["white"]


def test_noise_colour_and_slope(captions):
    white, brown = captions["white"], captions["brown"]
    assert "noise-like" in white and "closest to white noise" in white and abs(_slope(white)) < 1.5
    assert "closest to brown" in brown and -7.5 < _slope(brown) < -4.5
    assert "tonal" not in white and "Pitch" not in white


@pytest.mark.parametrize(
    "clip, classes, triad",
    [("c_major", "C, E and G", "a C major triad"), ("a_minor", "A, C and E", "an A minor triad")],
)
def test_triads(captions, clip, classes, triad):
    text = captions[clip]
    assert "The sound is tonal" in text
    assert f"pitch classes {classes} " in text and triad in text


def test_click_track_count_and_tempo(captions):
    text = captions["clicks"]
    assert "8 distinct sound events" in text
    bpm = float(re.search(r"about (\d+) BPM", text).group(1))
    assert abs(bpm - 120) <= 3
    assert "Silence" in text  # the gaps between clicks are reported, not ignored


def test_pitch_at_the_end(captions):
    rise, fall = captions["rise_at_end"], captions["fall_at_end"]
    assert "median 220 Hz (A3)" in rise and "rising at the end" in rise and "falling" not in rise
    assert "median 220 Hz (A3)" in fall and "falling at the end" in fall and "rising" not in fall


def test_silence_short_and_clipped(captions):
    assert "silent" in captions["silence"] and "all samples are zero" in captions["silence"]
    assert "0.10-second" in captions["short"] and "440 Hz (A4)" in captions["short"]
    assert "clipping" in captions["clipped"] and "clipping" not in captions["crescendo"]


def test_degenerate_inputs():
    captioner = DspCaptioner()
    empty, one_sample, with_nan = captioner.caption(
        [np.zeros(0, np.float32), np.array([0.5], np.float32), np.array([0.1, np.nan] * 800, np.float32)]
    )
    assert "no samples" in empty and "millisecond" in one_sample and with_nan
    with pytest.raises(ValueError, match="mono"):
        captioner.caption([np.zeros((2, SR), np.float32)])
