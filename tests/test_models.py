import pytest
import torch

from akb.models import ModelSpec, load_model
from akb.models.hf import HFCausalLM
from akb.models.tiny import ARCHITECTURES, build_tiny_model

PROMPT = "Which noise has a flat power spectral density?"


def tiny(architecture, seed=0, **extra):
    return load_model(ModelSpec.from_config({"name": f"t-{architecture}", "backend": "tiny",
                                             "source": architecture, "seed": seed, **extra}))


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_tiny_architectures_are_real_and_deterministic(architecture):
    model, tokenizer = build_tiny_model(architecture, seed=1)
    again, _ = build_tiny_model(architecture, seed=1)
    other, _ = build_tiny_model(architecture, seed=2)
    assert model.config.model_type == ARCHITECTURES[architecture][0]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                           add_generation_prompt=True)
    assert PROMPT in prompt and tokenizer.eos_token_id == model.generation_config.eos_token_id
    assert max(tokenizer(prompt, add_special_tokens=False)["input_ids"]) < model.config.vocab_size


def test_qwen3_thinking_mode_is_explicit():
    assert "<think>\n\n</think>" in tiny("qwen3", chat={"thinking": False}).prompt(PROMPT)
    assert "<think>" not in tiny("qwen3").prompt(PROMPT)


def test_system_prompt_and_plain_prompts():
    assert "Be brief." in tiny("llama", chat={"system_prompt": "Be brief."}).prompt(PROMPT)
    plain = tiny("llama", chat={"use_template": False})
    assert plain.prompt(PROMPT) == PROMPT and plain.continuation("white") == " white"


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_batched_loglikelihood_matches_a_manual_forward(architecture):
    model = tiny(architecture)
    context = model.prompt(PROMPT)
    # Shared and unshared contexts of different lengths, one-token and longer continuations.
    requests = [(context, "white noise"), (model.prompt("Short?"), "pink"), (context, "brown noise, deep"),
                (context, "A")]
    batched = model.loglikelihood(requests)
    for (ctx, cont), result in zip(requests, batched):
        ctx_ids = model.tokenizer(ctx, add_special_tokens=False)["input_ids"]
        cont_ids = model.tokenizer(cont, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model.model(torch.tensor([ctx_ids + cont_ids])).logits[0].log_softmax(-1)
        expected = sum(logits[len(ctx_ids) + i - 1, t].item() for i, t in enumerate(cont_ids))
        assert result.logprob == pytest.approx(expected, abs=1e-4)
        assert result.n_tokens == len(cont_ids) and result.n_bytes == len(cont.encode())


def test_batched_generation_matches_one_by_one(tiny_qwen3):
    prompts = [tiny_qwen3.prompt(PROMPT), tiny_qwen3.prompt("Hi"), tiny_qwen3.prompt(PROMPT * 3)]
    assert tiny_qwen3.generate(prompts, 6) == [tiny_qwen3.generate([p], 6)[0] for p in prompts]


def test_hf_backend_loads_a_saved_directory(tmp_path, tiny_qwen3):
    tiny_qwen3.model.save_pretrained(tmp_path)
    tiny_qwen3.tokenizer.save_pretrained(tmp_path)
    loaded = load_model(ModelSpec.from_config({"name": "saved", "backend": "hf", "source": str(tmp_path)}))
    assert isinstance(loaded, HFCausalLM) and loaded.model.dtype == torch.float32
    prompt = loaded.prompt(PROMPT)
    assert prompt == tiny_qwen3.prompt(PROMPT)
    assert loaded.generate([prompt], 5) == tiny_qwen3.generate([prompt], 5)


def test_unknown_and_unimplemented_backends():
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        ModelSpec.from_config({"name": "m", "backend": "nope", "source": "x"})
    with pytest.raises(ValueError, match="unknown tiny architecture 'gpt9'"):
        tiny("gpt9")
    with pytest.raises(ValueError, match="needs an `api:` block"):
        load_model(ModelSpec.from_config({"name": "m", "backend": "api", "source": "gpt-5"}))
    with pytest.raises(FileNotFoundError, match="model m: cannot load 'no-such-org/no-such-model'"):
        load_model(ModelSpec.from_config({"name": "m", "backend": "hf", "source": "no-such-org/no-such-model"}))
    with pytest.raises(FileNotFoundError, match="not a converted model directory"):
        load_model(ModelSpec.from_config({"name": "m", "backend": "packaged", "source": "absent"}))


@pytest.fixture
def saved_qwen3(tmp_path, tiny_qwen3):
    tiny_qwen3.model.save_pretrained(tmp_path / "m")
    tiny_qwen3.tokenizer.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


@pytest.mark.parametrize("setting", [{}, {"trust_remote_code": True}])
def test_remote_code_runs_only_where_the_config_says_and_is_logged(saved_qwen3, monkeypatch, caplog, setting):
    import transformers

    seen = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        real = cls.from_pretrained
        monkeypatch.setattr(cls, "from_pretrained",
                            lambda *a, _real=real, **kw: seen.append(kw["trust_remote_code"]) or _real(*a, **kw))
    load_model(ModelSpec.from_config({"name": "mine", "backend": "hf", "source": str(saved_qwen3), **setting}))
    on = setting.get("trust_remote_code", False)
    assert seen == [on, on]  # tokenizer and model
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "trust_remote_code" in r.message]
    assert warned == ([f"model mine: trust_remote_code is on: Python code shipped with {saved_qwen3} runs in this "
                       "process"] if on else [])


def test_a_packaged_model_loads_from_safetensors_only(saved_qwen3):
    """A converted directory is ours: weights in a pickle (.bin) there are not read."""
    from safetensors.torch import load_file

    weights = saved_qwen3 / "model.safetensors"
    torch.save(load_file(weights), saved_qwen3 / "pytorch_model.bin")
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="model p: cannot load"):
        load_model(ModelSpec.from_config({"name": "p", "backend": "packaged", "source": "m"}),
                   packaged_root=saved_qwen3.parent)
