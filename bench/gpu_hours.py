"""GPU hours per stage of the paper config, from measured prompt tokens and published throughput.

Nothing here runs a large model. Prompt lengths are measured: the bank's questions as the probe
builds them, the same prompts with a caption in front for the cascade, and the synthetic suite's
seed descriptions for distillation, all tokenised with a real chat tokenizer (SmolLM2's, a proxy for
the backbones' BPE vocabularies of similar granularity). Item counts, budgets and the training recipe are read from
config/paper.yaml. Each stage's hours are then work / rate, with the arithmetic printed:

    LLM tokens:  tokens x 2 x params / (peak FLOP/s x utilisation)     (2 FLOPs per parameter per token)
    training:    tokens x 4 x params / (peak x MFU)                    (forward + activation gradients; frozen LLM)
    Whisper:     30 s windows / windows per second (an upper bound: a short clip is one padded window)
    small-batch decoding: steps x (bytes of weights / memory bandwidth) x overhead
    loading:     jobs x minutes per job (an assumption: weights from shared storage, CUDA start-up)

Published anchors (change them with the options when you measure your own):
  - H100 SXM: 989 TFLOP/s dense BF16, 3.35 TB/s HBM3 (NVIDIA H100 Tensor Core GPU datasheet).
  - vLLM decoding: ~12,500 output tokens/s for Llama-3.1-8B (BF16) on one H100 80GB
    (throughput table compiled at morphllm.com/vllm-benchmarks, 2026), i.e. 12,500 x 2 x 8e9 / 989e12
    = 20% of peak; prefill runs compute-bound, taken as 50%.
  - Training: 38-43% MFU for BF16 Llama 3 training on H100 (Llama 3 paper, Dubey et al. 2024,
    Table 4); 40% here.
  - Whisper-large-v3: 150 min of audio (300 windows of 30 s) in 5 min 2 s with transformers, fp16,
    batch 24, BetterTransformer, on one A100 80GB (insanely-fast-whisper README): ~1 window/s.

    python bench/gpu_hours.py                      # the table for config/paper.yaml (its recipe: desta25)
    python bench/gpu_hours.py --recipe akb-light    # the lighter recipe (500,000 rows, 2 epochs)
    python bench/gpu_hours.py --distill-rows 200000 # a shortened distillation set
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path

from akb.config import validate_config
from akb.data.bank import load_bank
from akb.io import read_yaml
from akb.lalm.distill import DEFAULT_PROMPTS, read_seeds
from akb.models.base import ModelSpec
from akb.models.hf import ChatPrompts, load_tokenizer
from akb.probe.prompts import lettered_question, with_description

ROOT = Path(__file__).resolve().parent.parent

# Parameters (billions) of the paper's open models, from their model cards.
PARAMS_B = {
    "qwen3-14b": 14.8, "qwen3-8b": 8.2, "qwen3-4b": 4.0, "qwen2.5-7b": 7.6, "phi-4-14b": 14.7,
    "phi-4-mini-4b": 3.8, "llama-3-8b": 8.0, "llama-3.1-8b": 8.0, "llama-2-7b": 6.7,
    "olmo-3-7b": 7.3, "olmo-3-7b-dpo": 7.3, "olmo-3-7b-sft": 7.3,
}
# Weights read per decoding step by the audio-lm captioners (billions of parameters, bf16): Qwen2-Audio,
# and Qwen3-Omni-30B-A3B's thinker, whose batches of clips touch most experts at every step (an upper bound).
AUDIO_LM_B = {"qwen2_audio": 8.4, "qwen3_omni": 31.7}
WHISPER_ENCODER_B = 0.635  # Whisper-large-v3's encoder: 1,500 frames per 30 s window
BENCHMARK_ITEMS = 1000  # MMAU test-mini and MMAR each (REFERENCE.md)
AKB_ITEMS = 2000
DESTA_ROWS = 5_000_000  # DeSTA-AQA5M, one distilled answer per row (prompts_per_clip: 1)
DESTA_AUDIO_HOURS = 7000  # ... of audio in DeSTA-AQA5M (REFERENCE.md)


@dataclass(frozen=True)
class Rates:
    peak_flops: float = 989e12
    bandwidth: float = 3.35e12
    prefill_util: float = 0.50
    decode_util: float = 0.20
    train_mfu: float = 0.40
    whisper_windows_per_s: float = 300 / 302
    hf_step_overhead: float = 3.0  # small-batch decoding: per-step Python and kernel-launch overhead
    load_minutes: float = 3.0  # per job: reading 8-30 GB of weights from shared storage, CUDA start-up


@dataclass(frozen=True)
class Stage:
    name: str
    work: str  # what is counted, in words and numbers
    arithmetic: str
    gpu_hours: float


def mean_tokens(prompts: ChatPrompts, texts: list[str]) -> float:
    return statistics.fmean(prompts.token_length(prompts.prompt(t)) for t in texts)


def measure_prompts(tokenizer_dir: str, bank: str, seeds: str | None = None, limit: int | None = None
                    ) -> dict[str, float]:
    """Mean prompt tokens: a probe question; the same with a caption of the captioner's budget
    (256 tokens, a sentence repeated) in front, as the cascade asks it; a distillation prompt with
    a seed description in front (the synthetic suite's descriptions; without them, bank questions
    stand in for descriptions)."""
    spec = ModelSpec(name="tokenizer", backend="hf", source=tokenizer_dir)
    prompts = ChatPrompts(spec, load_tokenizer(spec, tokenizer_dir))
    questions = [lettered_question(item) for item in load_bank(bank)[:limit]]
    sentence = "A man speaks calmly over soft piano music while traffic passes in the distance. "
    caption = sentence * max(1, round(256 / prompts.token_length(sentence)))
    descriptions = [s.description for s in read_seeds(seeds)[:limit]] if seeds else questions
    return {
        "probe": mean_tokens(prompts, questions),
        "cascade": mean_tokens(prompts, [with_description(q, caption) for q in questions]),
        "distill": mean_tokens(prompts, [with_description(DEFAULT_PROMPTS[0], d) for d in descriptions]),
    }


def prefill_hours(tokens: float, params_b: float, rates: Rates) -> float:
    """Prompt tokens run compute-bound: 2 FLOPs per parameter per token."""
    return tokens * 2 * params_b * 1e9 / (rates.peak_flops * rates.prefill_util) / 3600


def step_hours(steps: float, params_b: float, rates: Rates) -> float:
    """Decoding steps of small batches (transformers, or vLLM fed one probe batch at a time) are
    bound by reading the bf16 weights once per step, plus per-step overhead."""
    return steps * params_b * 2e9 / rates.bandwidth * rates.hf_step_overhead / 3600


def vllm_decode_hours(tokens: float, params_b: float, rates: Rates) -> float:
    """Large continuous batches (distillation) decode at the published vLLM rate, scaled by size."""
    return tokens * 2 * params_b * 1e9 / (rates.peak_flops * rates.decode_util) / 3600


def load_study(path: str | Path, recipe: str | None = None) -> dict:
    """The config as the workflow sees it (recipe applied, defaults filled), optionally with another recipe."""
    config = read_yaml(path)
    if recipe:
        config["grounded"]["recipe"] = recipe
    return validate_config(config)


def distill_rows_of(paper: dict) -> int:
    """Rows distilled per backbone: the DeSTA-AQA5M subsample the recipe or config asks for, else all."""
    return (paper["grounded"]["distill"].get("desta_aqa") or {}).get("max_rows") or DESTA_ROWS


def estimate(paper: dict, measured: dict[str, float], rates: Rates = Rates(), distill_rows: int = DESTA_ROWS,
             audio_items: int = BENCHMARK_ITEMS, bank_items: int = AKB_ITEMS) -> list[Stage]:
    """Per-stage GPU hours for a validated paper config (`load_study`), one H100 per job, loading included."""
    open_models = [m["name"] for m in paper["models"] if m["backend"] != "api"]
    backbones = paper["grounded"]["backbones"]
    sum_open = sum(PARAMS_B[m] for m in open_models)
    sum_bb = sum(PARAMS_B[m] for m in backbones)
    clips = len(paper["audio_benchmarks"]) * audio_items
    answer, batch = paper["probe"]["max_new_tokens"], paper["probe"]["batch_size"]
    load = f"jobs x {rates.load_minutes:.0f} min loading"
    stages = []

    def add(name, work, arithmetic, hours, jobs):
        loading = f" + {jobs} {load}" if jobs else ""
        stages.append(Stage(name, work, arithmetic + loading, hours + jobs * rates.load_minutes / 60))

    steps = bank_items / batch * answer
    add("probe (AKB-2000)", f"{len(open_models)} open models x {bank_items} items: {measured['probe']:.0f} prompt "
        f"tokens, {answer} answer steps per batch of {batch}",
        f"{bank_items * measured['probe']:,.0f} tok x 2 x {sum_open:.1f}e9 / (989e12 x {rates.prefill_util}) + "
        f"{steps:,.0f} steps x 2 bytes x {sum_open:.1f}e9 / 3.35e12 x {rates.hf_step_overhead:.0f}",
        prefill_hours(bank_items * measured["probe"], sum_open, rates) + step_hours(steps, sum_open, rates),
        len(open_models))

    # GPU captioners only: API captions (Gemini) and caption files cost no GPU time.
    whisper = [c for c in paper["captioners"] if c["backend"] == "whisper"]
    audio_lms = [c for c in paper["captioners"] if c["backend"] == "audio-lm"]
    words, arithmetic, hours = [], [], 0.0
    if whisper:
        words.append(f"{len(whisper)} x Whisper-large-v3 (one 30 s window each)")
        arithmetic.append(f"{len(whisper) * clips} windows / {rates.whisper_windows_per_s:.2f} per s")
        hours += len(whisper) * clips / rates.whisper_windows_per_s / 3600
    for c in audio_lms:
        params = AUDIO_LM_B["qwen3_omni" if "Omni" in c["source"] else "qwen2_audio"]
        per, new = c.get("batch_size", 8), c.get("max_new_tokens", 256)
        steps = clips / per * new
        words.append(f"{c['name']} ({clips // per} batches of {per} x {new} steps)")
        arithmetic.append(f"{steps:,.0f} steps x {params * 2:.1f} GB / 3.35e12 x {rates.hf_step_overhead:.0f}")
        hours += step_hours(steps, params, rates)
    add("caption", f"{clips} clips: " + ", ".join(words), " + ".join(arithmetic), hours,
        (len(whisper) + len(audio_lms)) * len(paper["audio_benchmarks"]))

    # The paper's pairings: a captioner's own `models`, else every model; API models cost no GPU.
    pairs = [m for c in paper["captioners"] for m in (c.get("models") or open_models) if m in open_models]
    pair_params = sum(PARAMS_B[m] for m in pairs)
    tokens, steps = clips * measured["cascade"], clips / batch * answer
    add("cascade", f"{len(pairs)} (captioner, open model) pairs x {clips} items: {measured['cascade']:.0f} "
        f"prompt tokens, {answer} steps per batch of {batch}",
        f"{tokens:,.0f} tok x 2 x {pair_params:.1f}e9 / (989e12 x {rates.prefill_util}) + {steps:,.0f} steps x "
        f"2 x {pair_params:.1f}e9 / 3.35e12 x {rates.hf_step_overhead:.0f}",
        prefill_hours(tokens, pair_params, rates) + step_hours(steps, pair_params, rates),
        len(pairs) * len(paper["audio_benchmarks"]))

    new = paper["grounded"]["distill"]["max_new_tokens"]
    prefill, decode = distill_rows * measured["distill"], distill_rows * new
    add("distill (vLLM)", f"{len(backbones)} backbones x {distill_rows:,} rows: {measured['distill']:.0f} prompt "
        f"+ {new} answer tokens",
        f"2 x {sum_bb:.1f}e9 x ({prefill:,.0f} / {rates.prefill_util} + {decode:,.0f} / {rates.decode_util}) "
        f"/ 989e12",
        prefill_hours(prefill, sum_bb, rates) + vllm_decode_hours(decode, sum_bb, rates), len(backbones))

    audio_h = DESTA_AUDIO_HOURS * distill_rows / DESTA_ROWS
    realtime = rates.whisper_windows_per_s * 30  # seconds of audio per second
    add("transcribe training clips", f"{audio_h:,.0f} h of audio (Whisper-large-v3 transcripts), once for all "
        f"{len(backbones)} backbones", f"{audio_h:,.0f} h / {realtime:.1f}x real time", audio_h / realtime, 1)

    train = paper["grounded"]["train"]
    samples = distill_rows * train["epochs"]
    tokens = samples * train["max_length"]
    window = 2 * WHISPER_ENCODER_B * 1e9 * 1500  # FLOPs of one encoder window
    flops = tokens * 4 * sum_bb * 1e9 + len(backbones) * samples * window
    add("train", f"{len(backbones)} backbones x {samples:,} samples ({train['epochs']} epochs) x "
        f"{train['max_length']} tokens, + one Whisper encoder window per sample",
        f"({tokens:,.0f} x 4 x {sum_bb:.1f}e9 + {len(backbones)} x {samples:,} x {window:.1e}) / "
        f"(989e12 x {rates.train_mfu})",
        flops / (rates.peak_flops * rates.train_mfu) / 3600, len(backbones))

    runs = 1 + 16  # the evaluation (`full`) and the 16 diagnostic conditions
    audio_runs = runs - 2  # `none` and `backbone` have no audio to transcribe
    windows = audio_runs * clips
    add("transcribe benchmark clips", f"{audio_runs} conditions with audio x {clips} clips (Whisper-large-v3, one "
        f"30 s window each), once for all {len(backbones)} backbones",
        f"{windows:,} windows / {rates.whisper_windows_per_s:.2f} per s", windows / rates.whisper_windows_per_s / 3600,
        audio_runs * len(paper["audio_benchmarks"]))

    new, ebatch = paper["grounded"]["evaluate"]["max_new_tokens"], paper["grounded"]["evaluate"]["batch_size"]
    steps = runs * clips / ebatch * new
    prompt = 4 * 64 + measured["probe"]  # 64 audio vectors per tap, then the question
    add("evaluate + diagnose", f"{len(backbones)} backbones x {runs} runs x {clips} items: {prompt:.0f} prompt "
        f"positions, {new} steps per batch of {ebatch} (transformers), transcripts read from the shared files",
        f"{runs * clips * prompt:,.0f} tok x 2 x {sum_bb:.1f}e9 / (989e12 x {rates.prefill_util}) + {steps:,.0f} "
        f"steps x 2 x {sum_bb:.1f}e9 / 3.35e12 x {rates.hf_step_overhead:.0f}",
        prefill_hours(runs * clips * prompt, sum_bb, rates) + step_hours(steps, sum_bb, rates),
        len(backbones) * runs * len(paper["audio_benchmarks"]))
    return stages


def markdown(stages: list[Stage]) -> str:
    lines = ["| Stage | Work | Arithmetic | GPU hours (H100) |", "|---|---|---|---:|"]
    lines += [f"| {s.name} | {s.work} | {s.arithmetic} | {s.gpu_hours:,.1f} |" for s in stages]
    lines.append(f"| **total** | | | **{sum(s.gpu_hours for s in stages):,.0f}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "config/paper.yaml"))
    parser.add_argument("--tokenizer", default=str(ROOT / "resources/models/smollm2-135m-instruct"))
    parser.add_argument("--bank", default="builtin")
    parser.add_argument("--seeds", default=str(ROOT / "resources/synthetic/train.json"),
                        help="seed descriptions to measure (the demo's synthetic train split); absent: bank questions")
    parser.add_argument("--recipe", default=None, help="grounded.recipe to estimate (default: the config's)")
    parser.add_argument("--distill-rows", type=int, default=None,
                        help="distillation rows per backbone (default: the recipe's subsample, else DeSTA-AQA5M's 5M)")
    parser.add_argument("--decode-util", type=float, default=Rates.decode_util)
    parser.add_argument("--train-mfu", type=float, default=Rates.train_mfu)
    args = parser.parse_args()
    paper = load_study(args.config, args.recipe)
    measured = measure_prompts(args.tokenizer, args.bank, args.seeds if Path(args.seeds).is_file() else None)
    rates = Rates(decode_util=args.decode_util, train_mfu=args.train_mfu)
    print(f"recipe: {paper['grounded'].get('recipe')}; mean prompt tokens (measured): "
          + ", ".join(f"{k} {v:.1f}" for k, v in measured.items()))
    print(markdown(estimate(paper, measured, rates, distill_rows=args.distill_rows or distill_rows_of(paper))))


if __name__ == "__main__":
    main()
