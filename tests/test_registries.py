"""The registries of model backends, captioners, published audio LLMs and audio benchmark formats:
each extension point is one module plus a registration (a toy one, registered here, runs through the
normal `akb` path), the config schema's enums and the `--kind` choices are the registries' names, an
unknown name is one line naming the entry and the known names, and a name cannot be taken twice."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np
import pytest
import soundfile as sf
import yaml

from akb.audio import SAMPLE_RATE
from akb.audio_llms import AUDIO_LLM_BACKENDS, AudioLLM, load_audio_llm
from akb.audio_llms import register as register_audio_llm
from akb.captioners import CAPTIONER_BACKENDS, Captioner, load_captioner
from akb.cli import build_parser, main
from akb.config import CPU_ONLY_CAPTIONER_BACKENDS, CPU_ONLY_MODEL_BACKENDS, SCHEMA_PATH
from akb.data.audio_bench import load_audio_benchmark
from akb.data.bank import BankError
from akb.data.formats import FORMATS, BenchmarkFormat, detect_kind
from akb.data.formats import register as register_format
from akb.io import read_jsonl
from akb.models import MODEL_BACKENDS, Continuation, LanguageModel, ModelSpec, load_model
from akb.registry import Registry

REGISTRIES = {"models": MODEL_BACKENDS, "captioners": CAPTIONER_BACKENDS, "audio_llms": AUDIO_LLM_BACKENDS}


# ---- the schema and the command line list what is registered ----


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _enums(node, path=()):
    """(path, enum) of every enum in the schema."""
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            yield path, node["enum"]
        for key, value in node.items():
            yield from _enums(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _enums(value, (*path, i))


@pytest.mark.parametrize("section", sorted(REGISTRIES))
def test_schema_backend_enums_are_the_registered_names(section):
    enum = _schema()["properties"][section]["items"]["properties"]["backend"]["enum"]
    assert sorted(enum) == REGISTRIES[section].names(), f"config.schema.yaml {section}[].backend"


def test_schema_benchmark_kinds_and_kind_choices_are_the_registered_formats():
    kinds = {"auto", *FORMATS.names()}
    listed = {path: enum for path, enum in _enums(_schema()) if path[-1] == "kind"}
    assert ("properties", "audio_benchmarks", "items", "properties", "kind") in listed
    for path, enum in listed.items():
        assert set(enum) == kinds, f"config.schema.yaml {'.'.join(map(str, path))}: {enum} vs {sorted(kinds)}"
    assert set(_kind_choices("validate-audio-benchmark")) == kinds
    # The HF importer writes one clip per item: no format of clip lists (MMAU-Pro).
    one_clip = {kind for kind, fmt in FORMATS.items() if not fmt.clip_list}
    assert set(_kind_choices("import-hf-benchmark")) == {"auto", *one_clip}


def test_cpu_only_backends_are_registered_names():
    assert set(CPU_ONLY_MODEL_BACKENDS) <= set(MODEL_BACKENDS.names())
    assert set(CPU_ONLY_CAPTIONER_BACKENDS) <= set(CAPTIONER_BACKENDS.names())


def _kind_choices(command: str) -> list[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in sub.choices[command]._actions if a.dest == "kind").choices


# ---- unknown names, names taken twice ----


@pytest.mark.parametrize(("load", "entry", "message"), [
    (lambda e: ModelSpec.from_config(e), {"name": "m1", "backend": "nope", "source": "x"},
     "model m1: unknown backend 'nope'; one of ['api', 'hf', 'packaged', 'tiny']"),
    (load_captioner, {"name": "c1", "backend": "nope"},
     "captioner c1: unknown backend 'nope'; one of ['api', 'audio-lm', 'dsp', 'file', 'whisper']"),
    (load_audio_llm, {"name": "a1", "backend": "nope"}, "audio LLM a1: unknown backend 'nope'; one of ["),
])
def test_an_unknown_name_is_one_line_naming_the_entry_and_the_known_names(load, entry, message):
    with pytest.raises(ValueError) as error:
        load(entry)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_an_unknown_benchmark_kind_names_the_file_and_the_kinds(tmp_path):
    path = _toy_benchmark(tmp_path, "audio_id")
    kinds = r"\(one of \['mmar', 'mmau', 'mmau-pro'\] or 'auto'\)$"
    with pytest.raises(BankError, match=r"bench\.json: unknown benchmark kind 'mmx' " + kinds):
        load_audio_benchmark(path, "mmx")


def test_an_unknown_model_backend_through_akb_is_one_line(bank_file, tmp_path, caplog):
    model = json.dumps({"name": "m1", "backend": "nope", "source": "x"})
    with caplog.at_level(logging.ERROR, logger="akb"):
        status = main(["probe", "--bank", str(bank_file), "--model", model, "--out", str(tmp_path / "o.jsonl")])
    assert status == 2
    assert [r.getMessage() for r in caplog.records] == [
        "model m1: unknown backend 'nope'; one of ['api', 'hf', 'packaged', 'tiny']"]


@pytest.mark.parametrize("registry", [*REGISTRIES.values(), FORMATS], ids=[*REGISTRIES, "formats"])
def test_a_name_registered_twice_is_an_error(registry):
    taken = registry.names()[0]
    with pytest.raises(ValueError, match=f"{registry.key} '{taken}' registered twice: by .* and by "):
        registry.add(taken, object())
    assert registry[taken] is not None and taken in registry.names()  # the first one stays
    registry.add(taken, registry[taken])  # the same one again (a module imported twice) is no error


def test_a_registry_imports_every_module_of_its_package_on_first_lookup(tmp_path, monkeypatch):
    package = tmp_path / "toy_plugins"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from akb.registry import Registry\n\nTHINGS = Registry('toy', 'thing', 'toy_plugins')\n")
    for name in ("one", "two"):
        (package / f"{name}.py").write_text(
            f"from toy_plugins import THINGS\n\n\n@THINGS.register({name!r})\ndef make():\n    return {name!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import toy_plugins

        assert "toy_plugins.one" not in sys.modules  # nothing is imported before a name is looked up
        assert toy_plugins.THINGS.names() == ["one", "two"] and toy_plugins.THINGS.get("two")() == "two"
        with pytest.raises(ValueError, match=r"^p1: unknown thing 'three'; one of \['one', 'two'\]$"):
            toy_plugins.THINGS.get("three", "p1")
    finally:
        for module in [m for m in sys.modules if m.split(".")[0] == "toy_plugins"]:
            del sys.modules[module]


# ---- one module plus a registration: toy implementations through the normal path ----


class ToyModel(LanguageModel):
    """Answers "B" to everything."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def prompt(self, user_text):
        return user_text

    def continuation(self, text):
        return " " + text

    def token_length(self, text):
        return len(text.split())

    def loglikelihood(self, requests):
        return [Continuation(-float(len(c)), 1, len(c)) for _, c in requests]

    def generate(self, prompts, max_new_tokens):
        return ["B"] * len(prompts)


