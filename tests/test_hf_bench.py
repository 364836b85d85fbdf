"""The Hugging Face copies of the audio benchmarks (parquet with embedded audio), read through
`datasets` and written in the official layout: the same items as the published metadata."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from akb.cli import main
from akb.data.audio_bench import load_audio_benchmark
from akb.data.bank import BankError, read_records
from akb.data.hf_bench import export_hf_benchmark

datasets = pytest.importorskip("datasets")

PUBLISHED_MMAU = Path(__file__).parent / "data" / "mmau" / "mmau-test-mini.json"
PACKED = ("id", "dataset", "task", "split", "category", "sub-category", "difficulty")


def encoded(fmt, seconds=0.2, seed=0):
    samples = 0.1 * np.random.default_rng(seed).standard_normal(int(16000 * seconds)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, samples, 16000, format=fmt)
    return buffer.getvalue()


def write_parquet(path, columns, audio_column):
    data = datasets.Dataset.from_dict(columns).cast_column(audio_column, datasets.Audio())
    data.to_parquet(str(path))
    return path


@pytest.fixture(scope="module")
def published_sample():
    """40 published MMAU records, among them a repeated option and a category held as a list."""
    records = read_records(str(PUBLISHED_MMAU))
    chosen = records[:38] + [r for r in records if r["id"] == "16964657-d35e-426a-8c3e-6aac228a2577"]
    chosen += [next(r for r in records if isinstance(r["category"], list))]
    return chosen


def gamma_lab_layout(records):
    """As gamma-lab-umd/MMAU-test-mini ships them: question under `instruction`, "(A) "-prefixed
    options and answer, the official fields packed into `other_attributes`, audio in `context` (one
    clip an MP3 stream, as 46 of the real ones are)."""
    def prefixed(choices):
        return [f"({'ABCDEFGH'[i]}) {c}" for i, c in enumerate(choices)]

    return {
        "instruction": [r["question"] for r in records],
        "choices": [prefixed(r["choices"]) for r in records],
        "answer": [prefixed(r["choices"])[r["choices"].index(r["answer"])] for r in records],
        "other_attributes": [json.dumps({k: r[k] for k in PACKED}) for r in records],
        "context": [{"bytes": encoded("MP3" if i == 3 else "WAV", seed=i), "path": None} for i in range(len(records))],
    }


def test_gamma_lab_copy_gives_the_published_items(tmp_path, published_sample):
    parquet = write_parquet(tmp_path / "test-mini.parquet", gamma_lab_layout(published_sample), "context")
    meta = export_hf_benchmark(str(parquet), tmp_path / "mmau")
    items, problems = load_audio_benchmark(meta, check_audio="decode")

    clips = tmp_path / "clips"
    for r in published_sample:  # the published file, with placeholder clips where its paths point
        (clips / r["audio_id"]).parent.mkdir(parents=True, exist_ok=True)
        sf.write(clips / r["audio_id"], np.zeros(160, dtype=np.float32), 16000)
    subset = tmp_path / "published-subset.json"
    subset.write_text(json.dumps(published_sample))
    expected, _ = load_audio_benchmark(subset, audio_root=clips)

    def fields(it):
        return (it.id, it.question, it.choices, it.answer, it.domain, it.category, it.subcategory)

    assert [fields(it) for it in items] == [fields(it) for it in expected]
    assert [p.severity for p in problems] == ["warning"]  # the repeated option, as in the published file
    mp3 = items[3].audio
    assert mp3.endswith(".mp3") and sf.info(mp3).samplerate == 16000  # named for what it is
    assert all(Path(it.audio).is_file() for it in items)


def test_copy_in_official_fields_with_letter_answers_reads_as_is(tmp_path):
    columns = {
        "id": ["a", "b"], "question": ["Who speaks?", "Which instrument?"],
        "options": [["Man", "Woman"], ["Piano", "Violin", "Flute"]],
        "modality": ["speech", "music"], "category": ["Semantic Layer", "Signal Layer"],
        "audio": [{"bytes": encoded("FLAC"), "path": None}, {"bytes": encoded("WAV"), "path": None}],
    }
    columns["answer"] = ["B", "0"]
    parquet = write_parquet(tmp_path / "mmar.parquet", columns, "audio")
    code = main(["import-hf-benchmark", "--source", str(parquet), "--out-dir", str(tmp_path / "mmar")])
    assert code == 2  # "0" is neither an option, a letter nor (as a string) an index: named, not guessed
    columns["answer"] = ["B", "A"]
    write_parquet(parquet, columns, "audio")
    assert main(["import-hf-benchmark", "--source", str(parquet), "--out-dir", str(tmp_path / "mmar")]) == 0
    items, _ = load_audio_benchmark(tmp_path / "mmar" / "benchmark.json")
    assert [(it.id, it.answer, it.domain) for it in items] == [("a", "Woman", "speech"), ("b", "Piano", "music")]
    assert items[0].audio.endswith("a.flac")


@pytest.mark.parametrize("spoil, message", [
    (lambda c: c.update(other_attributes=[json.dumps({"task": "sound"})] * 2), "row 0: no 'id'"),
    (lambda c: c.update(answer=["(C) x", "(A) one"]), r"row 0 \(id i0\): answer 'x' is neither one of the choices"),
    (lambda c: c.update(other_attributes=["{not json", "{}"]), "row 0: field 'other_attributes' is not valid JSON"),
    (lambda c: c.update(other_attributes=[json.dumps({"id": "k"})] * 2), "cannot tell MMAU from MMAR"),
])
def test_bad_rows_are_named_and_nothing_is_left_behind(tmp_path, spoil, message):
    columns = {
        "instruction": ["q1?", "q2?"], "choices": [["(A) one", "(B) two"], ["(A) one", "(B) two"]],
        "answer": ["(A) one", "(B) two"],
        "other_attributes": [json.dumps({"id": f"i{k}", "task": "sound"}) for k in range(2)],
        "context": [{"bytes": encoded("WAV"), "path": None}] * 2,
    }
    spoil(columns)
    parquet = write_parquet(tmp_path / "bad.parquet", columns, "context")
    with pytest.raises(BankError, match=message) as raised:
        export_hf_benchmark(str(parquet), tmp_path / "out")
    assert str(parquet) in str(raised.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_not_a_parquet_file(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(BankError, match="x.parquet: cannot read as parquet"):
        export_hf_benchmark(str(tmp_path / "x.parquet"), tmp_path / "out")
    with pytest.raises(BankError, match="no parquet file found"):
        export_hf_benchmark(str(tmp_path / "missing.parquet"), tmp_path / "out")
