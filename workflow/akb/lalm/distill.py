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
  * JSONL rows {"id", "audio", "seed_description"} (+ optional "prompt", "transcript", "dataset"),
    audio relative to `audio_root` -- what `akb convert-desta-seeds` writes from DeSTA-AQA5M and a
    user's copies of its source corpora (akb.data.desta_aqa).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from akb.data.desta_aqa import text_field
from akb.io import PartialJsonl, digest, iter_jsonl, read_json
from akb.models.base import LanguageModel
from akb.data.items import MCQItem
from akb.probe.run import length_sorted_batches
from akb.probe.shards import Shard, round_robin
from akb.probe.prompts import lettered_question, loglik_context, with_description

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
    prompts: tuple[str, ...] = ()  # prompts that come with this clip in a seed JSONL
    item: MCQItem | None = None  # the clip's own benchmark question (MMAU-format seeds)
    transcript: str | None = None  # the seed row's own transcript (DeSTA-AQA5M's), when it has one
    dataset: str | None = None  # the seed row's source corpus (DeSTA-AQA5M's `dataset`)


def read_seeds(path: str | Path, audio_root: str | Path | None = None, item_questions: bool = True) -> list[Seed]:
    """Seeds from an MMAU-format JSON array (with metadata.summary) or a seed JSONL (see module doc).
    Every problem names the file and the item or line: a file without seeds, a missing, empty or
    non-text field, an id used twice (its requests would share ids, and one answer would silently
    replace the other), a clip that is not there. Other keys of a row are ignored."""
    path = Path(path)
    root = Path(audio_root) if audio_root else path.parent
    if path.suffix == ".json":
        return _benchmark_seeds(path, audio_root, item_questions)
    seeds, line_of = [], {}
    for line, row in iter_jsonl(path):
        seed = _seed_row(row, f"{path}, line {line}", root)
        if seed.clip_id in line_of:
            raise ValueError(f"{path}, line {line}: id {seed.clip_id!r} already used on line {line_of[seed.clip_id]}")
        line_of[seed.clip_id] = line
        seeds.append(seed)
    if not seeds:
        raise ValueError(f"{path}: no seeds (the file is empty)")
    return seeds


