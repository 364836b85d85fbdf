"""DeSTA-AQA5M -> seed JSONL (`akb convert-desta-seeds`): clips checked under each corpus's folder, a
per-dataset report, skip or stop on missing/unreadable clips, a deterministic stratified subsample,
transcripts from `messages`; and the conversion -> distillation -> training chain through Snakemake.

The fake dataset has DeSTA-AQA5M's row layout (id, dataset, seed_description, prompt, response,
messages with DeSTA2.5's `audios: [{audio, text}]` user turn) in chunked JSONL files and a parquet
copy; three source corpora with real WAV clips, two of them missing and two damaged.
"""

import csv
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from akb.cli import main
from akb.data.desta_aqa import ClipsError, DestaSettings, allocate, convert, transcript_of
from akb.io import read_jsonl
from akb.lalm.distill import read_seeds

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"IEMOCAP": 10, "VCTK": 8, "AudioCaps": 6}
SPEECH = {"IEMOCAP", "VCTK"}
MISSING = {("IEMOCAP", "Session1/Ses01F_impro01_F003.wav"), ("VCTK", "wav48/p226/p226_003.wav")}
NOT_AUDIO = ("AudioCaps", "train/clip_02.wav")  # text bytes named .wav
TRUNCATED = ("VCTK", "wav48/p226/p226_005.wav")  # a WAV cut inside its header
PLANTED = MISSING | {NOT_AUDIO, TRUNCATED}


def clip_id(dataset: str, i: int) -> str:
    return {"IEMOCAP": f"Session1/Ses01F_impro01_F{i:03d}.wav", "VCTK": f"wav48/p226/p226_{i:03d}.wav",
            "AudioCaps": f"train/clip_{i:02d}.wav"}[dataset]  # fmt: skip


def desta_row(dataset: str, i: int) -> dict:
    cid = clip_id(dataset, i)
    speech = dataset in SPEECH
    text = f"words number {i} of {dataset}" if speech else " "  # DeSTA leaves " " without speech
    description = f"[00:00-00:01] {text.strip()} (Gender: female)" if speech else f"[00:00-00:01] (sound {i})"
    prompt = ["Describe the audio.", "What is the speaker's emotion?", "Where could this be?"][i % 3]
    return {
        "id": cid, "dataset": dataset, "seed_description": description, "prompt": prompt,
        "response": f"A response about {cid}.",
        "messages": [
            {"role": "system", "content": "Focus on the audio clips and instructions."},
            {"role": "user", "content": f"<|AUDIO|>\n{prompt}",
             "audios": [{"audio": f"{dataset}/{cid}", "text": text}]},
        ],
    }  # fmt: skip


def wav_bytes(seed: int) -> bytes:
    audio = np.random.default_rng(seed).uniform(-0.3, 0.3, 1600).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def desta(tmp_path_factory):
    """{"jsonl": folder of chunks, "parquet": folder, "roots": {dataset: folder}, "rows": [...]}"""
    base = tmp_path_factory.mktemp("desta")
    rows = [desta_row(d, i) for d, n in SIZES.items() for i in range(n)]
    roots = {d: str(base / "corpora" / d.lower()) for d in SIZES}
    for n, r in enumerate(rows):
        key = (r["dataset"], r["id"])
        if key in MISSING:
            continue
        path = Path(roots[r["dataset"]]) / r["id"]
        path.parent.mkdir(parents=True, exist_ok=True)
        data = wav_bytes(n)
        if key == NOT_AUDIO:
            data = b"this is not audio at all\n" * 4
        elif key == TRUNCATED:
            data = data[:20]
        path.write_bytes(data)
    jsonl = base / "jsonl"
    jsonl.mkdir()
    speech = [r for r in rows if r["dataset"] in SPEECH]
    write_jsonl(jsonl / "speech.0.jsonl", speech[:9])
    write_jsonl(jsonl / "speech.1.jsonl", speech[9:])
    write_jsonl(jsonl / "audio.0.jsonl", [r for r in rows if r["dataset"] not in SPEECH])
    (jsonl / "README.md").write_text("not data")
    parquet = base / "parquet"
    parquet.mkdir()
    half = len(rows) // 2  # a different chunking from the JSONL copy, on purpose
    pq.write_table(pa.Table.from_pylist(rows[half:]), parquet / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(rows[:half]), parquet / "part-1.parquet")
    return {"base": base, "jsonl": jsonl, "parquet": parquet, "roots": roots, "rows": rows}


