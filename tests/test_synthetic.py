"""The synthetic audio suite: determinism, layout, balance, and that each clip carries its label."""

import collections
import hashlib
import shutil

import numpy as np
import pytest
from scipy.linalg import solve_toeplitz
from scipy.ndimage import maximum_filter1d
from scipy.signal import welch

from akb.audio import SAMPLE_RATE, is_silent, load_audio
from akb.data import synthetic as syn
from akb.scoring.answers import string_match
from conftest import require_optional

MMAU_KEYS = {"id", "audio_id", "question", "choices", "answer", "dataset", "task", "split", "category",
             "sub-category", "difficulty"}


@pytest.fixture(scope="session")
def suite(tmp_path_factory):
    """The default suite (formant speech on every machine); built once."""
    out = tmp_path_factory.mktemp("suite")
    paths = syn.generate_suite(out, seed=7)  # its speed: bench/synthetic_generation.py
    return out, {split: syn.load_suite(path) for split, path in paths.items()}


@pytest.fixture(scope="session")
def formant_suite(tmp_path_factory):
    """A small `auto` suite falling back to formant speech, as on a machine without espeak-ng."""
    out = tmp_path_factory.mktemp("formant")
    mp = pytest.MonkeyPatch()
    mp.setattr(shutil, "which", lambda name, *a, **k: None)
    try:
        paths = syn.generate_suite(out, seed=11, n_test=60, n_train=120, speech_engine="auto")
        with pytest.raises(RuntimeError, match="espeak-ng is not on PATH"):
            syn.generate_suite(out / "x", seed=11, n_test=3, n_train=0, speech_engine="espeak-ng")
    finally:
        mp.undo()
    return out, {split: syn.load_suite(path) for split, path in paths.items()}


def clips(out, records, family):
    for r in records:
        if r["sub-category"] == family:
            yield r, load_audio(out / r["audio_id"])


# ---------------------------------------------------------------------------------------------
# Signal measurements (independent of the generator's code)


def onsets(x: np.ndarray, rel_threshold: float = 0.2, refractory_s: float = 0.1) -> np.ndarray:
    """Onset times (s): the envelope crossing `rel_threshold` of its peak, at most one per refractory."""
    env = maximum_filter1d(np.abs(x), size=int(0.015 * SAMPLE_RATE))
    above = env > rel_threshold * env.max()
    rising = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    kept = []
    for i in rising:
        if not kept or i - kept[-1] > refractory_s * SAMPLE_RATE:
            kept.append(i)
    return np.array(kept) / SAMPLE_RATE


def pitch_contour(x: np.ndarray) -> np.ndarray:
    """F0 per 10 ms by pYIN (its smoothing keeps a moving contour on one octave); NaN where unvoiced."""
    import librosa

    f0, voiced, _ = librosa.pyin(x, fmin=70, fmax=500, sr=SAMPLE_RATE, frame_length=1024, hop_length=160)
    return np.where(voiced, f0, np.nan)


def median_pitch(x: np.ndarray) -> float:
    """Median F0 of the loud frames by plain YIN: pYIN's smoothing can lock a whole child's /ɑ/ (F1
    near the third harmonic) onto 3/2 of its pitch, while frame-wise YIN errs only at edges."""
    import librosa

    f0 = librosa.yin(x, fmin=70, fmax=500, sr=SAMPLE_RATE, frame_length=1024, hop_length=160)
    rms = librosa.feature.rms(y=x, frame_length=1024, hop_length=160)[0]
    return float(np.median(f0[rms > 0.3 * rms.max()]))


def spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mag = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE), mag


def peak_near(freqs, mag, hz, rel=0.01) -> float:
    return float(mag[np.abs(freqs - hz) <= rel * hz].max())


def level_db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12)


def trend(x: np.ndarray) -> str:
    """'up' or 'down': loudness of the last fifth against the first fifth."""
    k = x.size // 5
    return "up" if level_db(x[-k:]) > level_db(x[:k]) else "down"


def formants(x: np.ndarray, order: int = 18) -> list[float]:
    """Formant frequencies by LPC (autocorrelation method) on the middle 50 ms."""
    mid, half = x.size // 2, int(0.025 * SAMPLE_RATE)
    frame = np.append(x[mid - half], np.diff(x[mid - half : mid + half])) * np.hamming(2 * half)
    r = np.correlate(frame, frame, "full")[frame.size - 1 :]
    a = solve_toeplitz(r[:order], r[1 : order + 1])
    roots = [z for z in np.roots(np.concatenate([[1.0], -a])) if z.imag > 0]
    found = [(np.angle(z) * SAMPLE_RATE / (2 * np.pi), -SAMPLE_RATE / np.pi * np.log(abs(z))) for z in roots]
    return sorted(f for f, bw in found if f > 150 and bw < 500)


