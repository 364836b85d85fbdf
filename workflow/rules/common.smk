# Config validation, lookups and target lists shared by every stage.
import json
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The library is importable here and in every job, installed or not.
WORKFLOW_DIR = Path(workflow.basedir) / "workflow"
sys.path.insert(0, str(WORKFLOW_DIR))

from akb.captioners.api import caption_prompt_path
from akb.captioners.file import caption_file_path
from akb.config import (
    CPU_ONLY_CAPTIONER_BACKENDS, CPU_ONLY_MODEL_BACKENDS, ConfigError, cascade_pairs, grounded_settings, job_resources,
    job_settings, knowledge_dose_problem, main_captioner, model_entry, packaged_model_dir, probe_settings,
    stage_entry, stage_resources, validate_config, without_scheduling,
)
from akb.data.bank import resolve_source, taxonomy_categories
from akb.data.desta_aqa import is_hub_source
from akb.data.hf_bench import METADATA_NAME as HF_METADATA_NAME, is_hf_source
from akb.data.fetch import fetch_paths
from akb.diagnostics.conditions import BACKBONE, FULL, NONE, PROTOCOL_CONDITIONS
from akb.job_env import prepare_job_environment
from akb.knowledge_dose.variants import backbone_dir, variants as dose_variants
from akb.models.base import ModelSpec
from akb.report.study import scatter_stem

prepare_job_environment(WORKFLOW_DIR)

try:
    _validated = validate_config(config)
except ConfigError as error:
    raise WorkflowError(str(error))
config.clear()
config.update(_validated)

# SLURM partitions (resources.slurm_partition): jobs that load no model need no GPU; "" is the
# cluster's default partition.
PARTITIONS = config["partitions"]
CPU_PARTITION = PARTITIONS["cpu"] or ""

BANK = config["bank"]["name"]
BANK_FILE = f"resources/banks/{BANK}.jsonl"
BANK_LABEL = config["bank"]["display_name"] or BANK
CATEGORIES = taxonomy_categories()


ALL_MODELS = [m["name"] for m in config["models"]]
PROBE_MODELS = config["probe"]["models"] or ALL_MODELS

# The cascade runs when audio benchmarks and captioners are configured.
AUDIO_BENCHMARKS = {b["name"]: b for b in config["audio_benchmarks"]}
CAPTIONERS = {c["name"]: c for c in config["captioners"]}
# (captioner, model) pairs: a captioner may name the LLMs its captions go to (the paper's pairings).
CASCADE_PAIRS = cascade_pairs(config)
CASCADE_MODELS = list(dict.fromkeys(m for _, m in CASCADE_PAIRS))
MAIN_CAPTIONER = main_captioner(config)
SYNTHETIC_DIR = "resources/synthetic"

# The audio-grounded stage: each backbone becomes an audio LLM evaluated on these benchmarks.
GROUNDED = config["grounded"]
GROUNDED_MODELS = GROUNDED["backbones"]
GROUNDED_BENCHMARKS = (GROUNDED["benchmarks"] or list(AUDIO_BENCHMARKS)) if GROUNDED_MODELS else []
# DeSTA-AQA5M seeds (grounded.distill.desta_aqa): converted by convert_desta_seeds, replacing `seeds`.
DESTA_AQA = GROUNDED["distill"].get("desta_aqa")
DESTA_SEEDS = "resources/desta_aqa/seeds.jsonl"

# The knowledge-dose experiment (`snakemake knowledge_dose`, rules/knowledge_dose.smk): its variants
# of one backbone are models to every stage's rules; a trained one's weights come from dose_backbone.
# A config that no longer declares what it names (the demo's synthetic suite replaced by MMAU, say)
# runs the study as usual; `snakemake knowledge_dose` then reports why the experiment cannot run.
DOSE_PROBLEM = knowledge_dose_problem(config)
DOSE = None if DOSE_PROBLEM else config["experiments"]["knowledge_dose"]
DOSE_VARIANTS = {v.name: v for v in dose_variants(DOSE)} if DOSE else {}


def imported_benchmark_dir(name):
    """Where a Hugging Face copy of benchmark `name` is written in the official layout."""
    return f"resources/benchmarks/{name}"


