"""Self-distillation data (DeSTA2.5): the backbone answers prompts about a clip from its seed description.

Each training clip has a *seed description*, text written from its metadata (the synthetic suite's
`metadata.summary`, or a DeSTA-AQA5M-style `seed_description`). For each clip we sample prompts from a
configured set and the SAME backbone LLM, with the same chat template, system prompt and thinking mode
it will have inside the audio LLM, answers each prompt with the description in place of the audio.
Its answers are the training targets, so the audio LLM learns to treat audio as the backbone treats
the description, and the backbone's own style and knowledge are kept.

Seed files:
  * an MMAU-format JSON array with `metadata.summary` (the synthetic suite's train split); the
    clip's own question and options can be used as one more prompt (`item_questions`);
  * JSONL rows {"id", "audio", "seed_description"} (+ optional "prompt"), audio relative to
    `audio_root` -- the layout of DeSTA-AQA5M with a user's copy of its source audio.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from akb.io import PartialJsonl, read_jsonl
from akb.models.base import LanguageModel
from akb.probe import length_sorted_batches
from akb.prompts import with_description

# DeSTA-style open prompts: the model must say what is in the clip, in its own words.
DEFAULT_PROMPTS = (
    "Describe the audio.",
    "What can you hear in this audio clip?",
    "Summarise the audio in one sentence.",
    "Describe the sounds in this clip and their characteristics.",
)


@dataclass(frozen=True)
class Seed:
    clip_id: str
    audio: str  # path to the clip
    description: str
    prompts: tuple[str, ...] = ()  # prompts that belong to this clip (its own question, a given prompt)


def read_seeds(path: str | Path, audio_root: str | Path | None = None, item_questions: bool = True) -> list[Seed]:
    """Seeds from an MMAU-format JSON array (with metadata.summary) or a seed JSONL (see module doc)."""
    path = Path(path)
    root = Path(audio_root) if audio_root else path.parent
    if path.suffix == ".json":
        from akb.data.audio_bench import load_audio_benchmark
        from akb.prompts import lettered_question

        records = {r["id"]: r for r in json.loads(path.read_text(encoding="utf-8"))}
        items, _ = load_audio_benchmark(path, audio_root=audio_root)
        seeds = []
        for item in items:
            summary = (records[item.id].get("metadata") or {}).get("summary")
            if not summary:
                raise ValueError(f"{path}: item {item.id} has no metadata.summary to describe its clip")
            own = (lettered_question(item),) if item_questions else ()
            seeds.append(Seed(item.id, item.audio, summary, own))
        return seeds
    seeds = []
    for line, row in enumerate(read_jsonl(path), 1):
        missing = [k for k in ("id", "audio", "seed_description") if not row.get(k)]
        if missing:
            raise ValueError(f"{path}:{line}: missing field(s) {missing}")
        audio = Path(row["audio"]) if Path(row["audio"]).is_absolute() else root / row["audio"]
        if not audio.is_file():
            raise FileNotFoundError(f"{path}:{line}: audio file {audio} not found")
        prompts = (row["prompt"],) if row.get("prompt") else ()
        seeds.append(Seed(str(row["id"]), str(audio), row["seed_description"], prompts))
    return seeds


def distillation_requests(seeds: list[Seed], prompts: list[str], prompts_per_clip: int, seed: int) -> list[dict]:
    """One request per (clip, prompt): `prompts_per_clip` prompts sampled from the set (seeded per
    clip, so adding clips does not change the others' prompts), plus the clip's own prompts."""
    requests = []
    for s in seeds:
        rng = random.Random(f"{seed}:{s.clip_id}")
        chosen = rng.sample(list(prompts), min(prompts_per_clip, len(prompts))) + list(s.prompts)
        for k, prompt in enumerate(chosen):
            requests.append({"id": f"{s.clip_id}#{k}", "clip_id": s.clip_id, "audio": s.audio,
                             "seed_description": s.description, "prompt": prompt})
    return requests


def distill(model: LanguageModel, requests: list[dict], out_path: str | Path, batch_size: int = 16,
            max_new_tokens: int = 96) -> None:
    """Answer every request with the backbone, greedily, batched by length; resumable."""
    partial = PartialJsonl(out_path)
    texts = [model.prompt(with_description(r["prompt"], r["seed_description"])) for r in requests]
    lengths = [model.token_length(t) for t in texts]
    done = sum(partial.done(r["id"]) for r in requests)
    with tqdm(total=len(requests), initial=done, desc=f"distill {model.spec.name}", unit="answer") as bar:
        for batch in length_sorted_batches([r["id"] for r in requests], lengths, batch_size):
            todo = [i for i in batch if not partial.done(requests[i]["id"])]
            if not todo:
                continue
            answers = model.generate([texts[i] for i in todo], max_new_tokens)
            partial.append(requests[i] | {"response": answer.strip()} for i, answer in zip(todo, answers))
            bar.update(len(todo))
    partial.publish([r["id"] for r in requests])