def settings(desta, source="jsonl", **kw) -> DestaSettings:
    return DestaSettings.from_config({"source": str(desta[source]), "audio_roots": desta["roots"], **kw})


def report_rows(path: Path) -> dict[str, dict]:
    return {r["dataset"]: r for r in csv.DictReader(path.open())}


def test_skip_mode_writes_seeds_with_transcripts_and_lists_exactly_the_planted_clips(desta, tmp_path):
    out = tmp_path / "seeds.jsonl"
    convert(settings(desta, on_missing="skip"), out)
    seeds = read_jsonl(out)
    expected = [r for r in desta["rows"] if (r["dataset"], r["id"]) not in PLANTED]
    assert sorted(s["id"] for s in seeds) == sorted(f"{r['dataset']}/{r['id']}" for r in expected)
    by_id = {s["id"]: s for s in seeds}
    for r in expected:
        s = by_id[f"{r['dataset']}/{r['id']}"]
        assert s["audio"] == str(Path(desta["roots"][r["dataset"]]) / r["id"]) and Path(s["audio"]).is_absolute()
        assert s["seed_description"] == r["seed_description"] and s["prompt"] == r["prompt"]
        assert s["dataset"] == r["dataset"]
        if r["dataset"] in SPEECH:  # the transcript is the row's own, from `messages`
            assert s["transcript"] == r["messages"][1]["audios"][0]["text"]
        else:
            assert s["transcript"] == ""  # DeSTA's blank text: a clip without speech
    # The per-dataset report and the skipped list name exactly the planted clips.
    report = report_rows(tmp_path / "report.csv")
    assert {d: (int(r["rows"]), int(r["checked"]), int(r["existing"]), int(r["missing"]), int(r["unreadable"]),
                int(r["written"])) for d, r in report.items()} == {
        "IEMOCAP": (10, 10, 9, 1, 0, 9), "VCTK": (8, 8, 7, 1, 1, 6), "AudioCaps": (6, 6, 6, 0, 1, 5),
        "(all)": (24, 24, 22, 2, 2, 20)}  # fmt: skip
    skipped = list(csv.DictReader((tmp_path / "skipped.csv").open()))
    assert {(p["dataset"], p["id"]) for p in skipped} == PLANTED
    assert {p["problem"] for p in skipped if (p["dataset"], p["id"]) in MISSING} == {"missing"}
    assert {p["problem"] for p in skipped if (p["dataset"], p["id"]) not in MISSING} == {"unreadable"}
    md = (tmp_path / "report.md").read_text()
    assert "| VCTK |" in md and all(cid in md for _, cid in PLANTED)
    # The distillation reads these seeds, and carries the new fields.
    loaded = {s.clip_id: s for s in read_seeds(out)}
    assert loaded["IEMOCAP/" + clip_id("IEMOCAP", 1)].transcript == "words number 1 of IEMOCAP"
    assert loaded["AudioCaps/" + clip_id("AudioCaps", 0)].transcript == ""
    assert loaded["VCTK/" + clip_id("VCTK", 0)].dataset == "VCTK"
    assert loaded["VCTK/" + clip_id("VCTK", 0)].prompts == ("Describe the audio.",)