def audio_benchmark_file(name):
    source = AUDIO_BENCHMARKS[name]["source"]
    if source == "synthetic":
        return f"{SYNTHETIC_DIR}/test.json"
    imported = is_hf_source(source, AUDIO_BENCHMARKS[name]["kind"])
    return f"{imported_benchmark_dir(name)}/{HF_METADATA_NAME}" if imported else source


def fetched_benchmark_paths(name):
    """The metadata file and clip folder the fetch job of benchmark `name` writes."""
    entry = AUDIO_BENCHMARKS[name]
    return fetch_paths(entry["source"], entry["fetch"])


def audio_benchmark_inputs(wildcards):
    """The generated suite's directory, or a user's benchmark file once it exists (a missing one
    is reported by the job, so the study can be planned without it)."""
    if AUDIO_BENCHMARKS[wildcards.benchmark]["source"] == "synthetic":
        return [SYNTHETIC_DIR]
    if is_hf_source(AUDIO_BENCHMARKS[wildcards.benchmark]["source"], AUDIO_BENCHMARKS[wildcards.benchmark]["kind"]):
        return [imported_benchmark_dir(wildcards.benchmark)]
    if AUDIO_BENCHMARKS[wildcards.benchmark]["fetch"]:  # always: so the fetch job is planned
        return [str(p) for p in fetched_benchmark_paths(wildcards.benchmark)]
    path = audio_benchmark_file(wildcards.benchmark)
    return [path] if Path(path).is_file() else []


def audio_benchmark_args(wildcards):
    entry = AUDIO_BENCHMARKS[wildcards.benchmark]
    root = f" --audio-root {entry['audio_root']}" if entry["audio_root"] else ""
    # Only when on: the jobs of entries without it keep their parameters (no rerun).
    outside = " --allow-outside-root" if entry.get("allow_outside_root") else ""
    return (f"--benchmark {audio_benchmark_file(wildcards.benchmark)} --kind {entry['kind']} "
            f"--on-bad-item {entry['on_bad_item']}{root}{outside}")


def audio_benchmark_label(name):
    return AUDIO_BENCHMARKS[name]["display_name"] or name


def captioner_entry(name):
    return CAPTIONERS[name]


def captioner_json(wildcards):
    entry = job_settings(CAPTIONERS[wildcards.captioner])  # scheduling only: changing it must not rerun the captions
    entry.pop("models", None)  # who reads the captions does not change them
    if entry["backend"] == "file":
        entry["path"] = str(caption_file_path(entry["path"], wildcards.benchmark))
    return json.dumps(entry)


def captioner_files(wildcards):
    """What a captioner reads besides the audio: a user's caption file (edits rerun the rule), or a
    local model directory (one the workflow builds from a PyPI package, or the user's)."""
    entry = CAPTIONERS[wildcards.captioner]
    if entry["backend"] == "file":  # a missing file is reported by the job, so the study can be planned
        path = json.loads(captioner_json(wildcards))["path"]
        return [path] if Path(path).is_file() else []
    if entry["backend"] == "api":  # its prompt file (editing it re-asks every clip); `source` is a model id
        path = caption_prompt_path(entry)
        return [str(path)] if path is not None and path.is_file() else []
    return local_model_files(entry.get("source"))


def local_model_files(source):
    """A model source as a job input when it is a directory: one the workflow builds from a PyPI
    package (resources/models/...) or the user's; a hub id is fetched by transformers instead."""
    if source and (source.startswith("resources/models/") or Path(source).exists()):
        return [source]
    return []


def cascade_score_files():
    return [f"results/cascade/{c}/{m}/{b}_scores.json" for c, m in CASCADE_PAIRS for b in AUDIO_BENCHMARKS]


def model_json(wildcard="model"):
    """The entry of the model named by `wildcard` as its jobs' parameters, the same in every stage:
    without its resources, so that raising a job's memory or runtime reruns no finished job. The
    loader learns the job's GPUs from the command (`--gpus {resources.gpu}`)."""
    return lambda wildcards: json.dumps(job_settings(model_entry(config, wildcards[wildcard])))


def model_resource(key, stage, wildcard="model"):
    """gpu, mem_mb, runtime, threads or slurm_partition of a model's jobs in one stage
    (models[].resources; partitions)."""

    def resource(wildcards):
        entry = stage_entry(config, wildcards[wildcard], stage)
        return job_resources(entry["resources"], PARTITIONS, entry["backend"] in CPU_ONLY_MODEL_BACKENDS)[key]

    return resource


