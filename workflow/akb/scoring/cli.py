"""`akb` commands that grade answers: the bank's accuracy with intervals, audio benchmarks by the
official rule (and the official scripts' input), and the LLM judge of All That Glitters."""

from __future__ import annotations

from akb.config import schema_default
from akb.options import add_benchmark_source, add_bootstrap, json_arg, load_audio_items


def cmd_score_probe(args) -> int:
    from akb.io import read_jsonl, write_json
    from akb.scoring.probe import score_predictions

    scores = score_predictions(read_jsonl(args.predictions), args.resamples, args.confidence, args.seed)
    write_json(args.out, {"model": args.model_name, **scores})
    return 0


def cmd_score_audio(args) -> int:
    from akb.io import read_jsonl, write_json
    from akb.scoring.audio import official_predictions, score_audio_predictions
    from akb.scoring.judge import score_judged

    items, _ = load_audio_items(args)
    rows = read_jsonl(args.predictions)
    # With --judged: the judge's letters where the rules read none (akb.scoring.judge).
    scores = (score_judged(items, rows, read_jsonl(args.judged), where=args.judged, n_resamples=args.resamples,
                           seed=args.seed) if args.judged
              else score_audio_predictions(items, rows, n_resamples=args.resamples, seed=args.seed))
    write_json(args.out, {"model": args.model_name, "captioner": args.captioner_name,
                          "benchmark": args.benchmark_name, **scores})
    write_json(args.official_out, official_predictions(items, rows))
    return 0


def cmd_judge(args) -> int:
    from akb.io import read_jsonl
    from akb.scoring.judge import Judge, judge_predictions, load_judge_prompt

    items, _ = load_audio_items(args, check_audio="none")  # the judge reads text only
    judge = Judge(args.judge, load_judge_prompt(args.prompt_version), args.retries)
    judge_predictions(items, read_jsonl(args.predictions), judge, args.out, batch_size=args.batch_size)
    return 0


def add_commands(sub) -> None:
    from akb.scoring.judge import DEFAULT_BATCH_SIZE, DEFAULT_PROMPT_VERSION, DEFAULT_RETRIES

    p = sub.add_parser("score-probe", help="accuracy overall / per category / per subcategory with bootstrap CIs")
    p.add_argument("--predictions", required=True)
    p.add_argument("--model-name", required=True)
    add_bootstrap(p)
    p.add_argument("--confidence", type=float, default=schema_default("probe.confidence"))
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_score_probe)

    p = sub.add_parser("score-audio", help="official-rule accuracy per domain, and the official scripts' input")
    add_benchmark_source(p)
    p.add_argument("--predictions", required=True)
    p.add_argument("--model-name", required=True)
    p.add_argument("--captioner-name", default=None)
    p.add_argument("--benchmark-name", required=True, help="the benchmark's name in tables")
    add_bootstrap(p)
    p.add_argument("--out", required=True)
    p.add_argument("--official-out", required=True, help="predictions in the benchmark's official format")
    p.add_argument("--judged", default=None, help="`akb judge` rows: score by their letters (the rules', else the "
                   "judge's), and report the agreement with the official string match")
    p.set_defaults(func=cmd_score_audio)

    p = sub.add_parser("judge", help="an LLM judge reads the answers the rules cannot (All That Glitters' scoring); "
                       "cached and resumable")
    add_benchmark_source(p)
    p.add_argument("--predictions", required=True, help="rows with id and raw_output (akb evaluate's form)")
    p.add_argument("--judge", type=json_arg, required=True, help="JSON models[] entry with backend api")
    p.add_argument("--prompt-version", default=DEFAULT_PROMPT_VERSION, help="a prompt in workflow/data/judge/prompts/")
    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                   help="asks again after a reply not 'Selected: <letter|NONE>'")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help="requests per step of the resumable output")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_judge)
