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
        except (OSError, ValueError) as e:  # unknown id, gated repo, offline, missing dir, malformed id
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

    def encode(self, text: str) -> list[int]:
        # A chat template writes its own BOS; plain prompts get the tokenizer's special tokens.
        return self.tokenizer(text, add_special_tokens=not self.templated)["input_ids"]

    def token_length(self, text: str) -> int:
        return len(self.encode(text))

    def _pad(self, rows: list[list[int]], left: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Token rows padded to one width, and their attention mask, on the model's device."""
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            span = slice(width - len(row), width) if left else slice(0, len(row))
            ids[i, span] = torch.tensor(row)
            mask[i, span] = 1
        return ids.to(self.device), mask.to(self.device)

    @torch.inference_mode()
    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[Continuation]:
        # Context and continuation are tokenised separately and concatenated, so the continuation's
        # tokens are known exactly (no re-tokenising the joined string to find the boundary).
        # Requests that share a context (the options of one question) run it once: its key/value
        # cache is copied to each continuation, which then computes only its own few tokens.
        contexts = list(dict.fromkeys(ctx for ctx, _ in requests))
        context_row = {ctx: i for i, ctx in enumerate(contexts)}
        continuations = [self.tokenizer(cont, add_special_tokens=False)["input_ids"] for _, cont in requests]
        if not all(continuations):
            raise ValueError("an empty continuation has no likelihood to compare")

        ctx_ids, ctx_mask = self._pad([self.encode(c) for c in contexts], left=True)
        # Left padding shifts the real tokens; explicit position ids keep their true positions.
        out = self.model(
            input_ids=ctx_ids,
            attention_mask=ctx_mask,
            position_ids=(ctx_mask.cumsum(-1) - 1).clamp(min=0),
            use_cache=True,
            logits_to_keep=1,
        )
        first_token = out.logits[:, -1].float().log_softmax(-1)  # predicts each continuation's first token
        rows = torch.tensor([context_row[ctx] for ctx, _ in requests], device=self.device)
        cache = out.past_key_values
        cache.reorder_cache(rows)  # one copy of its context's cache per request

        cont_ids, cont_mask = self._pad(continuations, left=False)
        positions = ctx_mask.sum(-1)[rows, None] + torch.arange(cont_ids.shape[1], device=self.device)
        logits = self.model(
            input_ids=cont_ids,
            attention_mask=torch.cat([ctx_mask[rows], cont_mask], dim=1),
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        ).logits
        results = []
        for i, ((_, text), tokens) in enumerate(zip(requests, continuations)):
            target = torch.tensor(tokens, device=self.device)
            later = logits[i, : len(tokens) - 1].float().log_softmax(-1)  # token t+1 is predicted at t
            logprob = first_token[rows[i], tokens[0]] + later.gather(-1, target[1:, None]).sum()
            results.append(Continuation(logprob.item(), len(tokens), len(text.strip().encode())))
        return results

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