def captioner_resource(key):
    def resource(wildcards):
        entry = CAPTIONERS[wildcards.captioner]
        return job_resources(entry["resources"], PARTITIONS, entry["backend"] in CPU_ONLY_CAPTIONER_BACKENDS)[key]

    return resource


def model_files(wildcards):
    """The model folder a job must wait for: a packaged model's conversion, a dosed backbone's training."""
    variant = DOSE_VARIANTS.get(wildcards.model)
    if variant is not None and variant.trained:
        return [backbone_dir(variant.name)]
    return packaged_model_dir(config, wildcards.model)


def model_labels(names):
    specs = [ModelSpec.from_config(model_entry(config, n)) for n in names]
    return json.dumps({s.name: {"label": s.label, "family": s.family, "group": s.group} for s in specs})


# Diagnostics: every condition of the published protocol (plus optional extras) per audio LLM.
DIAGNOSED_MODELS = config["diagnostics"]["models"]
DIAGNOSED_BENCHMARKS = (config["diagnostics"]["benchmarks"] or GROUNDED_BENCHMARKS) if DIAGNOSED_MODELS else []
DIAGNOSTIC_CONDITIONS = [c for c in PROTOCOL_CONDITIONS if c != FULL] + config["diagnostics"]["extra_conditions"]
DIAGNOSTICS_TABLES = expand("results/tables/diagnostics_{name}.{ext}",
                            name=["accuracy", "metrics", "benchmarks", "items", "reliance"], ext=["csv", "md"])

# All That Glitters (docs/glitters.md): the published audio LLMs (audio_llms) answer every benchmark
# under every protocol condition, `backbone` through their text backbone; their answers are judged
# when diagnostics.judge is set; the same `akb diagnose` tables then cover them.
AUDIO_LLMS = {a["name"]: a for a in config["audio_llms"]}
AUDIO_LLM_BENCHMARKS = (config["diagnostics"]["benchmarks"] or list(AUDIO_BENCHMARKS)) if AUDIO_LLMS else []
AUDIO_LLM_CONDITIONS = [*PROTOCOL_CONDITIONS, *config["diagnostics"]["extra_conditions"]] if AUDIO_LLMS else []
JUDGE = config["diagnostics"]["judge"]
GLITTERS_COMPARISON = expand("results/tables/glitters_comparison.{ext}", ext=["csv", "md", "tex", "png", "pdf"])
# Both kinds of run are written under results/diagnostics/{name}/ (config.py refuses a shared name).


def audio_llm_run(audio_llm, benchmark, condition, judged=False):
    """Predictions of one audio LLM under one condition (or the judge's rows for them)."""
    return f"results/diagnostics/{audio_llm}/{benchmark}/{condition}{'.judged' if judged else ''}.jsonl"


def audio_llm_json(wildcards):
    # Without its resources: where and how long the job runs is no parameter of its answers.
    return json.dumps(job_settings(AUDIO_LLMS[wildcards.audio_llm]))


def text_backbone_option(wildcards):
    """`--text-backbone <entry>` for the backbone condition (the question alone to the audio LLM's
    text LLM, its models[] entry without resources: the job's are its diagnose stage's, see
    audio_llm_resource); nothing for the others."""
    if wildcards.condition != BACKBONE:
        return ""
    name = AUDIO_LLMS[wildcards.audio_llm]["text_backbone"]
    return f"--text-backbone {shlex.quote(json.dumps(job_settings(model_entry(config, name))))}"


def audio_llm_max_new_tokens(wildcards):
    """The benchmark's budget (diagnostics.max_new_tokens), or the entry's own where that is larger
    (a thinking model's 4,096) or the benchmark has none."""
    own = AUDIO_LLMS[wildcards.audio_llm]["max_new_tokens"]
    return max(own, config["diagnostics"]["max_new_tokens"].get(wildcards.benchmark, own))


