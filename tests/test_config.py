from pathlib import Path

import pytest
import yaml

from akb.config import ConfigError, load_config_file, probe_settings, validate_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["config/config.yaml", "config/paper.yaml", "tests/data/e2e_config.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config_file(ROOT / name)
    assert config["probe"]["bootstrap_resamples"] >= 100


def test_defaults_are_filled():
    config = validate_config({"models": [{"name": "m", "backend": "tiny", "source": "llama"}]})
    assert config["bank"]["source"] == "builtin"
    assert config["models"][0]["resources"]["gpu"] == 0
    assert probe_settings(config, "m") == {"mode": "generate", "batch_size": 8, "max_new_tokens": 32}


@pytest.mark.parametrize(
    "change, key",
    [
        ({"models": [{"name": "m", "backend": "nope", "source": "x"}]}, "config.models[0].backend"),
        ({"models": [{"name": "bad/name", "backend": "tiny", "source": "x"}]}, "config.models[0].name"),
        ({"models": [{"name": "m", "backend": "tiny"}]}, "config.models[0]: 'source' is a required"),
        ({"probe": {"mode": "vibes"}}, "config.probe.mode"),
        ({"bank": {"sorce": "x"}}, "config.bank: unknown key 'sorce' (did you mean 'source'?)"),
        ({"probe": {"models": ["ghost"]}}, "config.probe.models: unknown model(s) ['ghost']"),
        ({"models": [{"name": "m", "backend": "tiny", "source": "a"}] * 2}, "duplicate name(s) ['m']"),
    ],
)
def test_invalid_configs_name_the_key(change, key):
    config = {"models": [{"name": "m", "backend": "tiny", "source": "llama"}], **change}
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert key in str(error.value)


def test_paper_config_declares_the_study():
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    backends = [m["backend"] for m in config["models"]]
    assert backends.count("hf") == 12 and backends.count("api") == 5


TINY = {"name": "tiny", "backend": "tiny", "source": "qwen3"}


def test_numbers_given_as_text_on_the_command_line_are_numbers():
    """`snakemake --config 'bank={limit: 20}'` passes nested values as strings; they mean numbers."""
    from akb.config import ConfigError, validate_config

    config = validate_config({"bank": {"limit": "20"}, "probe": {"batch_size": "4"}, "models": [TINY]})
    assert config["bank"]["limit"] == 20 and config["probe"]["batch_size"] == 4
    with pytest.raises(ConfigError, match=r"config.bank.limit: 'twenty'"):
        validate_config({"bank": {"limit": "twenty"}, "models": [TINY]})



API = {"name": "gpt", "backend": "api", "source": "gpt-5", "probe_mode": "generate",
       "api": {"base_url": "https://api.example.org/v1"}}
DSP = {"name": "dsp", "backend": "dsp"}
BENCH = {"name": "mmau", "source": "data/mmau/mmau-test-mini.json"}


@pytest.mark.parametrize("config, message", [
    ({"captioners": [DSP, DSP]}, "config.captioners: duplicate name(s) ['dsp']"),
    ({"audio_benchmarks": [BENCH, BENCH]}, "config.audio_benchmarks: duplicate name(s) ['mmau']"),
    ({"cascade": {"models": ["ghost"]}}, "config.cascade.models: unknown model(s) ['ghost']; declared: ['tiny']"),
    ({"grounded": {"backbones": ["ghost"]}},
     "config.grounded.backbones: unknown model(s) ['ghost']; declared: ['tiny']"),
    ({"captioners": [DSP, {**DSP, "name": "d2", "models": ["tiny", "ghost"]}]},
     "config.captioners[1].models (d2): unknown model(s) ['ghost']; declared: ['tiny']"),
    ({"captioners": [DSP], "cascade": {"main_captioner": "gemini"}},
     "config.cascade.main_captioner: 'gemini' is not a captioner; declared: ['dsp']"),
    ({"audio_benchmarks": [{**BENCH, "fetch": "mmau-test-mini", "kind": "mmar"}]},
     "config.audio_benchmarks[0] (mmau): fetch 'mmau-test-mini' is an mmau benchmark, not kind 'mmar'"),
    ({"audio_benchmarks": [BENCH], "grounded": {"benchmarks": ["mmar"]}},
     "config.grounded.benchmarks: unknown benchmark(s) ['mmar']; declared: ['mmau']"),
    ({"audio_benchmarks": [BENCH], "diagnostics": {"benchmarks": ["mmar"]}},
     "config.diagnostics.benchmarks: unknown benchmark(s) ['mmar']; declared: ['mmau']"),
    ({"models": [TINY, API], "grounded": {"backbones": ["gpt"]}},
     "config.grounded.backbones: gpt is an API model; an audio LLM needs the backbone's weights"),
    ({"grounded": {"distill": {"seeds": "data/seeds.jsonl", "desta_aqa": {"source": "x/y", "audio_roots": {}}}}},
     "config.grounded.distill: seeds and desta_aqa both name the seeds"),
    ({"grounded": {"backbones": ["tiny"]}, "diagnostics": {"models": ["other"]}},
     "config.diagnostics.models: ['other'] are not grounded backbones (grounded.backbones: ['tiny'])"),
    ({"models": [TINY, {**API, "probe_mode": "loglik"}]},
     "config.models[1] (gpt): API models cannot give log-likelihoods; set probe_mode: generate on the entry"),
    ({"grounded": {"recipe": "nope"}}, "config.grounded.recipe: unknown recipe 'nope'; one of ["),
    ({"grounded": {"backbones": ["tiny"]}, "synthetic": {"n_train": 0}},
     "config.synthetic.n_train: the grounded stage distils from the synthetic train split"),
    ({"audio_llms": [{"name": "tiny", "backend": "qwen2-audio", "source": "Qwen/Qwen2-Audio-7B-Instruct",
                      "text_backbone": "tiny"}]},
     "config.audio_llms: name(s) ['tiny'] are also models[] names"),
])
def test_every_cross_reference_error_names_the_key_and_what_is_declared(config, message):
    with pytest.raises(ConfigError) as error:
        validate_config({"models": [TINY], **config})
    assert str(error.value).startswith("invalid configuration:\n  ") and message in str(error.value)
