# Stage 1: probe text LLMs on the auditory-knowledge bank.


rule probe_model:
    """Every bank item answered by one model (loaded once); resumes after an interruption."""
    input:
        bank=BANK_FILE,
        model=model_files,
    output:
        "results/probe/{model}/{bank}.jsonl",
    log:
        "logs/probe/{model}/{bank}.log",
    params:
        model=model_json,
        mode=lambda w: probe_settings(config, w.model)["mode"],
        batch_size=lambda w: probe_settings(config, w.model)["batch_size"],
        max_new_tokens=lambda w: probe_settings(config, w.model)["max_new_tokens"],
    threads: model_threads
    resources:
        gpu=model_resource("gpu"),
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb probe --bank {input.bank} --model {params.model:q} --mode {params.mode} "
        "--batch-size {params.batch_size} --max-new-tokens {params.max_new_tokens} "
        "--threads {threads} --out {output} > {log} 2>&1"


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
    """Table 1 of the paper for the models probed here: Avg. and per-category accuracy."""
    input:
        expand("results/probe/{model}/{{bank}}_scores.json", model=PROBE_MODELS),
    output:
        csv=report("results/tables/{bank}_probe.csv", caption="../report/probe_table.rst", category="Tables"),
        md="results/tables/{bank}_probe.md",
        tex="results/tables/{bank}_probe.tex",
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