def audio_llm_resource(key):
    """gpu, mem_mb, runtime, threads or slurm_partition of an audio LLM job: its entry's resources
    (no GPU for an api one); the backbone condition loads the text backbone alone, so its jobs take
    that models[] entry's diagnose resources."""

    def resource(wildcards):
        entry = AUDIO_LLMS[wildcards.audio_llm]
        if wildcards.condition == BACKBONE:
            entry = stage_entry(config, entry["text_backbone"], "diagnose")
            return job_resources(entry["resources"], PARTITIONS, entry["backend"] in CPU_ONLY_MODEL_BACKENDS)[key]
        return job_resources(entry["resources"], PARTITIONS, entry["backend"] == "api")[key]

    return resource


def diagnosed_labels():
    """Labels of every diagnosed model: the project's audio LLMs (by their backbone) and the
    published ones (display_name, which the comparison with All That Glitters matches)."""
    labels = json.loads(model_labels(DIAGNOSED_MODELS))
    labels |= {a: {"label": e.get("display_name") or a, "family": "", "group": "open"} for a, e in AUDIO_LLMS.items()}
    return json.dumps(labels)


def diagnostics_runs():
    """(model, benchmark, condition, predictions) of every run the diagnostics read; `full` is the
    grounded evaluation itself."""
    runs = []
    for m in DIAGNOSED_MODELS:
        for b in DIAGNOSED_BENCHMARKS:
            runs.append({"model": m, "benchmark": b, "condition": FULL, "path": f"results/grounded/{m}/{b}.jsonl"})
            runs += [{"model": m, "benchmark": b, "condition": c, "path": f"results/diagnostics/{m}/{b}/{c}.jsonl"}
                     for c in DIAGNOSTIC_CONDITIONS]
    for a in AUDIO_LLMS:  # All That Glitters: every condition is a run of its own, `full` included
        for b in AUDIO_LLM_BENCHMARKS:
            for c in AUDIO_LLM_CONDITIONS:
                run = {"model": a, "benchmark": b, "condition": c, "path": audio_llm_run(a, b, c)}
                runs.append({**run, "judged": audio_llm_run(a, b, c, judged=True)} if JUDGE else run)
    return runs


def diagnostics_inputs():
    """The prediction files `akb diagnose` reads, and the judge's rows where it judges."""
    return [path for run in diagnostics_runs() for path in (run["path"], run.get("judged")) if path]


def diagnostics_benchmarks_json():
    return json.dumps({
        b: {"file": audio_benchmark_file(b), "kind": AUDIO_BENCHMARKS[b]["kind"],
            "audio_root": AUDIO_BENCHMARKS[b]["audio_root"], "on_bad_item": AUDIO_BENCHMARKS[b]["on_bad_item"],
            "label": audio_benchmark_label(b),
            **({"allow_outside_root": True} if AUDIO_BENCHMARKS[b].get("allow_outside_root") else {})}
        for b in dict.fromkeys(DIAGNOSED_BENCHMARKS + AUDIO_LLM_BENCHMARKS)
    })


def diagnostics_outputs():
    tables = DIAGNOSTICS_TABLES if DIAGNOSED_MODELS or AUDIO_LLMS else []
    return [*tables, *(GLITTERS_COMPARISON if AUDIO_LLMS else [])]


def grounded_of(name):
    """`grounded` as model `name`'s audio LLM is built (a knowledge-dose variant's has its overrides)."""
    return grounded_settings(config, name) if name in DOSE_VARIANTS else GROUNDED


def grounded_value(*keys):
    """A parameter of a job: one `grounded` setting of the job's model (e.g. ("distill", "batch_size"))."""

    def value(wildcards):
        node = grounded_of(wildcards.model)
        for key in keys:
            node = node[key]
        return node

    return value


def grounded_json(wildcards):
    # `transcribe` is the transcription jobs' alone: changing its batch size or resources reruns nothing.
    # So is `distill.desta_aqa` the conversion's: its seeds reach training through the distilled rows.
    # And `distill.shards` only splits the distillation into jobs (the merged rows are the same).
    settings = {k: v for k, v in grounded_of(wildcards.model).items() if k != "transcribe"}
    settings["distill"] = {k: v for k, v in settings["distill"].items() if k not in ("desta_aqa", "shards")}
    return json.dumps(settings)