def test_error_mode_stops_with_the_table_and_publishes_nothing(desta, tmp_path, caplog):
    out = tmp_path / "seeds.jsonl"
    args = ["convert-desta-seeds", "--source", str(desta["jsonl"]), "--audio-roots", json.dumps(desta["roots"]),
            "--out", str(out)]  # fmt: skip
    with caplog.at_level(logging.INFO):
        assert main(args) == 2
    assert not out.exists() and not (tmp_path / "report.csv").exists() and not list(tmp_path.iterdir())
    assert "4 clip(s) missing or unreadable" in caplog.text and "on_missing: skip" in caplog.text
    assert "| VCTK |" in caplog.text  # the table is in the log
    assert all(cid in caplog.text for _, cid in PLANTED)
    with pytest.raises(ClipsError):
        convert(settings(desta), out)


def test_parquet_copy_gives_the_same_seeds_and_the_same_sample(desta, tmp_path):
    for kw in ({}, {"max_rows": 9, "sample_seed": 3}):
        a, b = tmp_path / "a" / "seeds.jsonl", tmp_path / "b" / "seeds.jsonl"
        convert(settings(desta, "jsonl", on_missing="skip", **kw), a)
        convert(settings(desta, "parquet", on_missing="skip", **kw), b)
        assert sorted(map(json.dumps, read_jsonl(a))) == sorted(map(json.dumps, read_jsonl(b)))


def test_budget_is_proportional_capped_deterministic_and_filled_around_bad_clips(desta, tmp_path):
    def sample(name, **kw):
        out = tmp_path / name / "seeds.jsonl"
        convert(settings(desta, on_missing="skip", **kw), out)
        return [s["id"] for s in read_jsonl(out)], report_rows(out.parent / "report.csv")

    ids, report = sample("a", max_rows=12, sample_seed=1)
    # 24 rows: 10/8/6 -> 5/4/3. Skipped clips are replaced by the dataset's next row.
    counts = {d: sum(i.startswith(d + "/") for i in ids) for d in SIZES}
    assert counts == {"IEMOCAP": 5, "VCTK": 4, "AudioCaps": 3} and len(set(ids)) == 12
    assert {d: int(report[d]["selected"]) for d in SIZES} == counts
    assert all(int(report[d]["written"]) == counts[d] for d in SIZES)
    assert sample("again", max_rows=12, sample_seed=1)[0] == ids  # deterministic
    assert sample("other", max_rows=12, sample_seed=2)[0] != ids  # the seed matters
    # A cap gives the capped dataset's unused share to the others.
    ids, _ = sample("capped", max_rows=12, sample_seed=1, per_dataset_max={"IEMOCAP": 2})
    assert {d: sum(i.startswith(d + "/") for i in ids) for d in SIZES} == {"IEMOCAP": 2, "VCTK": 6, "AudioCaps": 4}
    # Caps alone: capped datasets are sampled, the others taken whole (less their bad clips).
    ids, report = sample("caps", per_dataset_max={"VCTK": 3})
    assert int(report["VCTK"]["written"]) == 3 and int(report["IEMOCAP"]["written"]) == 9
    assert int(report["AudioCaps"]["written"]) == 5


def test_allocation_shares_and_caps():
    assert allocate({"a": 600, "b": 300, "c": 100}, {}, 100) == {"a": 60, "b": 30, "c": 10}
    assert allocate({"a": 600, "b": 300, "c": 100}, {"a": 20}, 100) == {"a": 20, "b": 60, "c": 20}
    assert allocate({"a": 600, "b": 300, "c": 100}, {"a": 20, "b": 5}, 100) == {"a": 20, "b": 5, "c": 75}
    assert allocate({"a": 1, "b": 1, "c": 1}, {}, 2) == {"a": 1, "b": 1, "c": 0}  # remainder by name
    assert sum(allocate({"a": 7, "b": 11, "c": 13}, {}, 10).values()) == 10
    assert allocate({"a": 5, "b": 3}, {"b": 1}, None) == {"a": 5, "b": 1}
    assert allocate({"a": 5, "b": 3}, {}, 100) == {"a": 5, "b": 3}


