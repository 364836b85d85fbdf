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
        ({"bank": {"sorce": "x"}}, "config.bank: Additional properties"),
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