# ---------------------------------------------------------------------------------------------
# Layout, balance, determinism


def test_records_are_mmau_format(suite):
    out, splits = suite
    for split, records in splits.items():
        for r in records:
            assert r.keys() >= MMAU_KEYS and r["split"] == split and r["dataset"] == syn.DATASET
            assert r["audio_id"] == f"./audio/{r['id']}.wav" and (out / r["audio_id"]).is_file()
            assert 2 <= len(r["choices"]) <= 5 and len(set(r["choices"])) == len(r["choices"])
            assert r["answer"] in r["choices"] and r["task"] in syn.DOMAINS
            assert r["reliance"] in syn.RELIANCES and r["difficulty"] in ("easy", "medium", "hard")
            meta = r["metadata"]
            assert {"kind", "duration_s", "synthesis", "cue", "summary"} <= meta.keys()
            assert len(meta) > 5 or r["reliance"] == "none", f"{r['id']}: metadata lacks attributes"


def test_choices_are_distinguishable_by_the_official_scorer(suite):
    _, splits = suite
    for r in splits["test"]:
        assert string_match(r["answer"], r["answer"], r["choices"]), r["id"]
        for wrong in set(r["choices"]) - {r["answer"]}:
            assert not string_match(r["answer"], wrong, r["choices"]), (r["id"], wrong)


def test_counts_and_domain_balance(suite):
    _, splits = suite
    test, train = splits["test"], splits["train"]
    assert len(test) == syn.DEFAULT_N_TEST >= 300 and len(train) == syn.DEFAULT_N_TRAIN
    for records in (test, train):
        per_domain = collections.Counter(r["task"] for r in records)
        assert set(per_domain) == set(syn.DOMAINS)
        assert max(per_domain.values()) - min(per_domain.values()) <= 1
    audio_needed = collections.Counter(r["task"] for r in test if r["reliance"] != "none")
    assert sum(audio_needed.values()) >= 300 and max(audio_needed.values()) - min(audio_needed.values()) <= 1
    knowledge = [r for r in test if r["reliance"] == "none"]
    per_domain = collections.Counter(r["task"] for r in knowledge)
    assert per_domain == dict.fromkeys(syn.DOMAINS, syn.KNOWLEDGE_PER_DOMAIN)
    assert not [r for r in train if r["reliance"] == "none"], "knowledge items belong to the test split only"
    # Labels within a family are balanced too (e.g. as many minor triads as major ones).
    for key in ("noise_colour", "triad", "tempo", "dynamics", "intonation", "voice"):
        labels = collections.Counter(r["answer"] for r in test if r["sub-category"] == key)
        assert max(labels.values()) - min(labels.values()) <= 1, (key, labels)


def test_answer_positions_are_balanced(suite):
    _, splits = suite
    for records in splits.values():
        by_family = collections.defaultdict(list)
        for r in records:
            by_family[r["sub-category"]].append(r["choices"].index(r["answer"]))
        for family, positions in by_family.items():
            n_choices = len(next(r["choices"] for r in records if r["sub-category"] == family))
            counts = [positions.count(p) for p in range(n_choices)]
            assert max(counts) - min(counts) <= 1, (family, counts)


def test_splits_are_separate(suite):
    out, splits = suite
    test_ids, train_ids = ({r["id"] for r in recs} for recs in (splits["test"], splits["train"]))
    assert not test_ids & train_ids and len(test_ids) == len(splits["test"])
    digest = lambda r: hashlib.sha256((out / r["audio_id"]).read_bytes()).hexdigest()  # noqa: E731
    assert not {digest(r) for r in splits["test"]} & {digest(r) for r in splits["train"]}


def test_every_clip_decodes_at_16k_with_its_stated_length(suite):
    out, splits = suite
    for records in splits.values():
        for r in records:
            audio = load_audio(out / r["audio_id"])
            assert not is_silent(audio), r["id"]
            assert abs(audio.size / SAMPLE_RATE - r["metadata"]["duration_s"]) < 0.01, r["id"]
            assert 1.0 <= audio.size / SAMPLE_RATE <= 4.0, r["id"]
            assert float(np.max(np.abs(audio))) < 1.0, r["id"]