@pytest.mark.parametrize("spoil, message", [
    (lambda r: r.pop("id"), r"speech.0.jsonl, row 3: missing field 'id'"),
    (lambda r: r.update(seed_description=""), r"speech.0.jsonl, row 3: missing field 'seed_description'"),
    (lambda r: r.update(dataset="MELD"), r"speech.0.jsonl, row 3: field 'dataset': 'MELD' has no folder in "
                                          r"grounded.distill.desta_aqa.audio_roots"),
    (lambda r: r.update(id="../../etc/passwd"), r"speech.0.jsonl, row 3: field 'id' '../../etc/passwd' is not a path"),
    (lambda r: r.update(messages="hello"), r"speech.0.jsonl, row 3: field 'messages' is str"),
])  # fmt: skip
def test_malformed_rows_are_named_by_file_row_and_field(desta, tmp_path, spoil, message):
    rows = [desta_row("IEMOCAP", i) for i in range(4)]
    spoil(rows[2])
    write_jsonl(tmp_path / "speech.0.jsonl", rows)
    with pytest.raises(ValueError, match=message):
        convert(DestaSettings.from_config({"source": str(tmp_path / "speech.0.jsonl"), "audio_roots": desta["roots"]}),
                tmp_path / "out" / "seeds.jsonl")
    assert not (tmp_path / "out" / "seeds.jsonl").exists()


def test_datasets_without_a_root_are_reported(desta, tmp_path):
    roots = {**desta["roots"], "AudioCaps": None, "Clotho": str(tmp_path / "nowhere")}
    del roots["VCTK"]
    out = tmp_path / "seeds.jsonl"
    convert(DestaSettings.from_config({"source": str(desta["jsonl"]), "audio_roots": roots, "on_missing": "skip"}), out)
    report = report_rows(tmp_path / "report.csv")
    assert report["AudioCaps"]["note"] == "left out (audio root null)" and report["AudioCaps"]["written"] == "0"
    assert report["VCTK"]["note"] == "no audio root: skipped" and report["VCTK"]["rows"] == "8"
    assert report["Clotho"]["note"] == "root folder not found: skipped"
    assert {s["dataset"] for s in read_jsonl(out)} == {"IEMOCAP"}


def test_transcripts_and_repeated_clips(desta, tmp_path):
    where = "f, row 1"
    chat = [{"role": "user", "content": "<|AUDIO|> <|AUDIO|>",
             "audios": [{"audio": "x/a.wav", "text": "first"}, {"audio": "x/b.wav", "text": "second"}]}]
    assert transcript_of(chat, "b.wav", where) == "second"
    with pytest.raises(ValueError, match="several audio entries"):
        transcript_of(chat, "c.wav", where)
    parts = [{"role": "user", "content": [{"type": "audio", "audio": "a.wav", "text": " hi "}]}]
    assert transcript_of(parts, "a.wav", where) == "hi"
    silent = [{"role": "user", "content": "q", "audios": [{"audio": "a.wav", "text": None}]}]
    assert transcript_of(silent, "a.wav", where) is None
    # The same clip with another prompt is another seed, with its own id.
    rows = [desta_row("IEMOCAP", 0), {**desta_row("IEMOCAP", 0), "prompt": "Is anyone laughing?"}]
    write_jsonl(tmp_path / "rows.jsonl", rows)
    convert(DestaSettings.from_config({"source": str(tmp_path / "rows.jsonl"), "audio_roots": desta["roots"]}),
            tmp_path / "seeds.jsonl")
    ids = [s["id"] for s in read_jsonl(tmp_path / "seeds.jsonl")]
    assert ids == [f"IEMOCAP/{clip_id('IEMOCAP', 0)}", f"IEMOCAP/{clip_id('IEMOCAP', 0)}@2"]


def test_data_files_select_chunks(desta, tmp_path):
    out = tmp_path / "seeds.jsonl"
    convert(settings(desta, data_files=["audio.*.jsonl"], on_missing="skip"), out)
    assert {s["dataset"] for s in read_jsonl(out)} == {"AudioCaps"}
    with pytest.raises(FileNotFoundError, match=r"data_files \['music.\*'\] match no data file"):
        convert(settings(desta, data_files=["music.*"]), out)


