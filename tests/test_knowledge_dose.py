"""The knowledge-dose experiment: its corpus, its variants, its statistics and its DAG at tiny scale."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from akb.config import ConfigError, grounded_settings, knowledge_dose_problem, model_entry, validate_config
from akb.knowledge_dose.analysis import correctness, dose_response
from akb.knowledge_dose.corpus import (
    BUILTIN, HELD_OUT, TRAIN, control_rows, dose_rows, families, load_corpus, training_text,
)
from akb.knowledge_dose.report import summary_text
from akb.knowledge_dose.variants import Variant, variant_entries, variants

ROOT = Path(__file__).resolve().parent.parent
BANKS = ROOT / "workflow/data/banks"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]{3,}", text.lower()))


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


# --- the corpus -------------------------------------------------------------------------------


def test_builtin_corpus_covers_the_suite_and_bank_families_with_a_same_size_control():
    rows = load_corpus(BUILTIN)
    synthetic = families(rows, "synthetic", TRAIN) + families(rows, "synthetic", HELD_OUT)
    assert set(synthetic) == {"noise_colour", "triad", "tempo", "dynamics", "intonation", "dtmf", "voice",
                              "syllable_count"}
    taxonomy = yaml.safe_load((ROOT / "workflow/data/akb_taxonomy.yaml").read_text())
    subcategories = {s["id"] for c in taxonomy["categories"] for s in c["subcategories"]}
    assert set(families(rows, "bank", TRAIN) + families(rows, "bank", HELD_OUT)) <= subcategories
    assert families(rows, "bank", TRAIN) and families(rows, "bank", HELD_OUT)
    facts = dose_rows(rows, 100, 0)
    control = control_rows(rows, 0)
    assert len(control) == len(facts)  # the same number of rows, and about as many words
    assert 0.8 < sum(len(training_text(r).split()) for r in control) / sum(len(training_text(r).split()) for r in facts) < 1.25
    assert {r.kind for r in facts} == {r.kind for r in control} == {"fact", "qa"}


def test_builtin_corpus_copies_no_bank_item():
    bank = [json.loads(line) for name in ("akb-v1.jsonl", "akb-v2.jsonl") for line in (BANKS / name).open()]
    item_words = [words(f"{b['question']} {b['options']['ABCD'.index(b['answer'])]}") for b in bank]
    rows = [r for r in load_corpus(BUILTIN) if r.scope == "bank"]
    worst = max((jaccard(words(r.text or f"{r.question} {r.answer}"), w), r.id) for r in rows for w in item_words)
    assert worst[0] < 0.5, worst


def test_control_corpus_is_not_about_hearing():
    auditory = re.compile(r"\b(sound|hear|hearing|noise|music|rhythm|voice|speech|acoustic\w*|decibel|dB|Hz|pitch|"
                          r"loud\w*|tone|audio)\b", re.IGNORECASE)
    hits = [r.id for r in load_corpus(BUILTIN) if r.scope == "control" and auditory.search(r.text + r.question + r.answer)]
    assert hits == []


def write_corpus(folder: Path, auditory: list[dict], control: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "auditory-test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in auditory))
    (folder / "control.jsonl").write_text("".join(json.dumps(r) + "\n" for r in control))
    return folder


def fact(i, family="tempo", split="train", scope="synthetic"):
    return {"id": f"{family}-{i}", "family": family, "scope": scope, "split": split, "kind": "fact",
            "text": f"Fact number {i} about {family}."}


def control_fact(i):
    return {"id": f"geo-{i}", "family": "geology", "scope": "control", "split": "control", "kind": "fact",
            "text": f"Rock fact {i}."}


@pytest.mark.parametrize("break_it, message", [
    (lambda a, c: a.__setitem__(1, "{not json"), r"auditory-test.jsonl, line 2: not valid JSON"),
    (lambda a, c: a.__setitem__(0, json.dumps({**fact(0), "kind": "poem"})), r"line 1: kind must be one of"),
    (lambda a, c: a.__setitem__(0, json.dumps({**fact(0), "text": " "})), r"line 1: 'text' must be a non-empty string"),
    (lambda a, c: a.__setitem__(0, json.dumps({**fact(0), "split": "control"})), r"line 1: split must be one of"),
    (lambda a, c: a.__setitem__(2, json.dumps(fact(2, split="held_out"))), r"family 'tempo' .* both splits"),
    (lambda a, c: a.__setitem__(2, json.dumps(fact(1))), r"row id 'tempo-1' is used twice"),
    (lambda a, c: c.clear(), r"control.jsonl: empty corpus file"),
    (lambda a, c: c.__setitem__(0, json.dumps({**control_fact(0), "scope": "synthetic"})), r"control.jsonl, line 1: scope"),
])
def test_a_broken_corpus_names_the_file_line_and_field(tmp_path, break_it, message):
    auditory = [json.dumps(fact(i)) for i in range(4)]
    control = [json.dumps(control_fact(i)) for i in range(4)]
    break_it(auditory, control)
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "auditory-test.jsonl").write_text("\n".join(auditory) + "\n")
    (folder / "control.jsonl").write_text("\n".join(control) + ("\n" if control else ""))
    with pytest.raises(ValueError, match=message):
        load_corpus(folder)


def test_a_missing_corpus_folder_or_control_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="knowledge corpus folder not found"):
        load_corpus(tmp_path / "nowhere")
    folder = write_corpus(tmp_path / "c", [fact(0)], [control_fact(0)])
    (folder / "control.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="control.jsonl: control corpus not found"):
        load_corpus(folder)


def test_doses_are_nested_per_family_and_never_draw_held_out_facts(tmp_path):
    auditory = [fact(i, "tempo") for i in range(8)] + [fact(i, "voice") for i in range(4)]
    auditory += [fact(i, "triad", HELD_OUT) for i in range(8)]
    rows = load_corpus(write_corpus(tmp_path / "c", auditory, [control_fact(i) for i in range(20)]))
    quarter, half, full = (dose_rows(rows, d, 0) for d in (25, 50, 100))
    assert [len(x) for x in (quarter, half, full)] == [3, 6, 12]  # 25% of 8 + 25% of 4, ...
    assert {r.id for r in quarter} < {r.id for r in half} < {r.id for r in full}
    assert all(r.split == TRAIN for r in full)
    assert {r.id for r in dose_rows(rows, 50, 1)} != {r.id for r in half}  # another seed draws other facts
    assert len(control_rows(rows, 0)) == 12
    with pytest.raises(ValueError, match="control corpus has 5 rows"):
        control_rows(load_corpus(write_corpus(tmp_path / "d", auditory, [control_fact(i) for i in range(5)])), 0)


# --- variants and the config ------------------------------------------------------------------------


def dose_config(**experiment):
    return validate_config({
        "models": [{"name": "tiny-llama", "backend": "tiny", "source": "llama", "display_name": "Tiny"},
                   {"name": "api-model", "backend": "api", "source": "gpt", "probe_mode": "generate",
                    "api": {"base_url": "http://127.0.0.1:1/v1"}}],
        "audio_benchmarks": [{"name": "synthetic", "source": "synthetic"}],
        "synthetic": {"n_train": 40},
        "captioners": [{"name": "dsp", "backend": "dsp"}],
        "grounded": {"train": {"max_steps": 300}},
        "experiments": {"knowledge_dose": {"backbone": "tiny-llama", **experiment}},
    })


def test_each_variant_is_a_model_the_stages_can_run():
    config = dose_config(seeds=[0, 1], grounded={"train": {"max_steps": 7}})
    names = [v.name for v in variants(config["experiments"]["knowledge_dose"])]
    assert names == ["tiny-llama-dose0", "tiny-llama-dose25-s0", "tiny-llama-dose25-s1", "tiny-llama-dose50-s0",
                     "tiny-llama-dose50-s1", "tiny-llama-dose100-s0", "tiny-llama-dose100-s1",
                     "tiny-llama-control-s0", "tiny-llama-control-s1"]
    assert model_entry(config, "tiny-llama-dose0") | {"name": "tiny-llama"} == {
        **model_entry(config, "tiny-llama"), "display_name": "Tiny (0% of the facts)", "probe_mode": "loglik"}
    dosed = model_entry(config, "tiny-llama-dose50-s1")
    assert (dosed["backend"], dosed["source"]) == ("hf", "results/knowledge_dose/backbones/tiny-llama-dose50-s1")
    # The experiment's audio-LLM settings are the variants' alone.
    assert grounded_settings(config, "tiny-llama-control-s0")["train"]["max_steps"] == 7
    assert grounded_settings(config, "tiny-llama")["train"]["max_steps"] == 300
    assert len(variant_entries(config)) == 9


@pytest.mark.parametrize("experiment, message", [
    ({"grounded": {"encoder": {"source": "x"}}}, r"knowledge_dose.grounded: \['encoder'\] cannot differ"),
    ({"grounded": {"distill": {"seeds": "my.json"}}}, r"\['distill.seeds'\] cannot differ"),
    ({"grounded": {"train": {"max_steps": -3}}}, r"knowledge_dose.grounded: grounded.train.max_steps"),
    ({"doses": [50]}, r"experiments.knowledge_dose.doses"),
])
def test_a_wrong_experiment_setting_names_its_key(experiment, message):
    with pytest.raises(ConfigError, match=message):
        dose_config(**experiment)


@pytest.mark.parametrize("experiment, message", [
    ({"backbone": "nobody"}, r"knowledge_dose.backbone: unknown model 'nobody'"),
    ({"backbone": "api-model"}, r"knowledge_dose.backbone: api-model is an API model"),
    ({"benchmark": "mmau"}, r"knowledge_dose.benchmark: unknown benchmark 'mmau'"),
    ({"captioner": "whisper"}, r"knowledge_dose.captioner: unknown captioner 'whisper'"),
])
def test_an_experiment_naming_what_the_config_lacks_stops_alone(experiment, message):
    """The study still runs (the config is valid); `snakemake knowledge_dose` reports the reason."""
    assert re.search(message, knowledge_dose_problem(dose_config(**experiment)))
    assert knowledge_dose_problem(dose_config()) is None


def test_the_target_explains_why_it_cannot_run(tmp_path):
    from test_workflow import snakemake

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["audio_benchmarks"] = [{"name": "mmau", "source": "data/mmau.json", "kind": "mmau"}]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--cores", "1", "knowledge_dose", "--configfile", str(path), "--directory", str(tmp_path),
                       check=False)
    assert result.returncode != 0
    assert "knowledge_dose: config.experiments.knowledge_dose.benchmark: unknown benchmark 'synthetic'" in result.stderr
    assert "Traceback" not in result.stderr


# --- the statistics ---------------------------------------------------------------------------------


def graded_frame(accuracy_of, n=200, seed=0):
    """Correctness rows for doses 0/50/100 and a control, where accuracy_of(variant) is the chance
    that a trained-family item is right (held-out items: always 50%)."""
    rng = np.random.default_rng(seed)
    chosen = [Variant("m-dose0", 0, None), Variant("m-dose50-s0", 50, 0), Variant("m-dose100-s0", 100, 0),
              Variant("m-control-s0", None, 0)]
    rows = []
    for v in chosen:
        for i in range(n):
            family = "tempo" if i % 2 else "triad"
            p = accuracy_of(v) if family == "tempo" else 0.5
            rows.append({"id": f"q{i}", "subcategory": family, "correct": rng.random() < p})
    return chosen, {v.name: {"cascade": [r for r in rows[k * n:(k + 1) * n]]} for k, v in enumerate(chosen)}


def corpus_rows(tmp_path):
    return load_corpus(write_corpus(tmp_path / "c", [fact(0, "tempo"), fact(0, "triad", HELD_OUT)], [control_fact(0)]))


def effect(effects, group, key):
    return effects.set_index(["evaluation", "group"]).loc[("cascade", group), key]


def test_a_real_dose_effect_is_found_and_told_from_the_control(tmp_path):
    chosen, graded = graded_frame(lambda v: 0.3 if v.control else 0.3 + 0.6 * v.dose / 100)
    frame = correctness(graded, corpus_rows(tmp_path))
    accuracy, effects = dose_response(frame, chosen, 1000, 0)
    assert effect(effects, TRAIN, "slope") > 40 and effect(effects, TRAIN, "slope_low") > 0
    assert effect(effects, TRAIN, "slope_p") < 0.01
    assert effect(effects, TRAIN, "top_minus_control_low") > 0
    # The held-out families did not change: no slope found there.
    assert effect(effects, HELD_OUT, "slope_low") < 0 < effect(effects, HELD_OUT, "slope_high")
    assert set(accuracy["dose"]) == {0, 50, 100, "control"}


def test_no_effect_is_not_called_one(tmp_path):
    chosen, graded = graded_frame(lambda v: 0.5, seed=3)
    accuracy, effects = dose_response(correctness(graded, corpus_rows(tmp_path)), chosen, 1000, 0)
    for group in (TRAIN, HELD_OUT, "all"):
        assert effect(effects, group, "slope_low") < 0 < effect(effects, group, "slope_high")
        assert effect(effects, group, "slope_p") > 0.05


def effects_row(evaluation, slope, low, high):
    return {"evaluation": evaluation, "group": TRAIN, "n": 100, "accuracy_dose0": 30.0, "accuracy_dose100": 30.0 + slope,
            "slope": slope, "slope_low": low, "slope_high": high, "slope_p": 0.5, "accuracy_control": 30.0,
            "top_minus_control": slope, "top_minus_control_low": low, "top_minus_control_high": high,
            "top_minus_control_p": 0.5}


@pytest.mark.parametrize("probe, audio, said", [
    # The probe did not move: the knowledge never arrived, so a flat audio LLM says nothing about the claim.
    ((0.0, -9.0, 9.0), (0.0, -5.0, 5.0), {"this run does not test the claim"}),
    # The probe moved and the audio LLM did not: evidence against the claim.
    ((20.0, 8.0, 32.0), (0.0, -5.0, 5.0), {"evidence against the claim"}),
    # Both moved, beyond the control: the claim holds at this scale.
    ((20.0, 8.0, 32.0), (15.0, 4.0, 26.0), {"made a better audio LLM"}),
    # The audio LLM moved, the probe did not: not knowledge the probe can see.
    ((0.0, -9.0, 9.0), (15.0, 4.0, 26.0), {"made a better audio LLM", "did not come as knowledge the probe can see"}),
])
def test_the_verdict_reads_the_audio_llm_in_the_light_of_the_probe(probe, audio, said):
    effects = pd.DataFrame([effects_row("probe", *probe), effects_row("audio", *audio)])
    verdict = summary_text(effects, "m", 1000, [0, 100], [0]).split("## Verdict", 1)[1]
    assert all(s in verdict for s in said)
    others = {"this run does not test the claim", "evidence against the claim", "made a better audio LLM",
              "did not come as knowledge the probe can see"} - said
    assert not any(o in verdict for o in others)


def test_variants_must_answer_the_same_items(tmp_path):
    chosen, graded = graded_frame(lambda v: 0.5)
    graded["m-dose50-s0"]["cascade"] = graded["m-dose50-s0"]["cascade"][:-2]
    with pytest.raises(ValueError, match="did not answer the same items"):
        dose_response(correctness(graded, corpus_rows(tmp_path)), chosen, 200, 0)


# --- the DAG at tiny scale --------------------------------------------------------------------------


def test_a_control_variant_trains_merges_and_loads_like_any_model(tmp_path):
    import torch

    from akb.knowledge_dose.train import MANIFEST, train_variant
    from akb.models import ModelSpec, load_model

    base = {"name": "tiny-llama", "backend": "tiny", "source": "llama"}
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear", "lr": 0.01, "epochs": 1,
            "batch_size": 64, "max_length": 32}
    out = tmp_path / "tiny-llama-control-s0"
    manifest = train_variant("builtin", base, out.name, None, 0, lora, out)
    assert manifest["control"] and manifest["rows"] == len(dose_rows(load_corpus(BUILTIN), 100, 0))
    assert json.loads((out / MANIFEST).read_text())["row_ids"] == manifest["row_ids"]
    assert not (tmp_path / f"{out.name}.partial").exists()
    dosed = load_model(ModelSpec.from_config({**base, "name": out.name, "backend": "hf", "source": str(out)}))
    original = load_model(ModelSpec.from_config(base))
    changed = [not torch.equal(a, b) for a, b in zip(dosed.model.parameters(), original.model.parameters())]
    assert any(changed)  # the merged adapters moved the weights
    assert dosed.tokenizer.chat_template == original.tokenizer.chat_template  # prompts are built the same way
    assert len(dosed.loglikelihood([("Question: which is slower?\nAnswer:", " Largo")])) == 1


@pytest.mark.slow
def test_knowledge_dose_target_runs_end_to_end_at_tiny_scale(tmp_path, tiny_whisper_dir):
    """The experiment's DAG (dosed backbone, probe, cascade, distillation, audio LLM with and without
    audio, report) on tiny models; the control variant runs the same rules (tested above)."""
    from test_workflow import e2e_config, snakemake

    config = yaml.safe_load(e2e_config(tmp_path, tiny_whisper_dir).read_text())
    config["synthetic"] |= {"n_test": 40, "n_train": 16}
    config["grounded"]["backbones"] = ["tiny-llama"]
    config["experiments"] = {"knowledge_dose": {
        "backbone": "tiny-llama", "doses": [0, 100], "control": False, "bootstrap_resamples": 200,
        "lora": {"r": 4, "alpha": 8, "epochs": 1, "batch_size": 64, "max_length": 48},
        "grounded": {"train": {"max_steps": 2}}}}
    path = tmp_path / "dose.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake("--cores", "2", "knowledge_dose", "--configfile", str(path), "--directory", str(tmp_path))

    out = tmp_path / "results/knowledge_dose"
    manifest = json.loads((out / "backbones/tiny-llama-dose100-s0/knowledge_dose.json").read_text())
    assert set(manifest["row_ids"]) == {r.id for r in dose_rows(load_corpus(BUILTIN), 100, 0)}
    accuracy = pd.read_csv(out / "accuracy.csv")
    assert set(accuracy["variant"]) == {"tiny-llama-dose0", "tiny-llama-dose100-s0"}
    assert set(accuracy["evaluation"]) == {"probe", "cascade", "audio", "no_audio"}
    assert {"train", "held_out", "all"} <= set(accuracy["group"])
    # Every variant answered every item of the suite, with and without its audio.
    n_items = len(json.loads((tmp_path / "resources/synthetic/test.json").read_text()))
    assert (accuracy.query("evaluation == 'audio' and group == 'all'")["n"] == n_items).all()
    effects = pd.read_csv(out / "effects.csv")
    assert {"slope", "slope_low", "slope_high", "slope_p"} <= set(effects.columns)
    summary = (out / "summary.md").read_text()
    assert "paired bootstrap over items" in summary and "## Verdict" in summary
    assert (out / "dose_response.png").stat().st_size > 10_000
    # The variants' audio LLMs were trained with the experiment's settings (2 steps, not the study's 3).
    assert "2/2" in (tmp_path / "logs/grounded/tiny-llama-dose100-s0/train.log").read_text()
