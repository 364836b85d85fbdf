"""Training recipes (grounded.recipe): desta25 and akb-light fill the grounded settings a config leaves
out, the config's own values win, and the paper config can switch between them from the command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from akb.config import ConfigError, validate_config

ROOT = Path(__file__).resolve().parent.parent
MODELS = [{"name": "m", "backend": "tiny", "source": "llama"}]


def grounded(**block):
    config = {"models": MODELS, "synthetic": {"n_train": 8}, "grounded": {"backbones": ["m"], **block}}
    return validate_config(config)["grounded"]


def test_desta25_is_destas_code_and_no_recipe_keeps_the_previous_behaviour():
    desta = grounded(recipe="desta25")
    assert desta["connector"]["last_tap"] == "pre_layer_norm" and desta["transcript_max_tokens"] == 100
    assert desta["transcribe"]["seed_transcripts"] is True and desta["transcribe"]["vad"] is True
    assert desta["distill"]["own_prompt"] == "replace" and desta["distill"]["max_new_tokens"] == 256
    assert (desta["train"]["epochs"], desta["train"]["warmup_steps"], desta["train"]["truncation"]) == (5, 5000, "sequence")
    plain = grounded()
    assert "recipe" not in plain and "last_tap" not in plain["connector"] and "truncation" not in plain["train"]


def test_akb_light_trains_less_and_the_configs_own_values_win():
    light = grounded(recipe="akb-light", train={"epochs": 3, "grad_accum": 8})
    assert light["train"]["epochs"] == 3  # the config's own
    assert light["train"]["warmup_steps"] == 200 and light["train"]["grad_accum"] == 8
    assert light["connector"]["last_tap"] == "pre_layer_norm"  # DeSTA's model handling, unchanged
    # The subsample applies where the config reads DeSTA-AQA5M, and only there.
    assert "desta_aqa" not in light["distill"]
    desta = {"source": "org/rows", "audio_roots": {"IEMOCAP": "/data/iemocap"}}
    with_rows = grounded(recipe="akb-light", distill={"desta_aqa": desta})
    assert with_rows["distill"]["desta_aqa"]["max_rows"] == 500000
    assert with_rows["distill"]["desta_aqa"]["audio_roots"] == desta["audio_roots"]


def test_unknown_recipe_names_the_key():
    with pytest.raises(ConfigError, match="config.grounded.recipe"):
        grounded(recipe="fancy")


def test_the_paper_config_switches_recipe_from_the_command_line(tmp_path):
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    assert paper["grounded"]["recipe"] == "desta25" and "epochs" not in paper["grounded"]["train"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    epochs = {}
    for recipe in ("desta25", "akb-light"):
        out = subprocess.run(
            [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "-n", "-p",
             "--configfile", str(ROOT / "config/paper.yaml"), "--config", f"grounded={{recipe: {recipe}}}",
             "--directory", str(tmp_path), "results/grounded/qwen3-8b/checkpoint"],
            capture_output=True, text=True, env=env, timeout=300, check=True).stdout
        (train,) = [line for line in out.splitlines() if "python -m akb train " in line]
        settings = json.loads(train.split("--grounded ")[1].split("' ")[0].strip("'"))
        epochs[recipe] = settings["train"]["epochs"]
    assert epochs == {"desta25": 5, "akb-light": 2}
