"""`akb stage`: a config's hub models downloaded into the HF cache on a login node (a loopback server
answers as the hub does), what is there skipped, and every failure listed without stopping the rest."""

import hashlib
import json

import pytest
import yaml
from huggingface_hub import constants

from akb.cli import main
from akb.config import validate_config
from akb.assets.readiness import HubChecker, HubTarget
from test_fetch import COMMIT, hub  # noqa: F401 - the loopback hub fixture

REPO = "org/tiny-model"
# What from_pretrained loads (config, tokenizer, the safetensors weights), beside weights it never
# loads: a .bin copy and the original checkpoint in a subfolder.
FILES = {"config.json": b'{"model_type": "llama"}', "tokenizer.json": b"{}", "model.safetensors": b"w" * 4096,
         "pytorch_model.bin": b"b" * 4096, "original/consolidated.pth": b"c" * 4096}


def publish(hub, repo, files):
    info = json.dumps({"id": repo, "sha": COMMIT, "private": False, "gated": False,
                       "siblings": [{"rfilename": name} for name in files]}).encode()
    hub.files[f"/api/models/{repo}"] = hub.files[f"/api/models/{repo}/revision/main"] = info
    tree = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            for name, data in files.items()]
    hub.files[f"/api/models/{repo}/tree/{COMMIT}"] = json.dumps(tree).encode()
    for name, data in files.items():
        hub.files[f"/{repo}/resolve/{COMMIT}/{name}"] = data


@pytest.fixture
def study(hub, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(tmp_path)
    publish(hub, REPO, FILES)

    def write(*sources, packaged=()):
        models = [{"name": f"m{i}", "backend": "hf", "source": s} for i, s in enumerate(sources)]
        models += [{"name": p, "backend": "packaged", "source": p} for p in packaged]
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump({"models": models}))
        validate_config(yaml.safe_load(path.read_text()))
        return str(path)

    return write


def downloads(hub):
    return [path for method, path, _ in hub.requests if method == "GET" and "/resolve/" in path]


def test_stage_downloads_what_from_pretrained_loads_and_a_rerun_downloads_nothing(
    hub, study, tmp_path, capsys  # noqa: F811
):
    built = tmp_path / "resources/models/gemma3-270m"  # a packaged model built earlier: not rebuilt (no pip)
    built.mkdir(parents=True)
    (built / "config.json").write_text("{}")
    assert main(["stage", "--config", study(REPO, packaged=["gemma3-270m"])]) == 0
    assert sorted(p.rsplit("/", 1)[1] for p in downloads(hub)) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert HubChecker().cached_locally(HubTarget(REPO, None, "model", ()))  # as transformers loads it offline
    out = capsys.readouterr().out
    assert "downloaded to" in out and "gemma3-270m" in out and "already built" in out

    hub.requests.clear()
    assert main(["stage", "--config", study(REPO)]) == 0
    assert downloads(hub) == [] and "already in the HF cache" in capsys.readouterr().out


def test_a_failure_is_listed_and_the_other_models_are_still_staged(hub, study, capsys):  # noqa: F811
    assert main(["stage", "--config", study("org/absent-model", REPO)]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "org/absent-model" in line)
    assert line.startswith("MISSING") and "download failed" in line and "used by m0" in line
    assert HubChecker().cached_locally(HubTarget(REPO, None, "model", ()))


def test_nothing_to_stage_in_the_demo_config(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    config = Path(__file__).resolve().parent.parent / "config/config.yaml"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resources/models").mkdir(parents=True)
    for name in ("smollm2-135m-instruct", "gemma3-270m", "whisper-tiny.en"):  # as if fetch_packaged_model ran
        (tmp_path / "resources/models" / name).mkdir()
        (tmp_path / "resources/models" / name / "config.json").write_text("{}")
    assert main(["stage", "--config", str(config)]) == 0
    assert "MISSING" not in capsys.readouterr().out
