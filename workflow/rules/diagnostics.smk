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
        model=model_json(),
        grounded=grounded_json,
        mode=evaluate_mode,
        batch_size=grounded_value("evaluate", "batch_size"),
        max_new_tokens=grounded_value("evaluate", "max_new_tokens"),
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
        "--threads {threads} --gpus {resources.gpu} --out {output} > {log} 2>&1"


rule evaluate_audio_llm:
    """All That Glitters: one condition for one published audio LLM and benchmark (resumable); the
    backbone condition asks its text backbone alone."""
    input:
        audio_benchmark_inputs,
        validation="results/benchmarks/{benchmark}/validation.json",
        ready=ancient(READINESS),
    output:
        "results/diagnostics/{audio_llm}/{benchmark}/{condition}.jsonl",
    log:
        "logs/diagnostics/{audio_llm}/{benchmark}/{condition}.log",
    params:
        args=audio_benchmark_args,
        audio_llm=audio_llm_json,
        backbone=text_backbone_option,
        max_new_tokens=audio_llm_max_new_tokens,
        batch_size=lambda w: AUDIO_LLMS[w.audio_llm]["batch_size"],
        min_samples=config["diagnostics"]["min_fragment_samples"],
    threads: audio_llm_resource("threads")
    resources:
        gpu=audio_llm_resource("gpu"),
        mem_mb=audio_llm_resource("mem_mb"),
        runtime=audio_llm_resource("runtime"),
        slurm_partition=audio_llm_resource("slurm_partition"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb evaluate-audio-llm {params.args} --audio-llm {params.audio_llm:q} "
        "--condition {wildcards.condition} {params.backbone} --min-fragment-samples {params.min_samples} "
        "--prompt-style glitters --max-new-tokens {params.max_new_tokens} --batch-size {params.batch_size} "
        "--threads {threads} --gpus {resources.gpu} --out {output} > {log} 2>&1"


rule judge_audio_llm:
    """The judge (diagnostics.judge) reads the answers of one audio LLM run that the rules cannot;
    an API job: no GPU, requests cached, resumable."""
    input:
        audio_benchmark_inputs,
        validation="results/benchmarks/{benchmark}/validation.json",
        predictions="results/diagnostics/{audio_llm}/{benchmark}/{condition}.jsonl",
    output:
        "results/diagnostics/{audio_llm}/{benchmark}/{condition}.judged.jsonl",
    log:
        "logs/diagnostics/{audio_llm}/{benchmark}/{condition}.judge.log",
    params:
        args=audio_benchmark_args,
        judge=lambda w: json.dumps(job_settings(JUDGE)),
        version=config["diagnostics"]["judge_prompt_version"],
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=240,
        slurm_partition=CPU_PARTITION,
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb judge {params.args} --predictions {input.predictions} --judge {params.judge:q} "
        "--prompt-version {params.version} --out {output} > {log} 2>&1"


rule glitters_comparison:
    """A diagnostics run of the published audio LLMs beside All That Glitters' Table 1."""
    input:
        "results/tables/diagnostics_metrics.csv",
    output:
        csv=report("results/tables/glitters_comparison.csv", caption="../report/glitters_comparison.rst",
                   category="Diagnostics"),
        md="results/tables/glitters_comparison.md",
        tex="results/tables/glitters_comparison.tex",
        png="results/tables/glitters_comparison.png",
        pdf="results/tables/glitters_comparison.pdf",
    log:
        "logs/diagnostics/glitters_comparison.log",
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m akb glitters-comparison --metrics {input} --out-stem results/tables/glitters_comparison > {log} 2>&1"


rule diagnostics_tables:
    """Text prior, retention per N, item decomposition (and, on the synthetic suite, agreement with
    what each item was built to need): tables and figures."""
    input:
        diagnostics_inputs(),
    output:
        report("results/tables/diagnostics_metrics.csv", caption="../report/diagnostics.rst", category="Diagnostics"),
        [t for t in DIAGNOSTICS_TABLES if t != "results/tables/diagnostics_metrics.csv"],
        figures=report(directory("results/figures/diagnostics"), patterns=["{name}.png"], category="Diagnostics"),
    log:
        "logs/diagnostics/tables.log",
    params:
        runs=json.dumps(diagnostics_runs()),
        benchmarks=diagnostics_benchmarks_json(),
        labels=diagnosed_labels(),
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
    glitters_comparison,
