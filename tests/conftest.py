import json
import os

# Never wait on a model hub: everything in the tests is built or shipped locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import WhisperConfig, WhisperForConditionalGeneration  # noqa: E402

from akb.data.items import MCQItem  # noqa: E402


def make_items(n: int = 10) -> list[MCQItem]:
    """Small varied bank: different question lengths and answer positions."""
    items = []
    for i in range(n):
        choices = (f"option {i} alpha", f"option {i} beta", f"option {i} gamma", f"option {i} delta")
        items.append(
            MCQItem(
                id=f"q{i:02d}",
                question="Which term describes a sound " + "that grows louder " * (i % 4 + 1) + "?",
                choices=choices,
                answer=choices[i % 4],
                category=["Sound", "Music"][i % 2],
                subcategory=["scene", "tempo", "pitch"][i % 3],
            )
        )
    return items


class Interrupted(Exception):
    """What `DiesAfter` raises: a job killed between two batches."""


class DiesAfter:
    """Wraps a model and fails like a killed job after a number of batches (probe and distillation
    resume tests)."""

    def __init__(self, model, batches):
        self.model, self.left = model, batches

    def __getattr__(self, name):
        return getattr(self.model, name)

    def _one_more(self):
        if self.left == 0:
            raise Interrupted
        self.left -= 1

    def generate(self, prompts, max_new_tokens):
        self._one_more()
        return self.model.generate(prompts, max_new_tokens)

    def loglikelihood(self, requests):
        self._one_more()
        return self.model.loglikelihood(requests)


@pytest.fixture
def items() -> list[MCQItem]:
    return make_items()


@pytest.fixture
def bank_file(tmp_path, items):
    path = tmp_path / "bank.jsonl"
    path.write_text("".join(json.dumps(it.to_bank_record()) + "\n" for it in items))
    return path


@pytest.fixture(scope="session")
def tiny_qwen3():
    from akb.models import ModelSpec, load_model

    return load_model(ModelSpec.from_config({"name": "tiny-qwen3", "backend": "tiny", "source": "qwen3"}))


# ---- a tiny random Whisper (model, tokenizer, processor) saved like a real checkpoint ----

D_MODEL, LAYERS, HEADS, VOCAB = 32, 2, 4, 120


def tiny_whisper(seed=0) -> WhisperForConditionalGeneration:
    config = WhisperConfig(
        vocab_size=VOCAB, num_mel_bins=80, d_model=D_MODEL, encoder_layers=LAYERS, decoder_layers=LAYERS,
        encoder_attention_heads=HEADS, decoder_attention_heads=HEADS, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=1500, max_target_positions=64, tie_word_embeddings=True,
        pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=1,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # transformers initialises biases to zero; make them count in the comparison
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.02)
    return model


def whisper_tokenizer_json(path) -> None:
    """A word-level tokenizer holding Whisper's special tokens, in tokenizer.json form."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|startofprev|>",
                "<|notimestamps|>"]  # fmt: skip
    words = specials + [f"w{i}" for i in range(VOCAB - len(specials) - 1)] + ["[UNK]"]  # specials get ids 0-5
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(specials)
    tok.save(str(path))



@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory):
    """A directory WhisperForConditionalGeneration and WhisperProcessor load, as from the hub."""
    return save_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


def save_tiny_whisper(out):
    """Write the tiny random Whisper into directory `out` (also used by tests/envs/run_env_test.py)."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizerFast

    whisper_tokenizer_json(out / "tokenizer.json")
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(out / "tokenizer.json"), predict_timestamps=False)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(out)
    model = tiny_whisper()
    model.generation_config.update(decoder_start_token_id=1, eos_token_id=0, pad_token_id=0, bos_token_id=0,
                                   no_timestamps_token_id=5, is_multilingual=False)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module's tests (bitwise-stable results on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- optional system packages (chromium, espeak-ng): skipped where absent, failed where required ----

REQUIRE_OPTIONAL = "AKB_REQUIRE_OPTIONAL"


def required_optional() -> set[str]:
    """The optional packages this run must have: AKB_REQUIRE_OPTIONAL, comma separated (.ci/run sets it)."""
    return {name.strip() for name in os.environ.get(REQUIRE_OPTIONAL, "").split(",") if name.strip()}


def require_optional(name: str, available: bool, install: str) -> None:
    """Skip the calling test when optional package `name` is missing, or fail it when the run requires
    the package: a CI machine that lost it would otherwise pass while testing less."""
    if available:
        return
    if name in required_optional():
        pytest.fail(f"{name} is missing but {REQUIRE_OPTIONAL} requires it ({install})", pytrace=False)
    pytest.skip(f"{name} not installed ({install})")
