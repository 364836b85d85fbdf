# Stage 1: probe text LLMs on the auditory-knowledge bank.

# Sharding (probe.shards, cascade.shards): with N > 1 a model's run is N jobs (scatter), each on
# whole batches of the unsharded run, writing .../shards/{name}.{shard}-of-N.jsonl; a merge job
# (gather) writes the unsharded run's file, byte for byte, so everything downstream is unchanged.
# With N = 1 the rules, their commands (so Snakemake's rerun triggers) and the jobs are as before.
from akb.probe.shards import shard_path, shard_paths

PROBE_SHARDS = config["probe"]["shards"]
PROBE_SHARD_OPTION = f" --shard {{wildcards.shard}}/{PROBE_SHARDS}" if PROBE_SHARDS > 1 else ""


wildcard_constraints:
    shard=r"\d+",


rule probe_model:
    """Every bank item (one shard's batches of them, if sharded) answered by one model (loaded once); resumable."""
    input:
        bank=BANK_FILE,
        model=model_files,
        ready=ancient(READINESS),
    output:
        shard_path("results/probe/{model}/{bank}.jsonl", PROBE_SHARDS),
    log:
        shard_path("logs/probe/{model}/{bank}.log", PROBE_SHARDS),
    params:
        model=model_json(),
        mode=lambda w: probe_settings(config, w.model)["mode"],
        batch_size=lambda w: probe_settings(config, w.model)["batch_size"],
        max_new_tokens=lambda w: probe_settings(config, w.model)["max_new_tokens"],
    threads: model_resource("threads", "probe")
    resources:
        gpu=model_resource("gpu", "probe"),
        mem_mb=model_resource("mem_mb", "probe"),
        runtime=model_resource("runtime", "probe"),
        slurm_partition=model_resource("slurm_partition", "probe"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb probe --bank {input.bank} --model {params.model:q} --mode {params.mode} "
        "--batch-size {params.batch_size} --max-new-tokens {params.max_new_tokens} "
        f"--threads {{threads}} --gpus {{resources.gpu}}{PROBE_SHARD_OPTION} --out {{output}} > {{log}} 2>&1"


if PROBE_SHARDS > 1:

    rule merge_probe_shards:
        """A model's probe shards, merged into the file one unsharded job writes (checked complete)."""
        input:
            bank=BANK_FILE,
            parts=shard_paths("results/probe/{model}/{bank}.jsonl", PROBE_SHARDS),
        output:
            "results/probe/{model}/{bank}.jsonl",
        log:
            "logs/probe/{model}/{bank}.log",
        conda:
            "../../envs/tables.yaml"
        shell:
            "python -m akb merge-shards --bank {input.bank} --parts {input.parts} --out {output} > {log} 2>&1"

    localrules:
        merge_probe_shards,


rule score_probe:
    """Accuracy overall, per category and per subcategory, with bootstrap intervals."""
    input:
        "results/probe/{model}/{bank}.jsonl",
    output:
        "results/probe/{model}/{bank}_scores.json",
    log:
        "logs/probe/{model}/{bank}_scores.log",
    params:
        resamples=config["probe"]["bootstrap_resamples"],
        confidence=config["probe"]["confidence"],
        seed=config["seed"],
    conda:
        "../../envs/tables.yaml"
    shell:
        "python -m akb score-probe --predictions {input} --model-name {wildcards.model} "
        "--resamples {params.resamples} --confidence {params.confidence} --seed {params.seed} "
        "--out {output} > {log} 2>&1"


rule probe_table:
    """Table 1 of the paper for the models probed here: Avg. (micro and AKB-2000-weighted) and per-category
    accuracy; the subcategories with n, interval and whether models differ beyond noise."""
    input:
        expand("results/probe/{model}/{{bank}}_scores.json", model=PROBE_MODELS),
    output:
        csv=report("results/tables/{bank}_probe.csv", caption="../report/probe_table.rst", category="Tables"),
        md="results/tables/{bank}_probe.md",
        tex="results/tables/{bank}_probe.tex",
        subcategories="results/tables/{bank}_probe_subcategories.csv",
        subcategories_md="results/tables/{bank}_probe_subcategories.md",
    log:
        "logs/tables/{bank}_probe.log",
    params:
        labels=model_labels(PROBE_MODELS),
        categories=" ".join(f"{c!r}" for c in CATEGORIES),
    conda:
        "../../envs/tables.yaml"
    shell:
        "python -m akb probe-table --scores {input} --labels {params.labels:q} "
        "--categories {params.categories} --out-stem results/tables/{wildcards.bank}_probe > {log} 2>&1"


localrules:
    prepare_bank,
    score_probe,
    probe_table,