# Data-parallel training (akb.lalm.parallel): a backbone whose training asks for more than one GPU
# (models[].resources.train.gpu, per node; .nodes, default 1) trains in one process per GPU, all
# launched by torchrun; each global batch is batch_size x grad_accum x GPUs x nodes samples (see
# akb.lalm.train). Its own rule, so train_lalm, its command and its finished jobs stay as they were.
def lalm_train_shape(name):
    """(GPUs per node, nodes) of a backbone's training job."""
    resources = stage_entry(config, name, "train")["resources"]
    return resources["gpu"], resources.get("nodes", 1)


PARALLEL_TRAINED = [m for m in GROUNDED_MODELS if max(lalm_train_shape(m)) > 1]


def lalm_launcher(wildcards):
    """torchrun on one node; on several, one torchrun per node (srun, inside the SLURM job), meeting
    at the job's first node, where this command runs."""
    gpus, nodes = lalm_train_shape(wildcards.model)
    per_node = max(gpus, 1)
    if nodes == 1:
        return f"torchrun --standalone --nproc-per-node {per_node}"
    return (f"srun --nodes {nodes} --ntasks {nodes} --ntasks-per-node 1 --gpus-per-node {per_node} "
            f"--kill-on-bad-exit 1 torchrun --nnodes {nodes} --nproc-per-node {per_node} --rdzv-backend c10d "
            '--rdzv-id "$SLURM_JOB_ID" --rdzv-endpoint "$(hostname):29500"')


def grounded_seed_inputs(wildcards):
    seeds = GROUNDED["distill"]["seeds"]
    if DESTA_AQA:
        return [DESTA_SEEDS]
    if seeds == "synthetic":
        return [SYNTHETIC_DIR]
    return [seeds] if Path(seeds).is_file() else []  # a missing file is reported by the job


def grounded_seed_file():
    seeds = GROUNDED["distill"]["seeds"]
    if DESTA_AQA:
        return DESTA_SEEDS
    return f"{SYNTHETIC_DIR}/train.json" if seeds == "synthetic" else seeds


def desta_aqa_args(wildcards):
    """`akb convert-desta-seeds` options from grounded.distill.desta_aqa."""
    s = DESTA_AQA
    args = [f"--source {shlex.quote(s['source'])}", f"--audio-roots {shlex.quote(json.dumps(s['audio_roots']))}",
            f"--on-missing {s['on_missing']}", f"--sample-seed {s['sample_seed']}"]
    if s["data_files"]:
        args.append("--data-files " + " ".join(map(shlex.quote, s["data_files"])))
    if s["revision"]:
        args.append(f"--revision {shlex.quote(s['revision'])}")
    if s["max_rows"]:
        args.append(f"--max-rows {s['max_rows']}")
    if s["per_dataset_max"]:
        args.append(f"--per-dataset-max {shlex.quote(json.dumps(s['per_dataset_max']))}")
    return " ".join(args)


def desta_aqa_inputs(wildcards):
    # A local copy of the rows is an input (edited or replaced, the seeds are converted again).
    return [DESTA_AQA["source"]] if DESTA_AQA and Path(DESTA_AQA["source"]).exists() else []


def desta_aqa_local():
    # Streaming from the hub runs where snakemake runs: cluster compute nodes often cannot reach it.
    return bool(DESTA_AQA) and is_hub_source(DESTA_AQA["source"])


def grounded_encoder_files(wildcards):
    return local_model_files(GROUNDED["encoder"]["source"])


# Whisper transcripts (use_transcript) depend on the encoder and the audio alone: one file for the
# training clips and one per (benchmark, condition with audio), read by every backbone's jobs.
TRANSCRIBE = GROUNDED["transcribe"]
TRAIN_TRANSCRIPTS = "results/transcripts/train.jsonl"
TRANSCRIBED_CONDITIONS = [FULL, *(c for c in DIAGNOSTIC_CONDITIONS if c not in (NONE, BACKBONE))]


def transcript_file(wildcards):
    """The transcripts a training (no benchmark), evaluation or diagnostics job reads; None when
    it reads none (use_transcript off, or a condition without audio)."""
    if not GROUNDED["use_transcript"]:
        return None
    if not hasattr(wildcards, "benchmark"):
        return TRAIN_TRANSCRIPTS
    condition = getattr(wildcards, "condition", FULL)
    return f"results/transcripts/{wildcards.benchmark}/{condition}.jsonl" if condition in TRANSCRIBED_CONDITIONS else None


