"""Model declarations and the one small interface every backend implements."""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from akb.registry import Registry

# Backend name -> loader(spec, packaged_root, generation_only) -> LanguageModel; one module each in
# akb/models/backends/, registered with `@register("name")` (akb.models.register).
MODEL_BACKENDS = Registry("model", "backend", "akb.models.backends")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def looks_like_path(source: str) -> bool:
    """A model `source` meant as a folder: hub ids are `name` or `org/name`; anything else is a path."""
    return (source.startswith(("/", ".", "~", "resources/")) or source.count("/") > 1
            or (os.sep != "/" and os.sep in source))


@dataclass(frozen=True)
class ChatOptions:
    use_template: bool = True  # wrap prompts in the tokenizer's chat template when it has one
    system_prompt: str | None = None
    thinking: bool | None = None  # Qwen3-style `enable_thinking`; None leaves the template's default
    template_kwargs: dict[str, Any] = field(default_factory=dict)

    def template_arguments(self) -> dict[str, Any]:
        kwargs = dict(self.template_kwargs)
        if self.thinking is not None:
            kwargs["enable_thinking"] = self.thinking
        return kwargs


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the config's `models` list (defaults live in the config schema)."""

    name: str  # path-safe: used in result paths
    backend: str
    source: str  # hub id or local dir (hf), architecture (tiny), package model name (packaged)
    family: str = ""
    display_name: str = ""
    group: str = "open"
    dtype: str = "auto"
    device: str = "auto"
    revision: str | None = None
    trust_remote_code: bool = False
    seed: int = 0
    # Weights across devices (accelerate): see akb.models.hf.device_map_for for when it applies.
    device_map: str | None = None
    max_memory: dict[str, str] | None = None
    offload_folder: str | None = None
    # Who generates in generate-only jobs: see akb.models.vllm_backend.choose_generation_backend.
    generation_backend: str = "auto"
    vllm: dict[str, Any] = field(default_factory=dict)  # extra arguments of vllm.LLM(...)
    chat: ChatOptions = field(default_factory=ChatOptions)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, entry: dict[str, Any], gpus: int | None = None) -> ModelSpec:
        """The spec of a models[] entry; `gpus`: the GPUs its job was given (`--gpus`), which the
        workflow passes apart from the entry (see with_gpus), over the entry's own resources.gpu."""
        entry = with_gpus(dict(entry), gpus)
        name = entry.get("name", "")
        if not SAFE_NAME.match(str(name)):
            raise ValueError(f"model name {name!r} is not path-safe (letters, digits, '.', '_', '-')")
        MODEL_BACKENDS.get(entry.get("backend"), f"model {name}")  # an unknown name fails here, naming the model
        chat = ChatOptions(**(entry.pop("chat", None) or {}))
        known = {f for f in cls.__dataclass_fields__ if f not in ("chat", "extra")}
        extra = {k: v for k, v in entry.items() if k not in known}
        return cls(chat=chat, extra=extra, **{k: v for k, v in entry.items() if k in known})

    @property
    def label(self) -> str:
        return self.display_name or self.name

    def fingerprint(self) -> dict[str, Any]:
        """The fields a model's answers depend on, for the fingerprint of a resumable job
        (akb.io.PartialJsonl): not its labels, nor where it runs (device, memory, job resources),
        so moving a job to another GPU keeps its finished rows."""
        placement = {"display_name", "group", "family", "device", "device_map", "max_memory", "offload_folder"}
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in placement | {"chat", "extra"}}
        # Nor its batch size: a job rerun with a smaller one after running out of memory keeps its rows.
        extra = {k: v for k, v in self.extra.items() if k not in ("resources", "batch_size")}
        return {**fields, "chat": vars(self.chat), "extra": extra}

    @property
    def gpus(self) -> int:
        """GPUs its jobs are given (`resources.gpu`), so a model can be spread over all of them."""
        return int((self.extra.get("resources") or {}).get("gpu", 0))


def with_gpus(entry: dict[str, Any], gpus: int | None) -> dict[str, Any]:
    """A model entry with the GPUs its job was given, as ModelSpec.gpus reads them; None keeps the
    entry's own. The workflow passes the rule's resources.gpu as `--gpus` and keeps `resources` out
    of the entry (akb.config.job_settings): changing them reruns no finished job."""
    if gpus is None:
        return entry
    return {**entry, "resources": {**(entry.get("resources") or {}), "gpu": gpus}}


@dataclass(frozen=True)
class Continuation:
    """Log-probability of a continuation given its context, and the sizes used to normalise it."""

    logprob: float
    n_tokens: int
    n_bytes: int


class LanguageModel(ABC):
    """What the stages need from a text LLM. Each call processes exactly one batch: callers decide
    batching and order (sorted by length, deterministic, so interrupted runs resume identically)."""

    spec: ModelSpec

    @abstractmethod
    def prompt(self, user_text: str) -> str:
        """The text of a one-turn conversation ending where the model's answer begins."""

    def item_prompt(self, item, user_text: str) -> str:
        """The prompt for one item: `prompt(user_text)` for text models; audio models (akb.lalm)
        return a prompt that also carries the item's clip."""
        return self.prompt(user_text)

    @abstractmethod
    def continuation(self, text: str) -> str:
        """How an answer text follows a `prompt` (e.g. a leading space after a plain prompt)."""

    @abstractmethod
    def token_length(self, text: str) -> int:
        """Tokens in `text` as the model would see it; used to sort requests by length."""

    @abstractmethod
    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[Continuation]:
        """log P(continuation | context) for each (context, continuation) pair of one batch."""

    @abstractmethod
    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """Greedy completions of one batch of prompts, without the prompt text."""
