"""Reproducible by default (the default config's synthetic suite is pinned byte for byte) and the
provenance every run writes (results/provenance.json, `akb provenance`)."""

import copy
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from akb.cli import main
from akb.config import load_config_file, validate_config
from akb.data import synthetic as syn
from akb.io import sha256_file
from akb.provenance import PACKAGES, config_digest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config/config.yaml"

# suite_digest of the suite config/config.yaml asks for (seed 0, 360 test and 400 train clips, formant
# speech). The same on every machine; checked identical with numpy 1.26.4 + scipy 1.11.4 and numpy
# 2.4.6 + scipy 1.17.1, with and without AVX2/FMA kernels. If a deliberate change of the synthesis or
# of those settings moves it, update it here and say so in the changelog: every user's suite, and
# every score measured on it, changes with it.
DEFAULT_SUITE_DIGEST = "66ad33b40d2ddf8f56d5ca74cf33843f8390bf8a28171189fad48fae1f9b11dd"


def test_default_config_builds_the_pinned_suite(tmp_path):
    settings = load_config_file(DEFAULT_CONFIG)["synthetic"]
    # espeak-ng (auto) would make the suite, and every score on it, depend on the machine.
    assert settings["speech_engine"] == "formant"
    minimal = {"models": [{"name": "m", "backend": "tiny", "source": "llama"}]}
    assert validate_config(minimal)["synthetic"]["speech_engine"] == "formant", "so must the schema default"
    syn.generate_suite(tmp_path, settings["seed"], settings["n_test"], settings["n_train"],
                       speech_engine=settings["speech_engine"])
    assert syn.suite_digest(tmp_path) == DEFAULT_SUITE_DIGEST, (
        "the default synthetic suite changed; if on purpose, pin the new digest (see DEFAULT_SUITE_DIGEST)")


def test_suite_digest_covers_every_record_and_clip(tmp_path):
    syn.generate_suite(tmp_path, 1, n_test=9, n_train=3)
    digest = syn.suite_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("not part of the suite")
    assert syn.suite_digest(tmp_path) == digest
    if shutil.which("sha256sum"):  # as the docstring tells users to check it without Python
        shell = subprocess.run("sha256sum audio/*.wav *.json | LC_ALL=C sort -k2 | sha256sum", shell=True,
                               cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()[0]
        assert shell == digest
    clip = sorted((tmp_path / "audio").glob("*.wav"))[-1]
    original = clip.read_bytes()
    clip.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one sample's lowest bit
    assert syn.suite_digest(tmp_path) != digest
    clip.write_bytes(original)
    train = tmp_path / "train.json"
    train.write_text(train.read_text().replace('"medium"', '"hard"', 1))
    assert syn.suite_digest(tmp_path) != digest
    with pytest.raises(FileNotFoundError, match=re.escape(f"{tmp_path / 'audio'}: no test.json or train.json")):
        syn.suite_digest(tmp_path / "audio")


@pytest.fixture(scope="module")
def run_inputs(tmp_path_factory):
    """A config file, a small formant suite and the shipped bank, as a run would have them."""
    root = tmp_path_factory.mktemp("run")
    config = root / "config.yaml"
    config.write_text("synthetic: {seed: 2, n_test: 30, n_train: 0}\n"
                      "models:\n  - {name: m, backend: tiny, source: llama}\n")
    syn.generate_suite(root / "suite", 2, n_test=30, n_train=0)  # 10 speech items, 4 with audio
    bank = root / "bank.jsonl"
    shutil.copy(ROOT / "workflow/data/banks/akb-v2.jsonl", bank)
    return root, config, root / "suite", bank


def test_provenance_command_writes_every_field(run_inputs):
    root, config, suite, bank = run_inputs
    out = root / "results/provenance.json"
    assert main(["provenance", "--config", str(config), "--out", str(out), "--suite", str(suite),
                 "--bank", str(bank), "--repo", str(ROOT)]) == 0
    record = json.loads(out.read_text())
    assert record.keys() == {"written_at", "git", "config_digest", "packages", "platform", "torch", "data"}
    if (ROOT / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", record["git"]["commit"]) and isinstance(record["git"]["dirty"], bool)
    assert record["config_digest"] == config_digest(load_config_file(config))
    assert list(record["packages"]) == ["python", *PACKAGES, "akb"]
    assert record["packages"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert record["packages"]["numpy"] == np.__version__ and record["packages"]["torch"]
    assert record["platform"]
    assert record["torch"]["threads"] >= 1 and isinstance(record["torch"]["cuda_available"], bool)
    assert record["torch"]["device"] == ("cpu" if not record["torch"]["cuda_available"] else record["torch"]["device"])
    assert record["data"]["synthetic"] == {
        "path": str(suite), "digest": syn.suite_digest(suite), "speech_engine": "formant",
        "speech_synthesis": [syn.FORMANT_SYNTH], "items": {"test": 30},
    }
    assert record["data"]["bank"] == {"path": str(bank), "sha256": sha256_file(bank)}
    host = socket.gethostname()
    assert len(host) < 4 or host not in out.read_text(), "the host name is private"


def test_provenance_outside_a_git_checkout_says_unknown(run_inputs, tmp_path, monkeypatch):
    _, config, _, _ = run_inputs
    out = tmp_path / "provenance.json"
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # even if the tmp folder is in a checkout
    assert main(["provenance", "--config", str(config), "--out", str(out), "--repo", str(tmp_path)]) == 0
    record = json.loads(out.read_text())
    assert record["git"] == {"commit": "unknown", "dirty": "unknown"} and record["data"] == {}


def test_provenance_names_a_missing_suite(run_inputs, tmp_path, caplog):
    _, config, _, bank = run_inputs
    assert main(["provenance", "--config", str(config), "--out", str(tmp_path / "p.json"),
                 "--suite", str(tmp_path / "absent"), "--bank", str(bank)]) == 2
    assert f"{tmp_path / 'absent'}: no test.json or train.json" in caplog.text
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("config_file", ["config/config.yaml", "config/paper.yaml"])
def test_config_digest_follows_the_resolved_config(config_file, tmp_path):
    resolved = load_config_file(ROOT / config_file)
    # The workflow hands `akb provenance` its resolved config as JSON: resolving it again changes nothing.
    (tmp_path / "config.json").write_text(json.dumps(resolved))
    assert config_digest(load_config_file(tmp_path / "config.json")) == config_digest(resolved)
    reordered = dict(reversed(list(resolved.items())))
    assert config_digest(reordered) == config_digest(resolved)
    changed = copy.deepcopy(resolved)
    changed["synthetic"]["seed"] += 1
    assert config_digest(changed) != config_digest(resolved)
    assert config_digest(resolved) == hashlib.sha256(
        json.dumps(resolved, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def test_every_default_run_ends_with_the_provenance(tmp_path):
    """In the default target, after the suite and the bank, and read by no job but `all` (so writing it
    never reruns a model job)."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    plan = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "-n",
                           "--directory", str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    jobs = {}
    for block in plan.stdout.split("\n\n"):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        inputs = re.search(r"^\s+input: (.*)$", block, re.M)
        if rule:
            jobs.setdefault(rule.group(1), []).append(inputs.group(1).split(", ") if inputs else [])
    (provenance_inputs,) = jobs["provenance"]
    assert {"resources/synthetic", "resources/banks/akb.jsonl", "results/tables/metrics.csv"} <= set(provenance_inputs)
    readers = [rule for rule, inputs in jobs.items() if any("results/provenance.json" in i for i in inputs)]
    assert readers == ["all"]
