# Stage 2: the cascade. A captioner describes each clip; a text LLM answers from the description.

CASCADE_SHARDS = config["cascade"]["shards"]  # see probe.smk for sharding
CASCADE_SHARD_OPTION = f" --shard {{wildcards.shard}}/{CASCADE_SHARDS}" if CASCADE_SHARDS > 1 else ""


rule generate_synthetic:
    """The synthetic audio suite (MMAU format, 16 kHz WAV), deterministic from its seed."""
    output:
        directory("resources/synthetic"),
    log:
        "logs/resources/synthetic.log",
    params:
        seed=config["synthetic"]["seed"],
        n_test=config["synthetic"]["n_test"],
        n_train=config["synthetic"]["n_train"],
        engine=config["synthetic"]["speech_engine"],
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        "../../envs/audio.yaml"
    shell:
        "python -m akb generate-synthetic --out-dir {output} --seed {params.seed} --n-test {params.n_test} "
        "--n-train {params.n_train} --speech-engine {params.engine} > {log} 2>&1"


rule import_hf_benchmark:
    """A Hugging Face copy of an audio benchmark (audio embedded in parquet) in the official layout.
    It runs where snakemake runs (localrule), as the fetch jobs do: compute nodes often cannot reach the hub."""
    output:
        directory("resources/benchmarks/{benchmark}"),
    log:
        "logs/benchmarks/{benchmark}_import.log",
    params:
        source=lambda w: AUDIO_BENCHMARKS[w.benchmark]["source"],
        split=lambda w: AUDIO_BENCHMARKS[w.benchmark]["split"],
        kind=lambda w: AUDIO_BENCHMARKS[w.benchmark]["kind"],
    localrule: True
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/audio.yaml"
    shell:
        "python -m akb import-hf-benchmark --source {params.source:q} --split {params.split:q} "
        "--kind {params.kind} --out-dir {output} > {log} 2>&1"


rule validate_audio_benchmark:
    """Every item checked (ids, answers, 2-8 choices, clips present and readable) before any model runs."""
    input:
        audio_benchmark_inputs,
    output:
        "results/benchmarks/{benchmark}/validation.json",
    log:
        "logs/benchmarks/{benchmark}.log",
    params:
        args=audio_benchmark_args,
    conda:
        "../../envs/audio.yaml"
    shell:
        "python -m akb validate-audio-benchmark {params.args} --out {output} > {log} 2>&1"


rule caption_benchmark:
    """One caption per clip; resumes after an interruption."""
    input:
        audio_benchmark_inputs,
        captioner_files,
        validation="results/benchmarks/{benchmark}/validation.json",
        ready=ancient(READINESS),
    output:
        "results/captions/{captioner}/{benchmark}.jsonl",
    log:
        "logs/captions/{captioner}/{benchmark}.log",
    params:
        args=audio_benchmark_args,
        captioner=captioner_json,
        batch_size=lambda w: captioner_entry(w.captioner)["batch_size"],
    threads: captioner_resource("threads")
    resources:
        gpu=captioner_resource("gpu"),
        mem_mb=captioner_resource("mem_mb"),
        runtime=captioner_resource("runtime"),
        slurm_partition=captioner_resource("slurm_partition"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb caption {params.args} --captioner {params.captioner:q} "
        "--batch-size {params.batch_size} --out {output} > {log} 2>&1"


rule cascade_model:
    """A text LLM answers every question (one shard's batches, if sharded) from its clip's caption;
    loaded once, resumable."""
    input:
        audio_benchmark_inputs,
        captions="results/captions/{captioner}/{benchmark}.jsonl",
        model=model_files,
        ready=ancient(READINESS),
    output:
        shard_path("results/cascade/{captioner}/{model}/{benchmark}.jsonl", CASCADE_SHARDS),
    log:
        shard_path("logs/cascade/{captioner}/{model}/{benchmark}.log", CASCADE_SHARDS),
    params:
        args=audio_benchmark_args,
        model=model_json(),
        mode=cascade_mode,
        batch_size=lambda w: probe_settings(config, w.model)["batch_size"],
        max_new_tokens=lambda w: probe_settings(config, w.model)["max_new_tokens"],
    threads: model_resource("threads", "cascade")
    resources:
        gpu=model_resource("gpu", "cascade"),
        mem_mb=model_resource("mem_mb", "cascade"),
        runtime=model_resource("runtime", "cascade"),
        slurm_partition=model_resource("slurm_partition", "cascade"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb cascade {params.args} --captions {input.captions} --model {params.model:q} "
        "--mode {params.mode} --batch-size {params.batch_size} --max-new-tokens {params.max_new_tokens} "
        f"--threads {{threads}} --gpus {{resources.gpu}}{CASCADE_SHARD_OPTION} --out {{output}} > {{log}} 2>&1"


if CASCADE_SHARDS > 1:

    rule merge_cascade_shards:
        """The cascade's shards for one (captioner, model, benchmark), merged as one unsharded job writes them."""
        input:
            audio_benchmark_inputs,
            parts=shard_paths("results/cascade/{captioner}/{model}/{benchmark}.jsonl", CASCADE_SHARDS),
        output:
            "results/cascade/{captioner}/{model}/{benchmark}.jsonl",
        log:
            "logs/cascade/{captioner}/{model}/{benchmark}.log",
        params:
            args=audio_benchmark_args,
        conda:
            "../../envs/audio.yaml"
        shell:
            "python -m akb merge-shards {params.args} --parts {input.parts} --out {output} > {log} 2>&1"

    localrules:
        merge_cascade_shards,


rule score_cascade:
    """Accuracy by the official MMAU/MMAR rule, per domain; predictions in the official format."""
    input:
        audio_benchmark_inputs,
        predictions="results/cascade/{captioner}/{model}/{benchmark}.jsonl",
    output:
        scores="results/cascade/{captioner}/{model}/{benchmark}_scores.json",
        official="results/cascade/{captioner}/{model}/{benchmark}_official.json",
    log:
        "logs/cascade/{captioner}/{model}/{benchmark}_scores.log",
    params:
        args=audio_benchmark_args,
        label=lambda w: audio_benchmark_label(w.benchmark),
        resamples=config["probe"]["bootstrap_resamples"],
        seed=config["seed"],
    conda:
        "../../envs/audio.yaml"
    shell:
        "python -m akb score-audio {params.args} --predictions {input.predictions} "
        "--model-name {wildcards.model} --captioner-name {wildcards.captioner} "
        "--benchmark-name {params.label:q} --resamples {params.resamples} --seed {params.seed} "
        "--out {output.scores} --official-out {output.official} > {log} 2>&1"


rule cascade_table:
    """Table 2 of the paper for this run: accuracy per (captioner, LLM), overall and per domain."""
    input:
        cascade_score_files(),
    output:
        csv=report("results/tables/cascade.csv", caption="../report/cascade_table.rst", category="Tables"),
        md="results/tables/cascade.md",
        tex="results/tables/cascade.tex",
    log:
        "logs/tables/cascade.log",
    params:
        labels=model_labels(CASCADE_MODELS),
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m akb cascade-table --scores {input} --labels {params.labels:q} "
        "--out-stem results/tables/cascade > {log} 2>&1"


localrules:
    validate_audio_benchmark,
    score_cascade,
    cascade_table,