def _seed_row(row: object, where: str, root: Path) -> Seed:
    """One row of a seed JSONL, checked; errors name `where` (the file and line) and the field."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    clip_id = row.get("id")
    if isinstance(clip_id, bool) or not isinstance(clip_id, str | int) or not str(clip_id).strip():
        raise ValueError(f"{where}: field 'id' must be non-empty text, got {clip_id!r}")
    audio_path, description = (text_field(row, k, where, required=True) for k in ("audio", "seed_description"))
    prompt, dataset = (text_field(row, k, where, required=False) for k in ("prompt", "dataset"))
    transcript = row.get("transcript")  # "" is kept: a clip known to hold no speech (akb.data.desta_aqa)
    if transcript is not None and not isinstance(transcript, str):
        raise ValueError(f"{where}: field 'transcript' is {type(transcript).__name__}, not text")
    audio = Path(audio_path) if Path(audio_path).is_absolute() else root / audio_path
    if not audio.is_file():
        raise FileNotFoundError(f"{where}: audio file {audio} not found")
    return Seed(str(clip_id).strip(), str(audio), description, (prompt,) if prompt else (), transcript=transcript,
                dataset=dataset)


def _benchmark_seeds(path: Path, audio_root: str | Path | None, item_questions: bool) -> list[Seed]:
    """Seeds of an MMAU-format file: its items (checked as any benchmark, see akb.data.audio_bench)
    described by their metadata.summary."""
    from akb.data.audio_bench import load_audio_benchmark

    items, _ = load_audio_benchmark(path, audio_root=audio_root)
    # Every record left is an object with an id: load_audio_benchmark refused the file otherwise.
    records = {str(r["id"]).strip(): r for r in read_json(path)}
    seeds = []
    for item in items:
        metadata = records[item.id].get("metadata")
        summary = metadata.get("summary") if isinstance(metadata, dict) else None
        if not isinstance(summary, str) or not summary.strip():
            raise ValueError(f"{path}: item {item.id} has no metadata.summary (text) to describe its clip")
        seeds.append(Seed(item.id, item.audio, summary, item=item if item_questions else None))
    return seeds


OWN_PROMPT_MODES = ("add", "replace")


def distillation_requests(seeds: list[Seed], prompts: list[str], prompts_per_clip: int, seed: int,
                          question_mode: str = "generate", own_prompt: str = "add") -> list[dict]:
    """One request per (clip, prompt): `prompts_per_clip` prompts sampled from the set (seeded per
    clip, so adding clips does not change the others' prompts), plus the clip's own prompts and its
    own question. own_prompt="replace" asks a clip that comes with its own prompt (a seed row's
    `prompt`) that prompt alone, as DeSTA2.5 answers each DeSTA-AQA5M row's own prompt once; clips
    without one still get the sampled prompts. The question is asked the way the evaluation will ask
    it (`question_mode`): as a lettered question answered by generation, or as "Question: ...\nAnswer:"
    answered by the option the backbone finds most likely."""
    if own_prompt not in OWN_PROMPT_MODES:
        raise ValueError(f"own_prompt must be one of {list(OWN_PROMPT_MODES)}, not {own_prompt!r}")
    requests = []
    for s in seeds:
        rng = random.Random(f"{seed}:{s.clip_id}")
        chosen = []
        if not (own_prompt == "replace" and s.prompts):
            chosen = [{"prompt": p} for p in rng.sample(list(prompts), min(prompts_per_clip, len(prompts)))]
        chosen += [{"prompt": p} for p in s.prompts]
        if s.item is not None and question_mode == "loglik":
            chosen.append({"prompt": loglik_context(s.item), "choices": list(s.item.choices)})
        elif s.item is not None:
            chosen.append({"prompt": lettered_question(s.item)})
        for k, request in enumerate(chosen):
            requests.append({"id": f"{s.clip_id}#{k}", "clip_id": s.clip_id, "audio": s.audio,
                             "seed_description": s.description, **request})
    if not requests:
        raise ValueError("no distillation requests: prompts_per_clip is 0 and no seed has its own prompt "
                         "or question (set grounded.distill.prompts_per_clip or item_questions)")
    return requests


def request_texts(model: LanguageModel, requests: list[dict]) -> list[str]:
    """The backbone's prompt for each request: its question with the seed description in place of
    the audio (their lengths order the batches, see akb.probe.shards.distill_shard)."""
    return [model.prompt(with_description(r["prompt"], r["seed_description"])) for r in requests]


def distill(model: LanguageModel, requests: list[dict], out_path: str | Path, batch_size: int = 16,
            max_new_tokens: int = 96) -> None:
    """Answer every request with the backbone, greedily, batched by length; resumable. Requests with
    `choices` are answered by the option of highest log-likelihood (its text is the response)."""
    # The requests carry the prompts, seed descriptions, clips and options: with the model and the
    # generation setting, all the answers depend on (the batch size only orders the work).
    partial = PartialJsonl(out_path, {"model": model.spec.fingerprint(), "max_new_tokens": max_new_tokens,
                                      "requests": digest(requests)})
    texts = request_texts(model, requests)
    lengths = [model.token_length(t) for t in texts]
    done = sum(partial.done(r["id"]) for r in requests)
    with tqdm(total=len(requests), initial=done, desc=f"distill {model.spec.name}", unit="answer") as bar:
        for batch in length_sorted_batches([r["id"] for r in requests], lengths, batch_size):
            todo = [i for i in batch if not partial.done(requests[i]["id"])]
            generated = [i for i in todo if "choices" not in requests[i]]
            scored = [i for i in todo if "choices" in requests[i]]
            answers = {}
            if generated:
                answers.update(zip(generated, model.generate([texts[i] for i in generated], max_new_tokens)))
            if scored:
                choices = [requests[i]["choices"] for i in scored]
                answers.update(zip(scored, _most_likely(model, [texts[i] for i in scored], choices)))
            partial.append(requests[i] | {"response": answers[i].strip()} for i in todo)
            bar.update(len(todo))
    partial.publish([r["id"] for r in requests])


def _most_likely(model: LanguageModel, contexts: list[str], choices: list[list[str]]) -> list[str]:
    scores = iter(model.loglikelihood([(c, model.continuation(o)) for c, opts in zip(contexts, choices) for o in opts]))
    answers = []
    for opts in choices:
        logprobs = [next(scores).logprob for _ in opts]
        answers.append(opts[max(range(len(opts)), key=logprobs.__getitem__)])
    return answers


def distill_batches(model: LanguageModel, requests: list[dict], batch_size: int) -> list[list[int]]:
    """The batches (indices into `requests`, in run order) akb.lalm.distill.distill() answers these
    requests in: longest prompt first, ties by id."""
    lengths = [model.token_length(t) for t in request_texts(model, requests)]
    return list(length_sorted_batches([r["id"] for r in requests], lengths, batch_size))


def distill_shard(model: LanguageModel, requests: list[dict], out_path: str | Path, batch_size: int = 16,
                  max_new_tokens: int = 96, shard: Shard | None = None) -> None:
    """distill() on one shard's requests (all of them when `shard` is None); resumable like distill().
    The shard's requests are whole batches of the unsharded run, so distill() re-cuts them into
    exactly those batches (the same rows, byte for byte, as akb.probe.shards explains for probing);
    `merge_shards(parts, [r["id"] for r in requests], out)` then writes the unsharded file."""
    if shard is not None:
        requests = [requests[i] for i in round_robin(distill_batches(model, requests, batch_size), shard)]
    distill(model, requests, out_path, batch_size, max_new_tokens)