def _files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kwargs = dict(n_test=30, n_train=15)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        syn.generate_suite(tmp_path / name, seed, **kwargs)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys() and a["test.json"] != c["test.json"]
    assert sum(a[k] != c[k] for k in a if k.endswith(".wav")) == len(a) - 2


def test_interrupted_generation_leaves_no_json(tmp_path, monkeypatch):
    syn.generate_suite(tmp_path, seed=1, n_test=9, n_train=0)
    assert (tmp_path / "test.json").is_file()
    calls = []

    def failing_write(path, audio):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(syn, "_write_wav", failing_write)
    with pytest.raises(KeyboardInterrupt):
        syn.generate_suite(tmp_path, seed=2, n_test=9, n_train=0)
    assert not (tmp_path / "test.json").exists(), "a stale JSON would make half-new audio look complete"
    assert not list(tmp_path.glob("**/*.tmp"))


def test_formant_fallback_without_espeak(formant_suite):
    out, splits = formant_suite
    records = splits["test"] + splits["train"]
    speech = [r for r in records if r["task"] == "speech" and r["reliance"] != "none"]
    assert {r["sub-category"] for r in speech} == {"intonation", "voice", "syllable_count", "vowel"}
    assert all(r["metadata"]["synthesis"].startswith("formant synthesis") for r in speech)
    for r, audio in clips(out, splits["train"], "vowel"):
        scale = next(v.formant_scale for v in syn.VOICES.values() if v.choice == r["metadata"]["speaker"])
        f1, f2 = formants(audio)[:2]
        nearest = min(syn.VOWEL_FORMANTS, key=lambda v: np.hypot(*np.log(np.array(
            [f1, f2]) / (scale * np.array(syn.VOWEL_FORMANTS[v][:2])))))
        assert syn.VOWEL_CHOICES[nearest] == r["answer"], (r["id"], f1, f2)


def test_espeak_words(tmp_path):
    """espeak-ng asked for by name (the default engine never uses it): its words are the answers."""
    require_optional("espeak-ng", syn.espeak_available(), "apt-get install -y espeak-ng")
    records = syn.load_suite(syn.generate_split(tmp_path, 7, "train", 60, speech_engine="espeak-ng"))
    words = list(clips(tmp_path, records, "spoken_word"))
    assert len(words) == 5  # syn.family_counts(60, "train", "espeak-ng")
    for r, _audio in words:
        assert r["metadata"]["synthesis"].startswith("espeak-ng")
        assert r["answer"] == r["metadata"]["transcript"]


# ---------------------------------------------------------------------------------------------
# The audio carries the labelled attribute


def test_noise_colour_follows_spectral_slope(suite):
    out, splits = suite
    slopes = collections.defaultdict(list)
    for r, audio in clips(out, splits["test"], "noise_colour"):
        freqs, power = welch(audio, SAMPLE_RATE, nperseg=2048)
        band = (freqs >= 100) & (freqs <= 6000)
        slope = np.polyfit(np.log2(freqs[band]), 10 * np.log10(power[band]), 1)[0]  # dB per octave
        assert abs(slope - r["metadata"]["spectral_slope_db_per_octave"]) < 0.75, (r["id"], slope)
        slopes[r["metadata"]["colour"]].append(slope)
    assert np.mean(slopes["white"]) > np.mean(slopes["pink"]) > np.mean(slopes["brown"])


def test_dtmf_tones_are_the_keys_frequencies(suite):
    out, splits = suite
    for r, audio in clips(out, splits["test"], "dtmf"):
        freqs, mag = spectrum(audio)
        low = freqs[(freqs > 600) & (freqs < 1000)][np.argmax(mag[(freqs > 600) & (freqs < 1000)])]
        high = freqs[(freqs > 1100) & (freqs < 1600)][np.argmax(mag[(freqs > 1100) & (freqs < 1600)])]
        row, col = syn.DTMF_KEYS[r["answer"]]
        assert abs(low - syn.DTMF_ROWS_HZ[row]) < 3 and abs(high - syn.DTMF_COLS_HZ[col]) < 3, r["id"]


def test_triad_peaks_at_its_notes(suite):
    out, splits = suite
    for r, audio in clips(out, splits["test"], "triad"):
        freqs, mag = spectrum(audio)
        root = r["metadata"]["frequencies_hz"][0]
        at = {st: peak_near(freqs, mag, root * 2 ** (st / 12)) for st in (3, 4, 6, 7, 8)}
        third, fifth = syn.TRIAD_INTERVALS[r["answer"]][1:]
        assert at[third] > 5 * at[7 - third], r["id"]  # major third vs minor third
        assert all(at[fifth] > 5 * at[other] for other in (6, 7, 8) if other != fifth), r["id"]


