"""Throughput of the batched probe (`akb.probe.run.probe`) against a naive per-item loop.

Both run on the same loaded model and the same items, in one process, and must reach the same
answers: the naive loop is the obvious reference implementation, so a batching bug (padding,
ordering, resuming) shows up as a disagreement, and a batching win shows up as items per second.

    naive loglik    one forward of context + option per (item, option), the textbook way
    naive generate  one model.generate([prompt]) per item, answer parsed with extract_choice
    batched         akb.probe.run.probe(...) into a temporary directory, accuracy read from its JSONL
    lm_eval         (optional, loglik only) lm-evaluation-harness's HFLM.loglikelihood on the same
                    (context, continuation) strings and the same in-memory model

Usage (from the repository root; HF_HUB_OFFLINE=1 keeps transformers off the network):

    python bench/probe_throughput.py --tiny qwen3 --items 64
    python bench/probe_throughput.py --model-dir resources/models/smollm2-135m-instruct \\
        --items 128 --mode both --threads 2 --json /tmp/throughput.json
    # the lm_eval comparison on plain (non-chat) prompts, so both sides see identical strings:
    python bench/probe_throughput.py --model-dir resources/models/smollm2-135m-instruct \\
        --items 128 --mode loglik --plain --threads 2

The lm_eval column needs `pip install -e '.[bench]'`; without it the script says it skipped it.
Timings are wall-clock on whatever else the machine is doing: pin --threads and run on an idle
machine for numbers worth quoting.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Progress bars from the probe and lm_eval would interleave with the table; set before tqdm loads.
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from akb.data.bank import load_bank  # noqa: E402
from akb.data.items import MCQItem  # noqa: E402
from akb.io import read_jsonl  # noqa: E402
from akb.models import LanguageModel, ModelSpec, load_model  # noqa: E402
from akb.models.base import ChatOptions  # noqa: E402
from akb.probe.run import probe  # noqa: E402
from akb.probe.prompts import lettered_question, loglik_context  # noqa: E402
from akb.scoring.answers import extract_choice  # noqa: E402

# Option log-probabilities closer than this are called near-ties: a padded batch and a single
# sequence run different kernels, so float noise of this size may flip their argmax.
NEAR_TIE = 1e-3


@dataclass
class Run:
    """One timed method on one mode: per-item predictions and, for loglik, per-option scores."""

    mode: str
    method: str
    seconds: float
    predictions: dict[str, str | None]  # item id -> predicted letter (None: unparseable)
    correct: dict[str, bool]
    scores: dict[str, list[float]] = field(default_factory=dict)  # loglik: logprob per option
    outputs: dict[str, str] = field(default_factory=dict)  # generate: raw text

    @property
    def items(self) -> int:
        return len(self.predictions)

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")

    @property
    def accuracy(self) -> float:
        return sum(self.correct.values()) / max(len(self.correct), 1)

    def add_probe_rows(self, rows: list[dict], items: list[MCQItem]) -> Run:
        """Predictions, and option scores (loglik) or raw outputs (generate), from akb.probe.run's rows."""
        letters = {item.id: item.letters for item in items}
        for row in rows:
            self.predictions[row["id"]] = row["parsed_answer"]
            self.correct[row["id"]] = bool(row["correct"])
            if self.mode == "loglik":
                self.scores[row["id"]] = [row["option_scores"][k]["logprob"] for k in letters[row["id"]]]
            else:
                self.outputs[row["id"]] = row["raw_output"]
        return self


def parsed_letter(item: MCQItem, output: str) -> str | None:
    """The letter of the option a generated answer names (None: unparseable), as akb.probe.run parses it."""
    choice = extract_choice(output, item.choices, item.letters)
    return None if choice.index is None else item.letters[choice.index]


def argmax_letter(item: MCQItem, scores: list[float]) -> str:
    # Ties go to the earliest option, as max() does in akb.probe.run.
    return max(item.letters, key=lambda k: scores[item.letters.index(k)])


