"""Causal LMs through transformers: hub ids, local directories, and in-memory models."""

from __future__ import annotations

import logging

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from akb.models.base import Continuation, LanguageModel, ModelSpec

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> torch.device:
    if requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    """bf16 on GPUs that support it (fp16 on older ones), fp32 on CPU, unless the entry says otherwise."""
    if requested != "auto":
        return getattr(torch, requested)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


class HFCausalLM(LanguageModel):
    def __init__(self, spec: ModelSpec, model, tokenizer, device: torch.device | None = None):
        self.spec = spec
        self.device = device or next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:  # many causal LMs ship without one; masks make it inert
            tokenizer.pad_token = tokenizer.eos_token
        self.templated = spec.chat.use_template and bool(tokenizer.chat_template)

    @classmethod
    def from_pretrained(cls, spec: ModelSpec, path: str | None = None) -> HFCausalLM:
        source = path or spec.source
        device = pick_device(spec.device)
        dtype = pick_dtype(spec.dtype, device)
        log.info("loading %s from %s (%s on %s)", spec.name, source, dtype, device)
        common = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **common)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **common)
        except OSError as e:  # unknown id, gated repo, offline without a cached copy, missing dir
            raise FileNotFoundError(f"model {spec.name}: cannot load {source!r}: {e}") from e
        return cls(spec, model, tokenizer, device)

    def prompt(self, user_text: str) -> str:
        if not self.templated:
            return user_text
        messages = [{"role": "user", "content": user_text}]
        if self.spec.chat.system_prompt:
            messages.insert(0, {"role": "system", "content": self.spec.chat.system_prompt})
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **self.spec.chat.template_arguments()
        )

    def continuation(self, text: str) -> str:
        return text if self.templated else f" {text}"

    def _encode(self, text: str) -> list[int]:
        # A chat template writes its own BOS; plain prompts get the tokenizer's special tokens.
        return self.tokenizer(text, add_special_tokens=not self.templated)["input_ids"]

    def token_length(self, text: str) -> int:
        return len(self._encode(text))

    @torch.inference_mode()
    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[Continuation]:
        # Context and continuation are tokenised separately and concatenated, so the continuation's
        # tokens are known exactly (no re-tokenising the joined string to find the boundary).
        pairs = [
            (self._encode(ctx), self.tokenizer(cont, add_special_tokens=False)["input_ids"])
            for ctx, cont in requests
        ]
        width = max(len(c) + len(x) for c, x in pairs)
        input_ids = torch.full((len(pairs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, (ctx, cont) in enumerate(pairs):
            ids = ctx + cont
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
        # Only positions that predict a continuation token need logits: with large vocabularies
        # (Gemma: 262k) the output projection otherwise dominates the cost of the forward pass.
        needed = sorted({p for ctx, cont in pairs for p in range(len(ctx) - 1, len(ctx) + len(cont) - 1)})
        logits = self._logits_at(input_ids, attention, needed)
        column = {position: j for j, position in enumerate(needed)}
        results = []
        for row, ((ctx, cont), (_, text)) in enumerate(zip(pairs, requests)):
            # Token t is predicted by the logits at position t - 1.
            columns = [column[p] for p in range(len(ctx) - 1, len(ctx) + len(cont) - 1)]
            span = logits[row, columns].float().log_softmax(-1)
            target = torch.tensor(cont, device=span.device)
            logprob = span.gather(-1, target[:, None]).sum().item()
            results.append(Continuation(logprob, len(cont), len(text.strip().encode())))
        return results

    def _logits_at(self, input_ids: torch.Tensor, attention: torch.Tensor, positions: list[int]) -> torch.Tensor:
        """Logits at `positions` only, for every row: shape (batch, len(positions), vocab)."""
        inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention.to(self.device)}
        keep = torch.tensor(positions, device=self.device)
        try:
            logits = self.model(**inputs, logits_to_keep=keep).logits
        except TypeError:  # remote-code models without `logits_to_keep`
            logits = self.model(**inputs).logits
        # A model that ignores the argument returns every position: select them here instead.
        return logits if logits.shape[1] == len(positions) else logits[:, keep]

    @torch.inference_mode()
    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        self.tokenizer.padding_side = "left"  # new tokens must follow the last real token
        batch = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=not self.templated
        ).to(self.device)
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id,
        )
        output = self.model.generate(**batch, generation_config=config)
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