def test_tempo_matches_marking(suite):
    out, splits = suite
    ranges = {m.name: m.range_bpm for m in syn.TEMPO_MARKINGS}
    for r, audio in clips(out, splits["test"], "tempo"):
        times = onsets(audio)
        bpm = 60 / np.median(np.diff(times))
        lo, hi = ranges[r["answer"]]
        assert lo <= bpm <= hi and abs(bpm - r["metadata"]["tempo_bpm"]) < 2, (r["id"], bpm)
        half = audio.size / SAMPLE_RATE / 2
        assert (times < half).sum() >= 2 and (times >= half).sum() >= 2, "any_part: each half shows the tempo"


def test_dynamics_loudness_contour(suite):
    out, splits = suite
    for r, audio in clips(out, splits["test"], "dynamics"):
        q = [level_db(part) for part in np.array_split(audio, 4)]
        contour = r["metadata"]["contour"]
        if contour == "crescendo":
            assert q[3] - q[0] > 15, r["id"]
        elif contour == "diminuendo":
            assert q[0] - q[3] > 15, r["id"]
        elif contour == "swell":
            assert min(q[1], q[2]) - max(q[0], q[3]) > 6, r["id"]
        else:
            assert min(q[0], q[3]) - max(q[1], q[2]) > 6, r["id"]


def test_counts_match_labels(suite):
    out, splits = suite
    for family in ("event_count", "syllable_count"):
        for r, audio in clips(out, splits["test"], family):
            assert len(onsets(audio)) == int(r["answer"]), r["id"]


def test_question_intonation_rises_at_the_end(suite):
    out, splits = suite
    for r, audio in clips(out, splits["test"], "intonation"):
        f0 = pitch_contour(audio)
        voiced = np.flatnonzero(~np.isnan(f0))
        last_run = voiced[voiced > voiced[np.flatnonzero(np.diff(voiced) > 1)[-1]]]  # the final syllable
        k = max(2, last_run.size // 4)
        change = 12 * np.log2(np.median(f0[last_run[-k:]]) / np.median(f0[last_run[:k]]))
        if r["answer"] == "a yes/no question":
            assert change > 3, (r["id"], change)
        else:
            assert change < -2, (r["id"], change)


def test_voice_pitch_fits_speaker(suite):
    out, splits = suite
    for r, audio in clips(out, splits["test"], "voice"):
        voice = next(v for v in syn.VOICES.values() if v.choice == r["answer"])
        median = median_pitch(audio)
        lo, hi = voice.f0_hz
        assert lo * 2 ** (-1 / 12) <= median <= hi * 2 ** (1 / 12), (r["id"], median)


def test_knowledge_clips_are_only_room_tone(suite):
    out, splits = suite
    for family in (f"knowledge_{d}" for d in syn.DOMAINS):
        for r, audio in clips(out, splits["test"], family):
            assert level_db(audio) < -40 and r["metadata"]["kind"] == "room_tone", r["id"]


# Half-clip evidence per whole_clip family: what one half shows, and whether that decides the answer.
def _count_half(r, half_audio, _half_index):
    shown = len(onsets(half_audio))  # counted on the half alone, as a fragment run would hear it
    return 1 <= shown < int(r["answer"])


def _dynamics_half(r, half_audio, half_index):
    shown = trend(half_audio)
    _, *halves = syn.DYNAMICS[r["metadata"]["contour"]]
    fitting = [c for c, *h in syn.DYNAMICS.values() if h[half_index] == shown and c in r["choices"]]
    return shown == halves[half_index] and len(fitting) >= 2


HALF_CHECKS = {"event_count": _count_half, "syllable_count": _count_half, "dynamics": _dynamics_half}


def test_whole_clip_items_cannot_be_answered_from_one_half(suite):
    out, splits = suite
    whole = [r for recs in splits.values() for r in recs if r["reliance"] == "whole_clip"]
    families = {r["sub-category"] for r in whole}
    assert families == set(HALF_CHECKS), "every whole_clip family needs a half check"
    for r in whole:
        audio = load_audio(out / r["audio_id"])
        for index, half in enumerate(np.array_split(audio, 2)):
            assert HALF_CHECKS[r["sub-category"]](r, half, index), (r["id"], index)
