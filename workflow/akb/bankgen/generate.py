"""Ask a generator model for candidate questions, request by request, with an on-disk cache.

Each request's raw output is stored as one JSON file named by the generator, subcategory, prompt
version, number of questions and request number, plus a hash of everything that shapes the output
(the model's config entry, the full prompt, the token budget). A rerun therefore sends nothing, an
interrupted run redoes only the requests without a file, and a changed prompt, model or `n` never
reuses a stale answer. API models keep their own request cache as well."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from tqdm import tqdm

from akb.bankgen.parse import parse_output
from akb.bankgen.prompts import Request
from akb.io import write_json, write_jsonl
from akb.models import PACKAGED_ROOT
from akb.models.base import LanguageModel
from akb.probe.run import length_sorted_batches

log = logging.getLogger(__name__)


def cache_path(cache_dir: Path, request: Request, fingerprint: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir / request.generator / request.subcategory.id / (
        f"{request.prompt_version}-n{request.n}-r{request.index}-{digest}.json")


def generate_outputs(
    model: LanguageModel,
    requests: list[Request],
    model_entry: dict[str, Any],
    cache_dir: str | Path,
    batch_size: int,
    max_new_tokens: int,
    prefill: str = "",
) -> dict[str, str]:
    """request key -> the answer text (prefill included), from the cache or the model."""
    entry = {k: v for k, v in model_entry.items() if k != "resources"}  # where it runs does not change the text
    prompts = [model.prompt(r.text) + prefill for r in requests]
    paths = [cache_path(Path(cache_dir), r, {"model": entry, "prompt": p, "max_new_tokens": max_new_tokens})
             for r, p in zip(requests, prompts)]
    outputs = {}
    for request, path in zip(requests, paths):
        if path.is_file():
            outputs[request.key] = json.loads(path.read_text(encoding="utf-8"))["output"]
    todo = [i for i, r in enumerate(requests) if r.key not in outputs]
    if len(todo) < len(requests):
        log.info("%s: %d of %d requests answered from the cache", model.spec.name, len(requests) - len(todo),
                 len(requests))
    lengths = [model.token_length(prompts[i]) for i in todo]
    with tqdm(total=len(todo), desc=f"generate {model.spec.name}", unit="request") as bar:
        for batch in length_sorted_batches([requests[i].key for i in todo], lengths, batch_size):
            indices = [todo[b] for b in batch]
            texts = model.generate([prompts[i] for i in indices], max_new_tokens)
            for i, text in zip(indices, texts):
                request = requests[i]
                outputs[request.key] = prefill + text
                write_json(paths[i], {"request": request.key, "generator": request.generator,
                                      "subcategory": request.subcategory.id, "prompt_version": request.prompt_version,
                                      "n": request.n, "focus": request.focus, "prompt": prompts[i],
                                      "output": prefill + text})
            bar.update(len(indices))
    return outputs


def parse_requests(requests: list[Request], outputs: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Candidates and rejects of every request, in request order, with where each came from."""
    candidates, rejects = [], []
    for request in requests:
        origin = {"generator": request.generator, "category": request.subcategory.category,
                  "subcategory": request.subcategory.id, "prompt_version": request.prompt_version,
                  "request": request.key, "focus": request.focus}
        found, bad = parse_output(outputs[request.key], request.n)
        candidates += [{"candidate_id": f"{request.key}/{j}", **origin, **c} for j, c in enumerate(found)]
        rejects += [{**origin, **r} for r in bad]
    return candidates, rejects


def generate_candidates(model: LanguageModel, requests: list[Request], model_entry: dict[str, Any],
                        cache_dir: str | Path, out: str | Path, rejects_out: str | Path, batch_size: int,
                        max_new_tokens: int, prefill: str = "") -> None:
    outputs = generate_outputs(model, requests, model_entry, cache_dir, batch_size, max_new_tokens, prefill)
    candidates, rejects = parse_requests(requests, outputs)
    log.info("%s: %d requests, %d candidates, %d rejects", model.spec.name, len(requests), len(candidates),
             len(rejects))
    write_jsonl(rejects_out, rejects)
    write_jsonl(out, candidates)


def generate_bank_candidates(settings: dict, model_entry: dict, out: str | Path, rejects: str | Path,
                             gpus: int | None = None, seed: int = 0, packaged_root: str | Path = PACKAGED_ROOT) -> None:
    """`akb bankgen-generate`: one generator (a `models` entry) writes candidate questions for every
    subcategory of the `bankgen` settings, with the prompt file's system message and prefill."""
    from akb.bankgen.prompts import build_requests, load_prompt
    from akb.bankgen.taxonomy import load_taxonomy
    from akb.data.bank import load_bank
    from akb.models import ModelSpec, load_model

    s = settings
    template = load_prompt(s["prompt"])
    subcategories = load_taxonomy(s["taxonomy"], s["subcategories"])
    examples = load_bank(s["existing_bank"]) if s["examples"] else []
    spec = ModelSpec.from_config(model_entry, gpus)
    requests = build_requests(spec.name, subcategories, template, s["n_per_subcategory"], s["per_request"],
                              examples, s["examples"], seed)
    if template.system is not None:  # the prompt file's system message replaces the model's own
        spec = dataclasses.replace(spec, chat=dataclasses.replace(spec.chat, system_prompt=template.system))
    model = load_model(spec, Path(packaged_root), generation_only=True)  # vLLM may generate
    generate_candidates(model, requests, model_entry, s["cache_dir"], out, rejects, s["batch_size"],
                        s["max_new_tokens"], template.prefill if s["prefill"] else "")
