"""The Q-Former connector: learned queries read each tapped encoder layer, a per-query softmax over
taps fuses them, and a LayerNorm + Linear maps the result to the LLM width."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel

from akb.lalm.config import LALMConfig


def qformer_config(config: LALMConfig, encoder_width: int) -> Blip2QFormerConfig:
    """A BERT-style Q-Former with cross-attention to the encoder in every layer. BLIP-2's Q-Former
    builds a bidirectional mask for its queries, where DeSTA's BertEncoder(is_decoder=True) made
    them causal: each query should see all the others."""
    return Blip2QFormerConfig(
        hidden_size=config.qformer_hidden_size,
        num_hidden_layers=config.qformer_layers,
        num_attention_heads=config.qformer_heads,
        intermediate_size=config.qformer_intermediate_size,
        hidden_dropout_prob=config.qformer_dropout,
        attention_probs_dropout_prob=config.qformer_dropout,
        cross_attention_frequency=1,
        encoder_hidden_size=encoder_width,
        layer_norm_eps=1e-12,
    )


class QFormerConnector(nn.Module):
    """One shared Q-Former, its own query set per tap; [batch, queries, llm_hidden] out."""

    def __init__(self, config: LALMConfig, encoder_width: int, llm_width: int):
        super().__init__()
        qconfig = qformer_config(config, encoder_width)
        self.qformer = Blip2QFormerModel(qconfig)
        width = config.qformer_hidden_size
        shape = (config.n_taps, config.queries_per_tap, width)
        self.queries = nn.Parameter(torch.randn(shape) * qconfig.initializer_range)
        # Zeros: every query starts with an even mix of the taps and learns its own.
        self.tap_weights = nn.Parameter(torch.zeros(config.n_taps, config.queries_per_tap))
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, llm_width)

    def fusion_weights(self) -> torch.Tensor:
        """[taps, queries]: each query's softmax over the taps."""
        return self.tap_weights.softmax(dim=0)

    def per_tap(self, states: Sequence[torch.Tensor]) -> torch.Tensor:
        """[taps, batch, queries, width]: the Q-Former output for each tap's queries and states.

        The taps run as one batch through the shared Q-Former (tap-major rows)."""
        n_taps, batch = len(states), states[0].shape[0]
        if n_taps != self.queries.shape[0]:
            raise ValueError(f"{n_taps} tapped layers for {self.queries.shape[0]} query sets")
        dtype = self.queries.dtype
        encoder_states = torch.cat([s.to(dtype) for s in states])  # [taps * batch, positions, d]
        queries = self.queries[:, None].expand(-1, batch, -1, -1).reshape(n_taps * batch, *self.queries.shape[1:])
        out = self.qformer(query_embeds=queries, encoder_hidden_states=encoder_states).last_hidden_state
        return out.view(n_taps, batch, *out.shape[1:])

    def forward(self, states: Sequence[torch.Tensor]) -> torch.Tensor:
        per_tap = self.per_tap(states)
        fused = (per_tap * self.fusion_weights()[:, None, :, None]).sum(dim=0)
        return self.proj(self.norm(fused))