def loglik_requests(model: LanguageModel, item: MCQItem) -> list[tuple[str, str]]:
    context = model.prompt(loglik_context(item))
    return [(context, model.continuation(option)) for option in item.choices]


@torch.inference_mode()
def joint_logprob(model: LanguageModel, context: str, continuation: str) -> float:
    """log P(continuation | context) from one forward over the joined tokens (same tokenisation as
    the backend: context and continuation encoded separately)."""
    cont = model.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ctx = model.encode(context)
    logits = model.model(input_ids=torch.tensor([ctx + cont], device=model.device)).logits[0]
    logprobs = logits[len(ctx) - 1 : -1].float().log_softmax(-1)
    return logprobs.gather(-1, torch.tensor(cont, device=model.device)[:, None]).sum().item()


def naive_loglik(model: LanguageModel, items: list[MCQItem]) -> Run:
    predictions, correct, scores = {}, {}, {}
    start = time.perf_counter()
    for item in items:
        # Prompt building is inside the timer on purpose: the batched probe pays for it too.
        option_scores = [joint_logprob(model, *request) for request in loglik_requests(model, item)]
        letter = argmax_letter(item, option_scores)
        predictions[item.id], correct[item.id], scores[item.id] = letter, letter == item.answer_letter, option_scores
    return Run("loglik", "naive", time.perf_counter() - start, predictions, correct, scores=scores)


def naive_generate(model: LanguageModel, items: list[MCQItem], max_new_tokens: int) -> Run:
    predictions, correct, outputs = {}, {}, {}
    start = time.perf_counter()
    for item in items:
        output = model.generate([model.prompt(lettered_question(item))], max_new_tokens)[0]
        letter = parsed_letter(item, output)
        predictions[item.id], correct[item.id], outputs[item.id] = letter, letter == item.answer_letter, output
    return Run("generate", "naive", time.perf_counter() - start, predictions, correct, outputs=outputs)


def batched(model: LanguageModel, items: list[MCQItem], mode: str, batch_size: int, max_new_tokens: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="akb-bench-") as tmp:
        out = Path(tmp) / f"{mode}.jsonl"
        start = time.perf_counter()
        probe(model, items, out, mode=mode, batch_size=batch_size, max_new_tokens=max_new_tokens)
        seconds = time.perf_counter() - start
        rows = read_jsonl(out)
    return Run(mode, "batched", seconds, {}, {}).add_probe_rows(rows, items)


