"""Causal LMs through transformers: hub ids, local directories, and in-memory models."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from akb.io import read_json_object
from akb.models.base import Continuation, LanguageModel, ModelSpec, looks_like_path

try:
    from huggingface_hub.errors import StrictDataclassError
except ImportError:  # older huggingface_hub: configs are not validated dataclasses there
    StrictDataclassError = ValueError

log = logging.getLogger(__name__)
# What transformers raises for a checkpoint it cannot load: unknown id, gated repo, offline, missing
# dir, malformed id, a config whose fields contradict each other (num_hidden_layers vs layer_types).
LOAD_ERRORS = (OSError, ValueError, StrictDataclassError)


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


def device_map_for(spec: ModelSpec) -> str | None:
    """accelerate's placement of the weights: the entry's `device_map` when it sets one, else `auto`
    when its jobs are given more than one GPU (the entry declares a model too big for one), else
    None: the whole model on one device, as `device` says."""
    if spec.device_map:
        return spec.device_map
    return "auto" if spec.gpus > 1 else None


def gpu_indices(max_memory: dict | None) -> dict | None:
    """accelerate wants GPU keys as ints; YAML and JSON give "0"."""
    if max_memory is None:
        return None
    return {int(k) if str(k).isdigit() else k: v for k, v in max_memory.items()}


def check_model_folder(source: str, owner: str) -> None:
    """A local model folder's damage as one error naming the folder or file, before transformers
    reads it: its own errors here mislead ("Repo id must be in the form..." for a missing folder,
    "Should have a `model_type` key" for a missing config.json) or escape as tracebacks (a
    truncated .safetensors file, a config.json that is a list). A hub id passes untouched.
    `owner` says whose folder it is in the message ("model qwen3-8b")."""
    path = Path(source).expanduser()
    if not path.exists():
        if looks_like_path(source):
            raise FileNotFoundError(f"{owner}: model folder {source} does not exist")
        return
    if not path.is_dir():
        raise FileNotFoundError(f"{owner}: {source} is not a folder (a model folder holds config.json and weights)")
    config = path / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{owner}: {config} not found: {source} is not a transformers model folder")
    try:
        content = read_json_object(config)
    except ValueError as e:
        raise ValueError(f"{owner}: {e}") from None
    _check_model_type(content, config, owner)
    _check_safetensors(path, owner)


def _check_model_type(content: dict, config: Path, owner: str) -> None:
    """A model_type this transformers does not know, said in one line (transformers' own message
    runs to a paragraph). A config with `auto_map` brings its own code (trust_remote_code)."""
    import transformers
    from transformers import CONFIG_MAPPING

    model_type = content.get("model_type")
    if model_type is not None and model_type not in CONFIG_MAPPING and "auto_map" not in content:
        raise ValueError(f"{owner}: {config}: model_type {model_type!r} is unknown to transformers "
                         f"{transformers.__version__} (a newer release may know it)")


def _check_safetensors(folder: Path, owner: str) -> None:
    """Each .safetensors file's header read (milliseconds: the tensors are not): a cut-off download
    or a file that is not safetensors at all is named before loading starts."""
    from safetensors import SafetensorError, safe_open

    for weights in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(weights, framework="pt"):
                pass
        except (SafetensorError, OSError) as e:
            raise ValueError(f"{owner}: {weights}: damaged or truncated weights file ({e})") from None


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


def load_tokenizer(spec: ModelSpec, source: str):
    folder = Path(source).expanduser()
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        # transformers would build an empty tokenizer and the first prompt would fail far away.
        raise FileNotFoundError(f"model {spec.name}: {source} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)})")
    try:
        return AutoTokenizer.from_pretrained(source, revision=spec.revision, trust_remote_code=spec.trust_remote_code)
    except LOAD_ERRORS as e:
        raise FileNotFoundError(f"model {spec.name}: cannot load {source!r}: {e}") from e


def stop_token_ids(generation_config: GenerationConfig | None, tokenizer) -> list[int]:
    """End-of-turn ids a greedy generation stops at: the checkpoint's generation config (chat models
    list several), else the tokenizer's end-of-sequence token. Both generation backends use it."""
    eos = generation_config.eos_token_id if generation_config is not None else None
    eos = eos if eos is not None else tokenizer.eos_token_id
    return [eos] if isinstance(eos, int) else list(eos)


class ChatPrompts:
    """Prompts and their token ids from a Hugging Face tokenizer and its chat template. The
    transformers and vLLM backends share it, so both feed a model exactly the same tokens."""

    def __init__(self, spec: ModelSpec, tokenizer):
        self.spec = spec
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:  # many causal LMs ship without one; masks make it inert
            tokenizer.pad_token = tokenizer.eos_token
        self.templated = spec.chat.use_template and bool(tokenizer.chat_template)

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


class HFCausalLM(ChatPrompts, LanguageModel):
    def __init__(self, spec: ModelSpec, model, tokenizer, device: torch.device | None = None):
        super().__init__(spec, tokenizer)
        if getattr(model, "hf_device_map", None) is None:  # accelerate placed a device-mapped model itself
            model = model.to(device or next(model.parameters()).device)
        self.model = model.eval()
        # Where input ids go: the embedding's device, which is not the last layer's once sharded.
        self.device = model.get_input_embeddings().weight.device

    @classmethod
    def from_pretrained(cls, spec: ModelSpec, path: str | None = None) -> HFCausalLM:
        source = path or spec.source
        device = pick_device(spec.device)
        dtype = pick_dtype(spec.dtype, device)
        placement = {}
        if device_map := device_map_for(spec):
            placement = {"device_map": device_map, "max_memory": gpu_indices(spec.max_memory),
                         "offload_folder": spec.offload_folder}
        where = f"device_map={device_map}" if placement else device
        log.info("loading %s from %s (%s on %s)", spec.name, source, dtype, where)
        tokenizer = load_tokenizer(spec, source)
        # `path`: a directory this workflow converted (packaged), so safetensors only; True would
        # refuse a user's .bin-only checkpoint, which transformers reads with torch's weights_only anyway.
        own = {"use_safetensors": True} if path else {}
        try:
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype, revision=spec.revision, trust_remote_code=spec.trust_remote_code, **placement,
                **own,
            )
        except LOAD_ERRORS as e:
            raise FileNotFoundError(f"model {spec.name}: cannot load {source!r}: {e}") from e
        except RuntimeError as e:  # weights whose shapes the config.json contradicts; others (OOM) propagate
            if not any(sign in str(e) for sign in ("size mismatch", "ignore_mismatched_sizes")):
                raise
            raise ValueError(f"model {spec.name}: {source}: the weights do not fit its config.json "
                             "(tensor shapes differ; transformers' loading report above lists them)") from None
        if placement:
            log.info("%s placed by accelerate: %s", spec.name, getattr(model, "hf_device_map", None))
        return cls(spec, model, tokenizer, device)

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
        # Logits come from the last layer's device once sharded: bring these few back to the inputs'.
        first_token = out.logits[:, -1].float().log_softmax(-1).to(self.device)  # predicts each first token
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
        ).logits.to(self.device)
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
            eos_token_id=stop_token_ids(self.model.generation_config, self.tokenizer),
        )
        output = self.model.generate(**batch, generation_config=config)
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
