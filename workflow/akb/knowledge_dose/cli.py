"""`akb` commands of the knowledge-dose experiment: train a dosed backbone, report the dose response."""

from __future__ import annotations

from akb.job_env import set_threads
from akb.options import add_benchmark_source, add_threads, json_arg, load_audio_items


def dose_arg(text: str) -> int | None:
    return None if text == "control" else int(text)


def cmd_dose_train(args) -> int:
    from akb.knowledge_dose.train import train_variant

    set_threads(args.threads)
    train_variant(args.corpus, args.model, args.variant, args.dose, args.seed, args.lora, args.out)
    return 0


def cmd_dose_report(args) -> int:
    from akb.knowledge_dose.collect import report_experiment

    report_experiment(args.settings, args.runs, load_audio_items(args)[0], args.out_dir, args.seed)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("dose-train", help="LoRA-train a backbone on a dose of the knowledge corpus and merge it")
    p.add_argument("--corpus", default="builtin", help="`builtin` or a corpus folder (docs/knowledge-dose.md)")
    p.add_argument("--model", required=True, type=json_arg, help="the backbone's models[] entry (JSON)")
    p.add_argument("--variant", required=True, help="the variant's name (in its manifest and logs)")
    p.add_argument("--dose", required=True, type=dose_arg, help="percent of the training facts, or `control`")
    p.add_argument("--seed", type=int, default=0, help="draws the facts and initialises the adapters")
    p.add_argument("--lora", required=True, type=json_arg, help="experiments.knowledge_dose.lora (JSON)")
    p.add_argument("--out", required=True, help="folder of the merged model (written whole or not at all)")
    add_threads(p)
    p.set_defaults(func=cmd_dose_train)

    p = sub.add_parser("dose-report", help="the dose-response tables, figure and summary of the variants' runs")
    p.add_argument("--settings", required=True, type=json_arg, help="experiments.knowledge_dose (JSON)")
    p.add_argument("--runs", required=True, type=json_arg,
                   help='JSON: variant -> {"probe"|"cascade"|"audio"|"no_audio": predictions file}')
    add_benchmark_source(p)
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_dose_report)