def lm_eval_loglik(model: LanguageModel, items: list[MCQItem], batch_size: int) -> Run | str:
    """lm-evaluation-harness's log-likelihood on our exact strings; a string says why it was skipped."""
    try:
        import lm_eval
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except Exception as e:  # an ImportError, or a version that breaks on this transformers
        return f"lm_eval not importable ({type(e).__name__}: {e}); pip install -e '.[bench]'"
    if not (hasattr(model, "model") and hasattr(model, "tokenizer")):
        return f"lm_eval needs a transformers model; {type(model).__name__} has none"
    for name in ("lm-eval", "lm_eval", "lm_eval.models.huggingface"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        # Our backend adds the tokenizer's special tokens to plain prompts only (a chat template
        # writes its own BOS); add_bos_token makes lm_eval follow the same convention.
        lm = HFLM(pretrained=model.model, tokenizer=model.tokenizer, batch_size=batch_size,
                  add_bos_token=not getattr(model, "templated", False))
        requests = [(item, r) for item in items for r in loglik_requests(model, item)]
        warm = [Instance(request_type="loglikelihood", doc={}, arguments=requests[0][1], idx=0)]
        lm.loglikelihood(warm, disable_tqdm=True)  # first-call setup stays outside the timer
        start = time.perf_counter()
        instances = [
            Instance(request_type="loglikelihood", doc={}, arguments=request, idx=i)
            for i, (_, request) in enumerate(requests)
        ]
        results = lm.loglikelihood(instances, disable_tqdm=True)
        seconds = time.perf_counter() - start
    except Exception as e:
        return f"lm_eval {lm_eval.__version__} failed ({type(e).__name__}: {e})"
    run = Run("loglik", f"lm_eval {lm_eval.__version__}", seconds, {}, {})
    flat = iter(logprob for logprob, _greedy in results)
    for item in items:
        option_scores = [next(flat) for _ in item.choices]
        letter = argmax_letter(item, option_scores)
        run.predictions[item.id], run.correct[item.id], run.scores[item.id] = (
            letter, letter == item.answer_letter, option_scores)
    return run


def agreement(reference: Run, other: Run, items: list[MCQItem]) -> dict:
    """How far `other` departs from `reference`, item by item; flips on near-ties are counted apart."""
    same = [i.id for i in items if reference.predictions[i.id] == other.predictions[i.id]]
    report = {"against": reference.method, "method": other.method, "mode": other.mode,
              "items": len(items), "same_prediction": len(same),
              "agreement": len(same) / max(len(items), 1)}
    if reference.scores and other.scores:
        deltas = [abs(a - b) for i in items for a, b in zip(reference.scores[i.id], other.scores[i.id])]
        flipped = [i for i in items if i.id not in set(same)]

        def margin(item: MCQItem) -> float:  # gap between the reference's two best options
            top = sorted(reference.scores[item.id], reverse=True)
            return top[0] - top[1] if len(top) > 1 else float("inf")

        report |= {"max_abs_logprob_diff": max(deltas, default=0.0),
                   "mean_abs_logprob_diff": sum(deltas) / max(len(deltas), 1),
                   "flips": [{"id": i.id, "reference": reference.predictions[i.id],
                              "other": other.predictions[i.id], "reference_margin": margin(i)}
                             for i in flipped],
                   "flips_on_near_ties": sum(margin(i) < NEAR_TIE for i in flipped)}
    if reference.outputs and other.outputs:
        report["same_raw_output"] = sum(reference.outputs[i.id] == other.outputs[i.id] for i in items)
        report["flips"] = [{"id": i.id, "reference": reference.outputs[i.id], "other": other.outputs[i.id]}
                           for i in items if i.id not in set(same)]
    return report


def warm_up(model: LanguageModel, items: list[MCQItem], modes: list[str]) -> None:
    """One small batch per mode, so lazy initialisation and allocator growth are not timed."""
    if "loglik" in modes:
        model.loglikelihood(loglik_requests(model, items[0]))
    if "generate" in modes:
        model.generate([model.prompt(lettered_question(item)) for item in items[:2]], 2)


def build_model(args: argparse.Namespace) -> LanguageModel:
    chat = ChatOptions(use_template=not args.plain)
    if args.tiny:
        spec = ModelSpec(name=f"tiny-{args.tiny}", backend="tiny", source=args.tiny, device=args.device, chat=chat)
    else:
        name = re.sub(r"[^A-Za-z0-9._-]", "-", Path(args.model_dir).resolve().name) or "model"
        spec = ModelSpec(name=name, backend="hf", source=str(args.model_dir), device=args.device, chat=chat)
    return load_model(spec)


def markdown_table(runs: list[Run]) -> str:
    naive = {r.mode: r for r in runs if r.method == "naive"}
    lines = ["| mode | method | items | seconds | items/s | accuracy | speed-up vs naive |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        base = naive.get(r.mode)
        speedup = f"{r.items_per_s / base.items_per_s:.2f}x" if base else "-"
        lines.append(f"| {r.mode} | {r.method} | {r.items} | {r.seconds:.2f} | {r.items_per_s:.2f} "
                     f"| {r.accuracy:.3f} | {speedup} |")
    return "\n".join(lines)


def describe(report: dict) -> str:
    text = (f"{report['mode']}: {report['method']} vs {report['against']}: same prediction on "
            f"{report['same_prediction']}/{report['items']} items ({report['agreement']:.1%})")
    if "max_abs_logprob_diff" in report:
        text += (f"; |Δ logprob| max {report['max_abs_logprob_diff']:.2e}, "
                 f"mean {report['mean_abs_logprob_diff']:.2e}; "
                 f"{len(report['flips'])} flip(s), {report['flips_on_near_ties']} on near-ties (<{NEAR_TIE:g})")
        for flip in report["flips"][:5]:
            text += (f"\n    {flip['id']}: {flip['reference']} -> {flip['other']} "
                     f"(reference margin {flip['reference_margin']:.2e})")
    if "same_raw_output" in report:
        text += f"; identical raw output on {report['same_raw_output']}/{report['items']}"
        for flip in report["flips"][:5]:
            text += f"\n    {flip['id']}: {flip['reference']!r} -> {flip['other']!r}"
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="converted transformers model directory (backend 'hf')")
    source.add_argument("--tiny", metavar="ARCH", help="tiny random model of an architecture, e.g. qwen3")
    parser.add_argument("--mode", choices=("loglik", "generate", "both"), default="both")
    parser.add_argument("--bank", default="builtin", help="bank file (default: the shipped bank)")
    parser.add_argument("--items", type=int, default=64, help="first N items of the bank")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--plain", action="store_true",
                        help="plain prompts, no chat template (what the lm_eval comparison should use)")
    parser.add_argument("--lm-eval", choices=("auto", "off"), default="auto",
                        help="auto: add an lm_eval column in loglik mode when lm_eval is importable")
    parser.add_argument("--json", metavar="OUT", help="also write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    items = load_bank(args.bank)[: args.items]
    modes = ["loglik", "generate"] if args.mode == "both" else [args.mode]
    model = build_model(args)
    templated = getattr(model, "templated", None)
    print(f"model {model.spec.name} ({'chat template' if templated else 'plain prompts'}), "
          f"{len(items)} items, batch size {args.batch_size}, max new tokens {args.max_new_tokens}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)

    warm_up(model, items, modes)
    runs, reports, skipped, notes = [], [], [], []
    for mode in modes:
        naive = naive_loglik(model, items) if mode == "loglik" else naive_generate(model, items, args.max_new_tokens)
        fast = batched(model, items, mode, args.batch_size, args.max_new_tokens)
        runs += [naive, fast]
        reports.append(agreement(naive, fast, items))
        if mode == "loglik" and args.lm_eval == "auto":
            result = lm_eval_loglik(model, items, args.batch_size)
            if isinstance(result, str):
                skipped.append(result)
            else:
                runs.append(result)
                reports += [agreement(naive, result, items), agreement(fast, result, items)]
                if templated:
                    # lm_eval moves a context's trailing whitespace into the continuation; chat
                    # templates end in a newline, so its scores include that extra token.
                    notes.append("lm_eval scored chat-templated strings: it moves the template's "
                                 "trailing newline into each continuation, so its log-probabilities "
                                 "differ from ours by that token; use --plain for a like-for-like comparison")

    print(markdown_table(runs))
    print()
    for report in reports:
        print(describe(report))
    for reason in skipped:
        print(f"lm_eval column skipped: {reason}")
    for note in notes:
        print(f"note: {note}")
    if args.json:
        payload = {
            "model": model.spec.name, "source": args.model_dir or f"tiny:{args.tiny}",
            "templated": templated, "items": len(items), "bank": args.bank,
            "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "runs": [{"mode": r.mode, "method": r.method, "items": r.items, "seconds": r.seconds,
                      "items_per_s": r.items_per_s, "accuracy": r.accuracy} for r in runs],
            "agreement": reports, "skipped": skipped, "notes": notes,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
