"""Sentence embeddings for near-duplicate detection.

`all-minilm-l6-v2` (or any directory holding a transformers encoder, e.g. a sentence-transformers
checkpoint) is embedded the way sentence-transformers embeds all-MiniLM-L6-v2: mean of the last
hidden states over real tokens, then L2 normalisation, so a dot product is the cosine similarity.
`tfidf` needs no model: character 3-5-gram TF-IDF vectors (for quick checks and tests)."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

from akb.models import PACKAGED_ROOT

TFIDF = "tfidf"


class Embedder:
    name: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised row per text."""
        raise NotImplementedError


class EncoderEmbedder(Embedder):
    def __init__(self, path: str | Path, batch_size: int = 32, max_length: int = 256):
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        pooling = path / "1_Pooling" / "config.json"  # sentence-transformers layout: must be mean pooling
        if pooling.is_file() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False):
            raise ValueError(f"{path}: only mean-pooling sentence encoders are supported ({pooling})")
        self.name = path.name
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.batch_size, self.max_length = batch_size, max_length

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        rows = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start : start + self.batch_size], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
            with torch.no_grad():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            rows.append(torch.nn.functional.normalize(mean, dim=-1).float().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, 1), dtype=np.float32)


class CharNgramEmbedder(Embedder):
    """TF-IDF over character 3- to 5-grams of the lower-cased, space-normalised text; the
    vocabulary and document frequencies come from the texts of each call."""

    name = TFIDF

    @staticmethod
    def _grams(text: str) -> Counter:
        text = " " + " ".join(re.findall(r"\w+", text.lower())) + " "
        return Counter(text[i : i + n] for n in (3, 4, 5) for i in range(len(text) - n + 1))

    def embed(self, texts: list[str]) -> np.ndarray:
        counts = [self._grams(t) for t in texts]
        df = Counter(g for c in counts for g in c)
        vocab = {g: i for i, g in enumerate(sorted(df))}
        matrix = np.zeros((len(texts), max(len(vocab), 1)), dtype=np.float32)
        for row, c in enumerate(counts):
            for gram, tf in c.items():
                matrix[row, vocab[gram]] = (1 + math.log(tf)) * (math.log((1 + len(texts)) / (1 + df[gram])) + 1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1, norms)


def load_embedder(source: str, packaged_root: str | Path = PACKAGED_ROOT) -> Embedder:
    """`tfidf`, a packaged model name (resources/models/{name}), or a model directory."""
    if source == TFIDF:
        return CharNgramEmbedder()
    path = Path(packaged_root) / source
    if not (path / "config.json").is_file():
        path = Path(source)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"embedding model {source!r}: neither {Path(packaged_root) / source} nor {source} "
                                "is a model directory")
    return EncoderEmbedder(path)