# ---- through Snakemake: conversion -> distillation -> a few training steps on tiny models ----


def test_workflow_converts_distils_and_trains(desta, tmp_path, tiny_whisper_dir):
    import yaml

    config = yaml.safe_load((ROOT / "tests/data/e2e_config.yaml").read_text())
    config["models"] = [m for m in config["models"] if m["name"] == "tiny-qwen3"]
    config["grounded"].update(backbones=["tiny-qwen3"], use_transcript=False)
    config["grounded"]["encoder"]["source"] = str(tiny_whisper_dir)
    config["grounded"]["distill"].update(prompts_per_clip=0, desta_aqa={
        "source": str(desta["jsonl"]), "audio_roots": desta["roots"], "on_missing": "skip"})  # fmt: skip
    config["grounded"]["train"].update(max_steps=2, batch_size=4)
    config["diagnostics"] = {"models": []}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    checkpoint = "results/grounded/tiny-qwen3/checkpoint"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", "2",
           "--configfile", str(path), "--directory", str(tmp_path), checkpoint]
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    seeds = read_jsonl(tmp_path / "resources/desta_aqa/seeds.jsonl")
    assert len(seeds) == sum(SIZES.values()) - len(PLANTED)
    distilled = read_jsonl(tmp_path / "results/grounded/tiny-qwen3/distill.jsonl")
    # prompts_per_clip 0: each seed is asked its own DeSTA prompt, once.
    prompt_of = {s["id"]: s["prompt"] for s in seeds}
    assert sorted(r["clip_id"] for r in distilled) == sorted(prompt_of)
    assert all(r["prompt"] == prompt_of[r["clip_id"]] for r in distilled)
    assert (tmp_path / checkpoint).is_dir()
    # The report lists the planted clips.
    skipped = {(p["dataset"], p["id"]) for p in csv.DictReader((tmp_path / "resources/desta_aqa/skipped.csv").open())}
    assert skipped == PLANTED
    report = report_rows(tmp_path / "resources/desta_aqa/report.csv")
    assert report["(all)"]["missing"] == "2" and report["(all)"]["unreadable"] == "2"
    md = (tmp_path / "resources/desta_aqa/report.md").read_text()
    assert all(cid in md for _, cid in PLANTED)


def _plan(tmp_path: Path, config: dict) -> str:
    import yaml

    tmp_path.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "-n", "--configfile", str(path),
           "--directory", str(tmp_path)]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_configs_without_desta_aqa_plan_and_train_as_before(desta, tmp_path):
    """desta_aqa has no schema default and stays out of the training settings: a config without it plans no
    conversion, and with it the training jobs get the very same --grounded settings."""
    import yaml

    config = yaml.safe_load((ROOT / "tests/data/e2e_config.yaml").read_text())
    before = _plan(tmp_path / "a", config)
    config["grounded"]["distill"]["desta_aqa"] = {"source": str(desta["jsonl"]), "audio_roots": desta["roots"]}
    after = _plan(tmp_path / "b", config)
    assert "rule convert_desta_seeds" not in before and "resources/desta_aqa" not in before

    def grounded_args(plan):
        return sorted(line.split("--grounded ")[1].split(" --threads")[0] for line in plan.splitlines()
                      if "akb train " in line)

    assert grounded_args(before) and grounded_args(after) == grounded_args(before)
    (job,) = [j for j in after.split("\n\n") if "rule convert_desta_seeds:" in j]
    assert "on-missing error" in job and "output: resources/desta_aqa/seeds.jsonl" in job
    distill = [j for j in after.split("\n\n") if "rule distill_data:" in j]
    assert distill and all("input: resources/desta_aqa/seeds.jsonl" in j for j in distill)


