"""DeSTA2.5-style audio LLMs: a frozen Whisper encoder, a Q-Former connector and a frozen chat LLM.

config: the recipe (LALMConfig, default_taps); encoder: Whisper loading, window cutting, features;
connector: the Q-Former; processor: prompts, labels and batches for any chat template;
vad: Silero voice activity, which may gate the Whisper transcripts (akb.lalm.transcripts);
model: the LALM module, its training loss, greedy generation and trainable-only checkpoints."""

from __future__ import annotations

from akb.lalm.config import LALMConfig, LoRASettings, default_taps, lora_target_names
from akb.lalm.connector import QFormerConnector
from akb.lalm.encoder import cut_window, load_whisper_encoder, tapped_states
from akb.lalm.model import LALM, CheckpointError, read_config
from akb.lalm.processor import IGNORE, LALMBatch, LALMItem, LALMProcessor

__all__ = [
    "IGNORE",
    "LALM",
    "CheckpointError",
    "LALMBatch",
    "LALMConfig",
    "LALMItem",
    "LALMProcessor",
    "LoRASettings",
    "QFormerConnector",
    "cut_window",
    "default_taps",
    "load_whisper_encoder",
    "lora_target_names",
    "read_config",
    "tapped_states",
]
