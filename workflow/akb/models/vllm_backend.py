"""Greedy generation through vLLM's offline engine, for jobs that only generate.

vLLM batches continuously and pages its key/value cache, so long generation jobs (probing and the
cascade in generate mode, self-distillation) run several times faster than transformers' `generate`
on a GPU. It is optional: used when the `vllm` package imports, a CUDA GPU is present and the model
entry allows it (`generation_backend`), otherwise transformers generates. Log-likelihoods always
come from transformers (this backend has none). Prompts are built by the same tokenizer and chat
template as the transformers backend and handed over as token ids, so both see identical inputs."""

from __future__ import annotations

import importlib.util
import logging

import torch
from transformers import GenerationConfig

from akb.models.base import Continuation, LanguageModel, ModelSpec
from akb.models.hf import ChatPrompts, load_tokenizer, pick_dtype, stop_token_ids

log = logging.getLogger(__name__)

GENERATION_BACKENDS = ("auto", "transformers", "vllm")


def vllm_unavailable() -> str | None:
    """Why vLLM cannot run here, or None when it can."""
    if importlib.util.find_spec("vllm") is None:
        return "the vllm package is not installed (pip install -e '.[vllm]')"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    return None


def choose_generation_backend(spec: ModelSpec, generation_only: bool) -> str:
    """`vllm` or `transformers` for one job, from the entry's `generation_backend`:
    auto: vLLM when it can run and the job only generates; transformers: always; vllm: vLLM for
    generate-only jobs, and an error when it cannot run (a silent fallback would hide a slow run).
    A job that needs log-likelihoods uses transformers whatever the setting."""
    requested = spec.generation_backend
    if requested not in GENERATION_BACKENDS:
        raise ValueError(f"model {spec.name}: generation_backend {requested!r} is not one of {GENERATION_BACKENDS}")
    if requested == "transformers":
        return "transformers"
    if not generation_only:
        log.info("%s: transformers (this job needs log-likelihoods or the weights, not only generations)", spec.name)
        return "transformers"
    reason = vllm_unavailable()
    if reason is None:
        log.info("%s: generating with vLLM", spec.name)
        return "vllm"
    if requested == "vllm":
        raise RuntimeError(f"model {spec.name}: generation_backend is vllm but {reason}")
    log.info("%s: generating with transformers (vLLM not used: %s)", spec.name, reason)
    return "transformers"


class VLLMCausalLM(ChatPrompts, LanguageModel):
    """`LanguageModel` whose `generate` runs on a vLLM engine (tensor-parallel over the job's GPUs)."""

    def __init__(self, spec: ModelSpec, engine, tokenizer, stop_ids: list[int]):
        super().__init__(spec, tokenizer)
        self.engine = engine
        self.stop_ids = stop_ids

    @classmethod
    def from_pretrained(cls, spec: ModelSpec, path: str | None = None) -> VLLMCausalLM:
        from vllm import LLM

        source = path or spec.source
        tokenizer = load_tokenizer(spec, source)
        try:
            generation_config = GenerationConfig.from_pretrained(source, revision=spec.revision)
        except OSError:  # a checkpoint without generation_config.json stops at the tokenizer's EOS
            generation_config = None
        # The dtype transformers would pick on this GPU, so both backends compute alike.
        dtype = str(pick_dtype(spec.dtype, torch.device("cuda"))).removeprefix("torch.")
        engine = LLM(model=source, tokenizer=source, revision=spec.revision, trust_remote_code=spec.trust_remote_code,
                     dtype=dtype, tensor_parallel_size=max(1, spec.gpus), seed=spec.seed, **spec.vllm)
        return cls(spec, engine, tokenizer, stop_token_ids(generation_config, tokenizer))

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop_token_ids=self.stop_ids,
                                skip_special_tokens=True)
        # Token ids, not text: vLLM would add the tokenizer's BOS again in front of a chat template's.
        requests = [{"prompt_token_ids": self.encode(p)} for p in prompts]
        outputs = self.engine.generate(requests, params, use_tqdm=False)
        return [out.outputs[0].text.strip() for out in outputs]

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[Continuation]:
        raise NotImplementedError(f"model {self.spec.name}: the vLLM backend only generates; "
                                  "log-likelihood jobs load the model with transformers")
