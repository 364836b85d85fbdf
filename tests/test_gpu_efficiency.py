"""GPU efficiency on the paper config: per-stage resources, device_map placement, the optional vLLM
generation backend (its selection, and its adapter against a stand-in `vllm` module: a unit test of
our code, not a claim that vLLM ran), and the GPU-hours estimate."""

import importlib.util
import logging
import sys
import types
from pathlib import Path

import pytest
import torch

from akb.config import load_config_file, stage_entry
from akb.models import ModelSpec, load_model
from akb.models import vllm_backend
from akb.models.hf import HFCausalLM, device_map_for
from akb.models.tiny import build_tiny_model
from akb.models.vllm_backend import VLLMCausalLM, choose_generation_backend

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["Which noise has a flat power spectral density?", "Hi", "What does bit depth describe? " * 3]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny Llama saved as a model directory, as the hf backend loads real checkpoints."""
    path = tmp_path_factory.mktemp("tiny-llama")
    model, tokenizer = build_tiny_model("llama", seed=0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def spec(source, **extra):
    return ModelSpec.from_config({"name": "m", "backend": "hf", "source": str(source), **extra})


# ---- resources per stage ----

def test_paper_config_gives_training_and_distillation_their_own_runtime():
    config = load_config_file(ROOT / "config/paper.yaml")
    for stage in ("probe", "cascade", "evaluate", "diagnose"):
        assert stage_entry(config, "qwen3-14b", stage)["resources"] == {"gpu": 1, "mem_mb": 64000, "runtime": 240,
                                                                          "threads": 4}
    for stage in ("distill", "train"):
        assert stage_entry(config, "qwen3-8b", stage)["resources"]["runtime"] == 2880
    # Model captioners get a GPU; the API captioner (Gemini) and caption files need none.
    assert {c["name"]: c["resources"]["gpu"] for c in config["captioners"]} == {
        "gemini": 0, "whisper-large-v3": 1, "qwen3-omni-captioner": 1}


def test_a_stage_block_overrides_only_its_keys():
    config = load_config_file(ROOT / "config/paper.yaml")
    config["models"][0]["resources"]["train"] = {"gpu": 2, "mem_mb": 128000}
    entry = stage_entry(config, config["models"][0]["name"], "train")
    assert entry["resources"]["gpu"] == 2 and entry["resources"]["mem_mb"] == 128000
    assert entry["resources"]["threads"] == 4 and "train" not in entry["resources"]
    assert ModelSpec.from_config(entry).gpus == 2


# ---- device_map ----

def test_device_map_rule():
    assert device_map_for(spec("x")) is None
    assert device_map_for(spec("x", resources={"gpu": 1})) is None
    assert device_map_for(spec("x", resources={"gpu": 2})) == "auto"
    assert device_map_for(spec("x", device_map="sequential")) == "sequential"


def test_a_model_split_by_device_map_answers_as_the_plain_load(tiny_dir, tmp_path):
    plain = HFCausalLM.from_pretrained(spec(tiny_dir))
    # CPU memory for about half the weights: accelerate puts the rest on disk and moves each layer
    # in when it runs, the same hooks that move activations between GPUs.
    split = HFCausalLM.from_pretrained(spec(tiny_dir, device_map="auto", max_memory={"cpu": "420KB"},
                                            offload_folder=str(tmp_path)))
    assert len(set(split.model.hf_device_map.values())) > 1, split.model.hf_device_map
    assert split.device == split.model.get_input_embeddings().weight.device
    prompts = [plain.prompt(p) for p in PROMPTS]
    assert split.generate(prompts, 6) == plain.generate(prompts, 6)
    requests = [(prompts[0], "white noise"), (prompts[1], "pink"), (prompts[0], "A")]
    for a, b in zip(split.loglikelihood(requests), plain.loglikelihood(requests)):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4) and a.n_tokens == b.n_tokens


def test_device_map_reaches_from_pretrained(tiny_dir, monkeypatch):
    seen = {}

    def spy(source, **kwargs):  # no GPUs here to place on: record the call, return a plain model
        seen.update(kwargs)
        return build_tiny_model("llama")[0]

    monkeypatch.setattr("akb.models.hf.AutoModelForCausalLM.from_pretrained", spy)
    HFCausalLM.from_pretrained(spec(tiny_dir, resources={"gpu": 2}, max_memory={"0": "70GiB", "cpu": "1GiB"}))
    assert seen["device_map"] == "auto" and seen["max_memory"] == {0: "70GiB", "cpu": "1GiB"}
    seen.clear()
    HFCausalLM.from_pretrained(spec(tiny_dir, resources={"gpu": 1}))
    assert "device_map" not in seen  # one GPU: the whole model on `device`, as before


# ---- generation backend selection ----

def test_without_vllm_generation_falls_back_to_transformers_with_one_log_line(tiny_dir, caplog, monkeypatch):
    monkeypatch.setattr(vllm_backend, "vllm_unavailable", lambda: "the vllm package is not installed")
    with caplog.at_level(logging.INFO, logger="akb.models.vllm_backend"):
        model = load_model(spec(tiny_dir), generation_only=True)
    assert isinstance(model, HFCausalLM)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "generating with transformers (vLLM not used: the vllm package is not installed)" in line


def test_asking_for_vllm_where_it_cannot_run_is_an_error(monkeypatch):
    monkeypatch.setattr(vllm_backend, "vllm_unavailable", lambda: "no CUDA GPU is visible")
    with pytest.raises(RuntimeError, match="generation_backend is vllm but no CUDA GPU is visible"):
        choose_generation_backend(spec("x", generation_backend="vllm"), generation_only=True)


def test_vllm_is_chosen_only_for_generate_only_jobs(monkeypatch):
    monkeypatch.setattr(vllm_backend, "vllm_unavailable", lambda: None)
    assert choose_generation_backend(spec("x"), generation_only=True) == "vllm"
    assert choose_generation_backend(spec("x"), generation_only=False) == "transformers"
    assert choose_generation_backend(spec("x", generation_backend="vllm"), generation_only=False) == "transformers"
    assert choose_generation_backend(spec("x", generation_backend="transformers"), generation_only=True) == "transformers"


def test_this_machine_reports_why_vllm_cannot_run():
    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        assert vllm_backend.vllm_unavailable()


# ---- the vLLM adapter, against a stand-in module ----

class FakeLLM:
    instances = []

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        FakeLLM.instances.append(self)

    def generate(self, requests, params, use_tqdm=True):
        self.calls.append((requests, params))
        completion = lambda r: types.SimpleNamespace(text=f"  answer {len(r['prompt_token_ids'])} ")  # noqa: E731
        return [types.SimpleNamespace(outputs=[completion(r)]) for r in requests]


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def fake_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM, SamplingParams=FakeSamplingParams))
    monkeypatch.setattr(vllm_backend, "vllm_unavailable", lambda: None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    FakeLLM.instances.clear()


def test_vllm_adapter_sends_the_transformers_backend_tokens_and_maps_outputs(tiny_dir, fake_vllm):
    entry = {"resources": {"gpu": 2}, "seed": 3, "vllm": {"gpu_memory_utilization": 0.8}, "chat": {"system_prompt": "Be brief."}}
    model = load_model(spec(tiny_dir, **entry), generation_only=True)
    assert isinstance(model, VLLMCausalLM)
    (engine,) = FakeLLM.instances
    assert engine.kwargs == {"model": str(tiny_dir), "tokenizer": str(tiny_dir), "revision": None,
                             "trust_remote_code": False, "dtype": "bfloat16", "tensor_parallel_size": 2, "seed": 3,
                             "gpu_memory_utilization": 0.8}

    reference = HFCausalLM.from_pretrained(spec(tiny_dir, **entry))
    prompts = [model.prompt(p) for p in PROMPTS]
    assert prompts == [reference.prompt(p) for p in PROMPTS] and "Be brief." in prompts[0]
    answers = model.generate(prompts, 7)
    (requests, params), = engine.calls
    assert [r["prompt_token_ids"] for r in requests] == [reference.encode(p) for p in prompts]
    assert params.kwargs == {"temperature": 0.0, "max_tokens": 7, "skip_special_tokens": True,
                             "stop_token_ids": [reference.model.generation_config.eos_token_id]}
    assert answers == [f"answer {len(reference.encode(p))}" for p in prompts]  # in order, stripped
    with pytest.raises(NotImplementedError, match="only generates"):
        model.loglikelihood([(prompts[0], "A")])


# ---- GPU hours ----

def test_gpu_hours_estimate_is_linear_in_the_distillation_set(tiny_dir, monkeypatch):
    module_spec = importlib.util.spec_from_file_location("gpu_hours", ROOT / "bench/gpu_hours.py")
    gpu_hours = importlib.util.module_from_spec(module_spec)
    monkeypatch.setitem(sys.modules, "gpu_hours", gpu_hours)  # its dataclasses look their module up
    module_spec.loader.exec_module(gpu_hours)

    measured = gpu_hours.measure_prompts(str(tiny_dir), "builtin", limit=5)
    assert measured["cascade"] > measured["probe"] > 10
    paper = gpu_hours.load_study(ROOT / "config/paper.yaml")
    assert gpu_hours.distill_rows_of(paper) == 5_000_000  # desta25: all of DeSTA-AQA5M
    light = gpu_hours.load_study(ROOT / "config/paper.yaml", "akb-light")
    assert gpu_hours.distill_rows_of(light) == 500_000 and light["grounded"]["train"]["epochs"] == 2
    full = {s.name: s.gpu_hours for s in gpu_hours.estimate(paper, measured, distill_rows=5_000_000)}
    lighter = {s.name: s.gpu_hours for s in gpu_hours.estimate(light, measured, distill_rows=500_000)}
    assert lighter["train"] < full["train"] / 20  # a tenth of the rows, 2 epochs of 5
    small = {s.name: s for s in gpu_hours.estimate(paper, measured, distill_rows=1000)}
    large = {s.name: s for s in gpu_hours.estimate(paper, measured, distill_rows=2000)}
    load = 8 * gpu_hours.Rates().load_minutes / 60
    for stage in ("distill (vLLM)", "train"):
        assert large[stage].gpu_hours - load == pytest.approx(2 * (small[stage].gpu_hours - load))
    assert small["probe (AKB-2000)"].gpu_hours == large["probe (AKB-2000)"].gpu_hours > 0
    assert "12 open models x 2000 items" in small["probe (AKB-2000)"].work
    # The paper's pairings: the 12 open models answer from Gemini captions only (API captions and
    # Gemini-2.5-Pro's answers cost no GPU time), and the GPU captioners are Whisper and the Omni one.
    assert small["cascade"].work.startswith("12 (captioner, open model) pairs x 2000 items")
    assert "Whisper-large-v3" in small["caption"].work and "qwen3-omni-captioner" in small["caption"].work
    assert gpu_hours.markdown(list(small.values())).count("\n") == len(small) + 2
