# Stage 4: does a benchmark (and a model) need the audio? Each audio LLM answers every question with
# no audio, from its text backbone alone, and from each fragment of the clip; then the text-prior,
# retention and item-decomposition tables and figures.


rule diagnose_condition:
    """One condition of the protocol for one audio LLM and benchmark (resumable)."""
    input:
        audio_benchmark_inputs,
        grounded_encoder_files,
        transcript_inputs,
        validation="results/benchmarks/{benchmark}/validation.json",
        checkpoint="results/grounded/{model}/checkpoint",
        model=model_files,
        ready=ancient(READINESS),
    output:
        "results/diagnostics/{model}/{benchmark}/{condition}.jsonl",
    log:
        "logs/diagnostics/{model}/{benchmark}/{condition}.log",
    params:
        args=audio_benchmark_args,
        model=model_json("diagnose"),
        grounded=grounded_json(),
        mode=evaluate_mode,
        batch_size=GROUNDED["evaluate"]["batch_size"],
        max_new_tokens=GROUNDED["evaluate"]["max_new_tokens"],
        min_samples=config["diagnostics"]["min_fragment_samples"],
        transcripts=transcript_option,
    threads: model_resource("threads", "diagnose")
    resources:
        gpu=model_resource("gpu", "diagnose"),
        mem_mb=model_resource("mem_mb", "diagnose"),
        runtime=model_resource("runtime", "diagnose"),
        slurm_partition=model_resource("slurm_partition", "diagnose"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb evaluate {params.args} --checkpoint {input.checkpoint} --model {params.model:q} "
        "--grounded {params.grounded:q} --condition {wildcards.condition} --min-fragment-samples {params.min_samples} "
        "{params.transcripts} "
        "--mode {params.mode} --batch-size {params.batch_size} --max-new-tokens {params.max_new_tokens} "
        "--threads {threads} --out {output} > {log} 2>&1"


rule diagnostics_tables:
    """Text prior, retention per N, item decomposition (and, on the synthetic suite, agreement with
    what each item was built to need): tables and figures."""
    input:
        [run["path"] for run in diagnostics_runs()],
    output:
        report("results/tables/diagnostics_metrics.csv", caption="../report/diagnostics.rst", category="Diagnostics"),
        [t for t in DIAGNOSTICS_TABLES if t != "results/tables/diagnostics_metrics.csv"],
        figures=report(directory("results/figures/diagnostics"), patterns=["{name}.png"], category="Diagnostics"),
    log:
        "logs/diagnostics/tables.log",
    params:
        runs=json.dumps(diagnostics_runs()),
        benchmarks=diagnostics_benchmarks_json(),
        labels=model_labels(DIAGNOSED_MODELS),
        resamples=config["probe"]["bootstrap_resamples"],
        seed=config["seed"],
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m akb diagnose --runs {params.runs:q} --benchmarks {params.benchmarks:q} --labels {params.labels:q} "
        "--tables-dir results/tables --figures-dir {output.figures} --resamples {params.resamples} "
        "--seed {params.seed} > {log} 2>&1"


# Bookkeeping: prediction files in, tables and figures out; where snakemake runs.
localrules:
    diagnostics_tables,