def test_config_and_readiness_checks(desta, tmp_path):
    from akb.config import ConfigError, validate_config
    from akb.assets.readiness import check_inputs

    base = {"models": [{"name": "m", "backend": "tiny", "source": "qwen3"}], "grounded": {"backbones": ["m"]},
            "synthetic": {"n_train": 8}}
    block = {"source": str(desta["jsonl"]), "audio_roots": {**desta["roots"], "MELD": str(tmp_path / "no-meld")}}
    config = validate_config({**base, "grounded": {"backbones": ["m"], "distill": {"desta_aqa": block}}})
    assert config["grounded"]["distill"]["desta_aqa"]["on_missing"] == "error"  # its own defaults, when set
    assert "desta_aqa" not in validate_config(base)["grounded"]["distill"]  # none when not
    problems = [c for c in check_inputs(config) if c.status != "OK"]
    assert [c.detail for c in problems] == ["grounded.distill.desta_aqa.audio_roots.MELD not found"]
    with pytest.raises(ConfigError, match="seeds and desta_aqa both name the seeds"):
        validate_config({**base, "grounded": {"backbones": ["m"], "distill": {"desta_aqa": block, "seeds": "s.jsonl"}}})
    with pytest.raises(ConfigError, match="on_missing"):
        bad = {**block, "on_missing": "x"}
        validate_config({**base, "grounded": {"backbones": ["m"], "distill": {"desta_aqa": bad}}})


def test_a_damaged_file_is_named(desta, tmp_path):
    path = tmp_path / "speech.0.jsonl"
    path.write_text(json.dumps(desta_row("IEMOCAP", 0)) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"speech.0.jsonl: cannot read after row \d"):
        convert(DestaSettings.from_config({"source": str(path), "audio_roots": desta["roots"]}), tmp_path / "s.jsonl")


def test_a_hub_id_is_listed_and_streamed_file_by_file(desta, tmp_path, monkeypatch):
    """The hub's file list picks the chunks (data_files), and each is streamed, so rows are named by file."""
    import datasets
    import huggingface_hub

    calls = []
    real_load = datasets.load_dataset

    def load_dataset(repo, data_files, split, streaming, revision=None):
        calls.append((repo, tuple(data_files), streaming, revision))
        return real_load("json", data_files=[str(desta["jsonl"] / f) for f in data_files], split=split, streaming=True)

    listed = ["README.md", ".gitattributes", "audio.0.jsonl", "speech.0.jsonl", "speech.1.jsonl"]
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo, repo_type, revision: listed)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    out = tmp_path / "seeds.jsonl"
    convert(DestaSettings.from_config({"source": "DeSTA-ntu/DeSTA-AQA5M-FROM-Llama3.1-8B-Instruct", "revision": "v1",
                                       "data_files": ["speech.*"], "audio_roots": desta["roots"],
                                       "on_missing": "skip"}), out)  # fmt: skip
    repo = "DeSTA-ntu/DeSTA-AQA5M-FROM-Llama3.1-8B-Instruct"
    assert calls == [(repo, ("speech.0.jsonl",), True, "v1"), (repo, ("speech.1.jsonl",), True, "v1")]
    assert {s["dataset"] for s in read_jsonl(out)} == SPEECH


def test_a_clip_kept_as_wav_is_found_under_its_original_name(desta, tmp_path):
    """As DeSTA's own loader: an id naming a .flac that the user keeps converted to .wav finds the .wav."""
    root = tmp_path / "corpus"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.wav").write_bytes(wav_bytes(0))
    write_jsonl(tmp_path / "rows.jsonl", [{**desta_row("IEMOCAP", 0), "id": "a/x.flac", "dataset": "Expresso"}])
    convert(DestaSettings.from_config({"source": str(tmp_path / "rows.jsonl"), "audio_roots": {"Expresso": str(root)}}),
            tmp_path / "seeds.jsonl")
    (seed,) = read_jsonl(tmp_path / "seeds.jsonl")
    assert seed["id"] == "Expresso/a/x.flac" and seed["audio"] == str(root / "a" / "x.wav")
