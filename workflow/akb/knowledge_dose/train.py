"""LoRA continued training of a backbone on a variant's corpus rows, merged into a plain
transformers folder that every stage then loads like any model (backend hf)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from akb.knowledge_dose.corpus import CorpusRow, training_text

log = logging.getLogger(__name__)
MANIFEST = "knowledge_dose.json"


def _batches(texts: list[str], batch_size: int, generator) -> list[list[str]]:
    """Shuffled batches of rows of similar length (less padding to compute): rows are shuffled,
    sorted by length within windows of 8 batches, cut into batches, and the batches shuffled."""
    import torch

    order = torch.randperm(len(texts), generator=generator).tolist()
    window = 8 * batch_size
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(texts[i]))
        batches += [[texts[i] for i in chunk[b:b + batch_size]] for b in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _encode(tokenizer, texts: list[str], max_length: int):
    """Right-padded ids with the end-of-text token closing each row (so a fact is learnt as a whole
    statement), and labels that ignore the padding."""
    eos = tokenizer.eos_token or ""
    batch = tokenizer([t if t.endswith(eos) else t + eos for t in texts], return_tensors="pt", padding=True,
                      truncation=True, max_length=max_length, add_special_tokens=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return batch, labels


def train_dosed_backbone(entry: dict[str, Any], rows: list[CorpusRow], lora: dict[str, Any], seed: int,
                         out: str | Path, describe: dict[str, Any]) -> dict[str, Any]:
    """Train LoRA adapters of the backbone `entry` on `rows` for lora.epochs passes, merge them and
    write the model, its tokenizer and a manifest to `out` (whole or not at all: it is built under
    a temporary name and renamed when complete). Returns the manifest."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    from akb.models import ModelSpec, load_model

    if not rows:
        raise ValueError(f"{describe.get('variant')}: no corpus rows to train on (dose 0 is the backbone itself)")
    torch.manual_seed(seed)
    lm = load_model(ModelSpec.from_config(entry))
    if not hasattr(lm, "model") or not hasattr(lm, "tokenizer"):
        raise ValueError(f"model {entry['name']}: backend {entry['backend']!r} has no weights to train")
    tokenizer, model = lm.tokenizer, lm.model
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "right"
    texts = [training_text(r) for r in rows]
    model = get_peft_model(model, LoraConfig(
        r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], target_modules=lora["target_modules"],
        task_type="CAUSAL_LM", bias="none"))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lora["lr"])
    generator = torch.Generator().manual_seed(seed)
    steps = lora["epochs"] * -(-len(texts) // lora["batch_size"])
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, steps // 10), steps)
    device = next(model.parameters()).device
    losses, progress = [], tqdm(total=steps, desc=f"dose {describe.get('variant')}", unit="step")
    for epoch in range(lora["epochs"]):
        epoch_losses = []
        for texts_batch in _batches(texts, lora["batch_size"], generator):
            batch, labels = _encode(tokenizer, texts_batch, lora["max_length"])
            loss = model(**{k: v.to(device) for k, v in batch.items()}, labels=labels.to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step(), scheduler.step(), optimizer.zero_grad()
            epoch_losses.append(loss.item())
            progress.update(), progress.set_postfix(loss=f"{loss.item():.3f}")
        losses.append(sum(epoch_losses) / len(epoch_losses))
        log.info("epoch %d: mean loss %.4f", epoch + 1, losses[-1])
    progress.close()
    merged = model.merge_and_unload().eval()
    manifest = {**describe, "rows": len(rows), "steps": steps, "epoch_loss": losses, "lora": lora, "seed": seed,
                "row_ids": [r.id for r in rows]}
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    merged.save_pretrained(partial, safe_serialization=True)
    tokenizer.padding_side = padding_side  # saved as it was loaded
    tokenizer.save_pretrained(partial)
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return manifest


def train_variant(corpus: str, entry: dict[str, Any], variant: str, dose: int | None, seed: int,
                  lora: dict[str, Any], out: str | Path) -> dict[str, Any]:
    """One variant's backbone: `dose` percent of the corpus's training facts (None: the control
    corpus, as many rows as the full dose), drawn by `seed`, trained into the backbone `entry`."""
    from akb.knowledge_dose.corpus import control_rows, corpus_dir, dose_rows, load_corpus

    rows = load_corpus(corpus_dir(corpus))
    chosen = control_rows(rows, seed) if dose is None else dose_rows(rows, dose, seed)
    log.info("%s: %d corpus rows (%s)", variant, len(chosen), "control" if dose is None else f"{dose}% of the facts")
    describe = {"variant": variant, "backbone": entry["name"], "dose": dose, "control": dose is None}
    return train_dosed_backbone(entry, chosen, lora, seed, out, describe)