def transcript_inputs(wildcards):
    path = transcript_file(wildcards)
    return [path] if path else []


def transcript_option(wildcards):
    path = transcript_file(wildcards)
    return f"--transcripts {path}" if path else ""


def transcribe_batch_size(training):
    """A transcription job's `--batch-size` value, followed by the DeSTA2.5 options that are set
    (--seed-transcripts for the training clips, --vad): configs that set neither run exactly the
    commands they ran before the options existed, so their finished jobs are not rerun."""
    options = ["--seed-transcripts"] if training and TRANSCRIBE.get("seed_transcripts") else []
    options += ["--vad"] if TRANSCRIBE.get("vad") else []
    return " ".join([str(TRANSCRIBE["batch_size"]), *options]) if options else TRANSCRIBE["batch_size"]


def transcribe_resource(key, job):
    """gpu, mem_mb, runtime, threads or slurm_partition of a transcription job; `train`, the
    training clips' job, takes grounded.transcribe.resources.train over them."""
    return job_resources(stage_resources(TRANSCRIBE["resources"], job, ("train",)), PARTITIONS)[key]


def with_prompt_style(mode, stage, grounded=GROUNDED):
    """A cascade or evaluation job's `--mode` value, followed by `--prompt-style` unless the style is
    the default: configs that leave the style out run exactly the commands they ran before it
    existed, so their finished jobs are not rerun."""
    style = config["cascade"]["prompt_style"]
    if stage == "evaluate":
        style = grounded["evaluate"].get("prompt_style") or style
    return mode if style == "lettered" else f"{mode} --prompt-style {style}"


def cascade_mode(wildcards):
    return with_prompt_style(probe_settings(config, wildcards.model)["mode"], "cascade")


def grounded_mode(wildcards):
    return grounded_of(wildcards.model)["evaluate"]["mode"] or probe_settings(config, wildcards.model)["mode"]


def distill_question_mode(wildcards):
    """`akb distill`'s --question-mode value, followed by `--own-prompt replace` when that is set
    (DeSTA2.5: a seed row's own prompt alone): configs without it run the command they ran before."""
    mode = grounded_mode(wildcards)
    return f"{mode} --own-prompt replace" if grounded_of(wildcards.model)["distill"].get("own_prompt") == "replace" else mode


def evaluate_mode(wildcards):
    return with_prompt_style(grounded_mode(wildcards), "evaluate", grounded_of(wildcards.model))


def grounded_score_files(kind="scores"):
    return expand("results/grounded/{model}/{benchmark}_{kind}.json", model=GROUNDED_MODELS,
                  benchmark=GROUNDED_BENCHMARKS, kind=kind)


def grounded_outputs():
    return [*grounded_score_files(), "results/tables/grounded.csv"] if GROUNDED_MODELS else []


def probe_outputs():
    return [
        *expand("results/probe/{model}/{bank}_scores.json", model=PROBE_MODELS, bank=BANK),
        *expand("results/tables/{bank}_probe.{ext}", bank=BANK, ext=["csv", "md", "tex"]),
    ]


# Figure 2 for this run needs two headline metrics: the bank's, and one per cascade benchmark.
HEADLINE_FIGURES = (
    {
        "headline_correlations": "results/figures/correlations.csv",
        "headline_heatmap": report(
            "results/figures/correlations_heatmap.png",
            caption=str(WORKFLOW_DIR / "report/correlations.rst"),
            category="Figures",
        ),
        "headline_heatmap_pdf": "results/figures/correlations_heatmap.pdf",
    }
    if CASCADE_MODELS
    else {}
)


# Figure 3 for this run: cascade against audio-grounded accuracy per domain, per benchmark and
# captioner, for the captioners whose captions at least one grounded backbone answered from.
SCATTER_FIGURES = {
    f"scatter_{b}_{c}": report(
        f"results/figures/{scatter_stem(audio_benchmark_label(b), c)}.png",
        caption=str(WORKFLOW_DIR / "report/scatter.rst"),
        category="Figures",
    )
    for b in GROUNDED_BENCHMARKS
    for c in dict.fromkeys(c for c, m in CASCADE_PAIRS if m in GROUNDED_MODELS)
}


def cascade_outputs():
    return [*cascade_score_files(), "results/tables/cascade.csv"] if CASCADE_MODELS else []


