"""Tiny randomly initialised models of real architectures, with an offline-trained tokenizer.

They run every code path of the real families (their model classes, special tokens and chat
templates) in seconds on a CPU, deterministically by seed: tests, CI and the offline demo use them.
Their answers are noise; they exist to exercise the machinery, not to know anything."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from akb import DATA_DIR
from akb.models.chat_templates import GEMMA3_CHAT_TEMPLATE


@dataclass(frozen=True)
class ChatFormat:
    """A family's special tokens and chat template (Jinja), modelled on the real checkpoints."""

    bos: str | None
    eos: str  # the end-of-turn token that stops generation
    pad: str
    extra_special: tuple[str, ...]
    template: str


CHATML = ChatFormat(
    bos=None,
    eos="<|im_end|>",
    pad="<|endoftext|>",
    extra_special=("<|im_start|>",),
    template=(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n"
        # Qwen3 templates write an empty reasoning block when thinking is switched off.
        "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
        "{% endif %}"
    ),
)
LLAMA3 = ChatFormat(
    bos="<|begin_of_text|>",
    eos="<|eot_id|>",
    pad="<|finetune_right_pad_id|>",
    extra_special=("<|start_header_id|>", "<|end_header_id|>"),
    template=(
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
        "{{ m['content'] }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
)
GEMMA = ChatFormat(
    bos="<bos>",
    eos="<end_of_turn>",
    pad="<pad>",
    extra_special=("<start_of_turn>", "<eos>"),
    template=GEMMA3_CHAT_TEMPLATE,
)
PHI3 = ChatFormat(
    bos=None,
    eos="<|end|>",
    pad="<|endoftext|>",
    extra_special=("<|system|>", "<|user|>", "<|assistant|>"),
    template=(
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    ),
)
OLMO2 = ChatFormat(
    bos="<|endoftext|>",
    eos="<|endoftext|>",
    pad="<|pad|>",
    extra_special=("<|system|>", "<|user|>", "<|assistant|>"),
    template=(
        "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n"
        "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    ),
)

# transformers model_type of each supported architecture, and its chat format.
ARCHITECTURES: dict[str, tuple[str, ChatFormat]] = {
    "qwen2": ("qwen2", CHATML),
    "qwen3": ("qwen3", CHATML),
    "llama": ("llama", LLAMA3),
    "olmo2": ("olmo2", OLMO2),
    "phi3": ("phi3", PHI3),
    "gemma": ("gemma", GEMMA),
    "gemma3": ("gemma3_text", GEMMA),
}

VOCAB_SIZE = 1024


def _training_corpus() -> list[str]:
    """Text the tokenizer is trained on: the shipped taxonomy and the first question bank, so it is
    the same on every machine and tokenises bank questions compactly. v1 stays the corpus whatever
    the default bank: the tiny models, and every result computed with them, do not change."""
    lines = []
    for name in ("akb_taxonomy.yaml", "banks/akb-v1.jsonl"):
        path = DATA_DIR / name
        if path.is_file():
            lines += path.read_text(encoding="utf-8").splitlines()
    return lines or ["auditory knowledge of language models"]


@lru_cache(maxsize=None)
def _base_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_corpus(), trainer=trainer)
    return tokenizer


def build_tokenizer(chat: ChatFormat) -> PreTrainedTokenizerFast:
    specials = [t for t in (chat.bos, chat.eos, chat.pad, *chat.extra_special) if t]
    backend = Tokenizer.from_str(_base_tokenizer().to_str())  # a copy: specials differ per family
    backend.add_special_tokens(list(dict.fromkeys(specials)))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=chat.bos,
        eos_token=chat.eos,
        pad_token=chat.pad,
        chat_template=chat.template,
    )


def build_tiny_model(architecture: str, seed: int = 0):
    """(model, tokenizer) for a named architecture, identical for identical seeds."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown tiny architecture {architecture!r}; one of {sorted(ARCHITECTURES)}")
    model_type, chat = ARCHITECTURES[architecture]
    tokenizer = build_tokenizer(chat)
    ids = {
        "bos_token_id": tokenizer.bos_token_id if chat.bos else None,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        **ids,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = ids["eos_token_id"]
    model.generation_config.pad_token_id = ids["pad_token_id"]
    return model, tokenizer
