"""The audio LLM: frozen Whisper encoder -> Q-Former connector -> frozen backbone LLM (optional LoRA).

Only the connector (and LoRA) train, and only they are saved: a checkpoint is a safetensors file
of those weights plus the resolved JSON config, loaded strictly onto the same encoder and backbone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import GenerationConfig

from akb.io import read_json_object
from akb.lalm.config import LALMConfig
from akb.lalm.connector import QFormerConnector
from akb.lalm.encoder import load_whisper_encoder, tapped_states
from akb.lalm.processor import LALMBatch, LALMItem, LALMProcessor
from akb.models.base import ChatOptions

WEIGHTS_FILE = "lalm.safetensors"
CONFIG_FILE = "lalm_config.json"


class CheckpointError(ValueError):
    """A trainable-weights checkpoint that does not fit the model; the message says how."""


class LALM(nn.Module):
    """DeSTA2.5-style audio LLM over any chat backbone.

    whisper: a Whisper model, encoder or directory (see load_whisper_encoder; cut and frozen in
    place). llm, tokenizer: a causal LM and its tokenizer with a chat template; the LLM is frozen
    (and wrapped with LoRA when config.lora is set). chat: system prompt and template arguments."""

    def __init__(self, config: LALMConfig, whisper, llm, tokenizer, chat: ChatOptions | None = None):
        super().__init__()
        self.encoder = load_whisper_encoder(whisper, config.window_seconds)
        self.config = config = config.resolve(self.encoder.config, llm)
        llm.requires_grad_(False)
        if config.lora is not None:
            llm = _with_lora(llm, config)
        self.llm = llm
        self.tokenizer = tokenizer
        self.processor = LALMProcessor(tokenizer, config, chat, self.encoder.config.num_mel_bins)
        llm_width = llm.get_input_embeddings().weight.shape[1]
        self.connector = QFormerConnector(config, self.encoder.config.d_model, llm_width)
        self.connector.to(llm.get_input_embeddings().weight.device)  # its vectors join the embeddings there
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(self.is_trainable(name))
        self.train(False)

    # ---- parameters ----

    def is_trainable(self, name: str) -> bool:
        """The connector, and the LoRA adapters when there are any; the encoder and backbone stay frozen."""
        return name.startswith("connector.") or (self.config.lora is not None and ".lora_" in name)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.named_parameters() if self.is_trainable(n)}

    def train(self, mode: bool = True) -> LALM:
        """Train mode for the connector (and LoRA); the frozen encoder always runs in eval mode, and
        so does a backbone without LoRA (its dropout would only add noise to a fixed function)."""
        super().train(mode)
        self.encoder.eval()
        if self.config.lora is None:
            self.llm.eval()
        return self

    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    # ---- forward ----

    def audio_vectors(self, features: torch.Tensor) -> torch.Tensor:
        """[clips, queries_per_tap, llm width] for log-mel features of a window each."""
        return self.connector(tapped_states(self.encoder, features, self.config.taps, self.config.last_tap))

    def embed(self, batch: LALMBatch, audio: torch.Tensor | None = None) -> torch.Tensor:
        """inputs_embeds: the LLM's embeddings of the token ids, with the audio vectors written over
        the audio positions (row-major: each clip's queries in order, clips in batch order).
        `audio`: those vectors when already computed (e.g. once per clip shared by several rows)."""
        embeds = self.llm.get_input_embeddings()(batch.input_ids)
        if batch.input_features is None:
            return embeds
        if audio is None:
            audio = self.audio_vectors(batch.input_features)
        audio = audio.to(embeds.dtype)
        if audio.shape[0] * audio.shape[1] != int(batch.audio_mask.sum()):
            raise ValueError("audio positions and audio vectors differ in number")
        return embeds.masked_scatter(batch.audio_mask[..., None], audio)

    def forward(self, batch: LALMBatch):
        """The backbone's output on a training batch (from `processor(items, train=True)`), with
        `.loss` over the response and end-of-turn tokens."""
        batch = batch.to(self.device)
        return self.llm(inputs_embeds=self.embed(batch), attention_mask=batch.attention_mask, labels=batch.labels)

    def loss(self, items: Sequence[LALMItem]) -> torch.Tensor:
        return self(self.processor(items, train=True)).loss

    @torch.inference_mode()
    def generate_ids(self, items: Sequence[LALMItem], max_new_tokens: int = 128) -> list[list[int]]:
        """Greedy new token ids, one list per item, up to and including a stop token."""
        batch = self.processor(items, train=False).to(self.device)
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.processor.pad_id,
            eos_token_id=self.processor.stop_ids,
        )
        # With only inputs_embeds (no input_ids), generate returns the new tokens alone.
        output = self.llm.generate(inputs_embeds=self.embed(batch), attention_mask=batch.attention_mask,
                                   generation_config=config)
        rows = []
        for row in output.tolist():  # finished rows are padded: cut after their first stop token
            stop = next((i for i, t in enumerate(row) if t in self.processor.stop_ids), len(row) - 1)
            rows.append(row[: stop + 1])
        return rows

    def generate(self, items: Sequence[LALMItem], max_new_tokens: int = 128) -> list[str]:
        """Greedy answers, one per item, without the prompt."""
        rows = self.generate_ids(items, max_new_tokens)
        return [t.strip() for t in self.tokenizer.batch_decode(rows, skip_special_tokens=True)]

    # ---- checkpoints ----

    def save_trainable(self, directory: str | Path) -> Path:
        """Write the trainable weights and the resolved config into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {n: t.contiguous().cpu() for n, t in self.trainable_state_dict().items()}
        save_file(state, directory / WEIGHTS_FILE)
        (directory / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        return directory

    def load_trainable(self, directory: str | Path) -> None:
        """Load weights written by `save_trainable`; the config must match and the keys exactly."""
        directory = Path(directory)
        saved = read_config(directory)
        if replace(saved, extra={}) != replace(self.config, extra={}):
            mine, theirs = self.config.to_dict(), saved.to_dict()
            diff = {k: (theirs[k], mine[k]) for k in mine if k != "extra" and mine[k] != theirs[k]}
            raise CheckpointError(f"{directory}: saved config differs from the model's (saved, model): {diff}")
        self.load_trainable_state(_read_weights(directory / WEIGHTS_FILE), source=str(directory))

    def load_trainable_state(self, state: dict[str, torch.Tensor], source: str = "state") -> None:
        """Copy trainable weights in, strictly: any missing or unexpected key is an error naming it."""
        params = {n: p for n, p in self.named_parameters() if self.is_trainable(n)}
        missing, unexpected = sorted(params.keys() - state.keys()), sorted(state.keys() - params.keys())
        if missing or unexpected:
            raise CheckpointError(f"{source}: missing keys {missing}; unexpected keys {unexpected}")
        wrong = [n for n in params if params[n].shape != state[n].shape]
        if wrong:
            raise CheckpointError(f"{source}: shape mismatch for {wrong}")
        with torch.no_grad():
            for name, parameter in params.items():
                parameter.copy_(state[name])

    @classmethod
    def from_checkpoint(
        cls, directory: str | Path, whisper, llm, tokenizer, chat: ChatOptions | None = None
    ) -> LALM:
        """The model a `save_trainable` directory describes, on the given encoder and backbone."""
        model = cls(read_config(directory), whisper, llm, tokenizer, chat)
        model.load_trainable(directory)
        return model


def read_config(directory: str | Path) -> LALMConfig:
    """The recipe a checkpoint was trained with; a missing or unreadable one is a CheckpointError
    naming the folder or file (not a JSON traceback)."""
    path = Path(directory) / CONFIG_FILE
    if not Path(directory).is_dir():
        raise CheckpointError(f"{directory}: checkpoint folder does not exist")
    if not path.is_file():
        raise CheckpointError(f"{directory}: not an audio LLM checkpoint ({CONFIG_FILE} missing)")
    try:
        data = read_json_object(path)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    try:
        return LALMConfig.from_dict(data)
    except (TypeError, ValueError) as e:  # unknown keys, or values of the wrong kind
        raise CheckpointError(f"{path}: {e}") from None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError

    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:  # a cut-off copy, or no weights file beside the config
        raise CheckpointError(f"{path}: damaged, truncated or missing weights file ({e})") from None


def _with_lora(llm, config: LALMConfig):
    """The backbone wrapped by peft; its base weights stay frozen, the adapters train."""
    from peft import LoraConfig, get_peft_model

    lora = config.lora
    return get_peft_model(llm, LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    ))