def figure_outputs():
    return [
        *HEADLINE_FIGURES.values(),
        *SCATTER_FIGURES.values(),
        "results/tables/metrics.csv",
        "results/figures/category_correlations_heatmap.png",
        "results/figures/paper_comparison.png",
        "results/paper/correlations_heatmap.png",
    ]


def study_outputs():
    """Every target of the default run but results/provenance.json, which is written after them."""
    return [*probe_outputs(), *cascade_outputs(), *grounded_outputs(), *diagnostics_outputs(), *figure_outputs()]


def synthetic_suite_inputs():
    """The synthetic suite's folder when this run uses it: as a benchmark or as the grounded seeds."""
    as_benchmark = any(b["source"] == "synthetic" for b in AUDIO_BENCHMARKS.values())
    as_seeds = bool(GROUNDED_MODELS) and SYNTHETIC_DIR in grounded_seed_inputs(None)
    return [SYNTHETIC_DIR] if as_benchmark or as_seeds else []


def _one_of(names):
    return "|".join(map(re.escape, names)) if names else "(?!)"


wildcard_constraints:
    bank=BANK,
    model=_one_of(sorted(set(PROBE_MODELS) | set(CASCADE_MODELS) | set(GROUNDED_MODELS) | set(DOSE_VARIANTS))),
    benchmark=_one_of(list(AUDIO_BENCHMARKS)),
    captioner=_one_of(list(CAPTIONERS)),
    condition=_one_of(list(dict.fromkeys((DIAGNOSTIC_CONDITIONS if DIAGNOSED_MODELS else ["none"])
                                         + AUDIO_LLM_CONDITIONS))),
    audio_llm=_one_of(list(AUDIO_LLMS)),


def bank_source_files(wildcards):
    """A local bank file (the shipped one included) is tracked as an input, so editing it reruns
    what depends on it; a missing one (or a dataset id) is reported by prepare-bank when the job
    runs, so the study can be planned without it."""
    source = resolve_source(config["bank"]["source"])
    return [source] if Path(source).is_file() else []


# The knowledge-dose experiment's inputs (rules/knowledge_dose.smk).
from types import SimpleNamespace

from akb.knowledge_dose.corpus import AUDITORY_GLOB, CONTROL_FILE, corpus_dir

DOSE_DIR = "results/knowledge_dose"
DOSE_BENCHMARK = SimpleNamespace(benchmark=DOSE["benchmark"]) if DOSE else None  # as the benchmark rules' wildcards
DOSE_TABLES = expand(f"{DOSE_DIR}/{{name}}.{{ext}}", name=["accuracy", "effects"], ext=["csv", "md"])
DOSE_OUTPUTS = [*DOSE_TABLES, f"{DOSE_DIR}/families.csv", f"{DOSE_DIR}/summary.md", f"{DOSE_DIR}/dose_response.png",
                f"{DOSE_DIR}/dose_response.pdf"] if DOSE else []


def dose_corpus_files(wildcards=None):
    """The corpus files (edited, every trained variant and the report rerun); a missing folder is
    reported by the job."""
    folder = corpus_dir(DOSE["corpus"])
    return [str(p) for p in [*sorted(folder.glob(AUDITORY_GLOB)), folder / CONTROL_FILE] if p.is_file()]


def dose_runs():
    """variant -> evaluation -> the predictions file the study's rules write for it."""
    benchmark, captioner = DOSE["benchmark"], DOSE["captioner"]
    return {v: {"probe": f"results/probe/{v}/{BANK}.jsonl",
                "cascade": f"results/cascade/{captioner}/{v}/{benchmark}.jsonl",
                "audio": f"results/grounded/{v}/{benchmark}.jsonl",
                "no_audio": f"results/diagnostics/{v}/{benchmark}/{NONE}.jsonl"} for v in DOSE_VARIANTS}


def dose_train_resource(key):
    """A dosed backbone's training resources: the backbone's (models[].resources.train over its shared
    ones) with experiments.knowledge_dose.resources laid over them."""

    def resource(wildcards):
        entry = stage_entry(config, wildcards.variant, "train")  # the backbone's, with the experiment's resources
        return job_resources(entry["resources"], PARTITIONS)[key]

    return resource