class ToyCaptioner(Captioner):
    def caption(self, audios):
        return [f"{len(a)} samples" for a in audios]


class ToyAudioLLM(AudioLLM):
    @classmethod
    def from_entry(cls, entry):
        return cls(entry["name"])

    def generate(self, clips, prompts, max_new_tokens):
        return ["B"] * len(prompts)


@pytest.fixture
def toys():
    """Toy implementations registered as a new module would register them; forgotten afterwards."""
    MODEL_BACKENDS.register("toy")(lambda spec, packaged_root, generation_only: ToyModel(spec))
    CAPTIONER_BACKENDS.register("toy")(lambda entry: ToyCaptioner())
    register_audio_llm("toy")(ToyAudioLLM)
    register_format("toy", BenchmarkFormat(audio_key="sound", domain_key="area", prediction_key="guess"))
    yield
    for registry in (MODEL_BACKENDS, CAPTIONER_BACKENDS, AUDIO_LLM_BACKENDS, FORMATS):
        registry.unregister("toy")
    assert "toy" not in FORMATS.names()


def _toy_benchmark(directory, audio_key: str, domain_key: str = "task"):
    t = np.arange(int(0.2 * SAMPLE_RATE)) / SAMPLE_RATE
    records = []
    for i in range(3):
        sf.write(directory / f"c{i}.wav", 0.3 * np.sin(2 * np.pi * 440 * (i + 1) * t), SAMPLE_RATE)
        records.append({"id": f"t{i}", "question": "Which?", "choices": ["low", "high"], "answer": "high",
                        audio_key: f"./c{i}.wav", domain_key: "sound"})
    path = directory / "bench.json"
    path.write_text(json.dumps(records))
    return path


def test_a_registered_model_backend_answers_through_akb_probe(toys, bank_file, tmp_path):
    spec = ModelSpec.from_config({"name": "m1", "backend": "toy", "source": "x"})
    assert isinstance(load_model(spec), ToyModel)
    out = tmp_path / "answers.jsonl"
    model = json.dumps({"name": "m1", "backend": "toy", "source": "x"})
    assert main(["probe", "--bank", str(bank_file), "--model", model, "--out", str(out)]) == 0
    rows = read_jsonl(out)
    assert len(rows) == 10 and {(r["raw_output"], r["parsed_answer"]) for r in rows} == {("B", "B")}


def test_a_registered_captioner_captions_through_akb_caption(toys, tmp_path):
    bench, out = _toy_benchmark(tmp_path, "audio_id"), tmp_path / "captions.jsonl"
    entry = json.dumps({"name": "c1", "backend": "toy"})
    assert main(["caption", "--benchmark", str(bench), "--captioner", entry, "--out", str(out)]) == 0
    assert [(r["id"], r["captioner"], r["caption"]) for r in read_jsonl(out)] == [
        (f"t{i}", "c1", f"{int(0.2 * SAMPLE_RATE)} samples") for i in range(3)]


def test_a_registered_audio_llm_loads_by_its_entry(toys):
    llm = load_audio_llm({"name": "a1", "backend": "toy"})
    assert isinstance(llm, ToyAudioLLM) and llm.backend == "toy" and llm.generate([None], ["q"], 4) == ["B"]


def test_a_registered_format_loads_is_detected_and_is_a_kind_choice(toys, tmp_path):
    bench = _toy_benchmark(tmp_path, "sound", domain_key="area")
    items, problems = load_audio_benchmark(bench)  # auto: told by its clip key
    assert problems == [] and [(it.id, it.domain, it.answer) for it in items] == [
        ("t0", "sound", "high"), ("t1", "sound", "high"), ("t2", "sound", "high")]
    assert items[0].audio == str(tmp_path / "c0.wav") and detect_kind(items[0].extra) == "toy"
    assert "toy" in _kind_choices("validate-audio-benchmark")
    report = tmp_path / "validation.json"
    assert main(["validate-audio-benchmark", "--benchmark", str(bench), "--kind", "toy", "--out", str(report)]) == 0
    assert json.loads(report.read_text())["items"] == 3


def test_detection_prefers_the_most_telling_clip_key():
    assert detect_kind({"audio_path": ["a.wav"]}) == "mmau-pro"  # a list: the clip-list format
    assert detect_kind({"audio_path": "a.wav"}) == "mmar"
    assert detect_kind({"audio_id": "a.wav", "audio_path": "b.wav"}) == "mmau"  # a key of MMAU alone
    assert detect_kind({"wav": "a.wav"}) is None
