# Stage 3: audio-grounded. Each backbone distils its own training answers from seed descriptions,
# is fine-tuned into a DeSTA-style audio LLM, and answers the audio benchmarks with the audio.


# Only when grounded.distill.desta_aqa asks for it: otherwise no rule claims its seed path, which a
# config may fill by hand (grounded.distill.seeds).
if DESTA_AQA:

    rule convert_desta_seeds:
        """DeSTA-AQA5M rows -> the seeds the distillation reads, each clip checked under its corpus's
        folder; the report counts rows and missing or unreadable clips per source dataset. With
        on_missing: error such clips stop the job (the log has the table) and nothing is written."""
        input:
            desta_aqa_inputs,
        output:
            seeds=DESTA_SEEDS,
            report_csv="resources/desta_aqa/report.csv",
            report_md="resources/desta_aqa/report.md",
            skipped="resources/desta_aqa/skipped.csv",
        log:
            "logs/desta_aqa/convert.log",
        params:
            args=desta_aqa_args,
            report_dir=lambda wildcards, output: str(Path(output.seeds).parent),
        localrule: desta_aqa_local()
        conda:
            "../../envs/audio.yaml"
        resources:
            runtime=240,
            slurm_partition=CPU_PARTITION,
        shell:
            "python -m akb convert-desta-seeds {params.args} --out {output.seeds} "
            "--report-dir {params.report_dir:q} > {log} 2>&1"


# Sharded distillation (grounded.distill.shards = N > 1): N jobs per backbone, each on whole batches
# of the unsharded run (akb.probe.shards), then a merge into the file one job writes, byte for byte. Unset
# or 1: the rule, its command and parameters are exactly as before (so nothing finished reruns).
DISTILL_SHARDS = GROUNDED["distill"].get("shards") or 1


rule distill_data:
    """The backbone answers prompts about each training clip (one shard's batches of them, if
    sharded) from its seed description (resumable)."""
    input:
        grounded_seed_inputs,
        model=model_files,
        ready=ancient(READINESS),
    output:
        shard_path("results/grounded/{model}/distill.jsonl", DISTILL_SHARDS),
    log:
        shard_path("logs/grounded/{model}/distill.log", DISTILL_SHARDS),
    params:
        **({"part": f"--shard {{shard}}/{DISTILL_SHARDS}"} if DISTILL_SHARDS > 1 else {}),
        seeds=grounded_seed_file(),
        root=f"--audio-root {GROUNDED['distill']['audio_root']}" if GROUNDED["distill"]["audio_root"] else "",
        prompts=lambda w: json.dumps(grounded_of(w.model)["distill"]["prompts"]),
        per_clip=grounded_value("distill", "prompts_per_clip"),
        questions=lambda w: "--item-questions" if grounded_of(w.model)["distill"]["item_questions"] else "--no-item-questions",
        question_mode=distill_question_mode,
        batch_size=grounded_value("distill", "batch_size"),
        max_new_tokens=grounded_value("distill", "max_new_tokens"),
        model=model_json(),
        seed=config["seed"],
    threads: model_resource("threads", "distill")
    resources:
        gpu=model_resource("gpu", "distill"),
        mem_mb=model_resource("mem_mb", "distill"),
        runtime=model_resource("runtime", "distill"),
        slurm_partition=model_resource("slurm_partition", "distill"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb distill --seeds {params.seeds} {params.root} --prompts {params.prompts:q} "
        "--prompts-per-clip {params.per_clip} {params.questions} --question-mode {params.question_mode} "
        "--seed {params.seed} --model {params.model:q} "
        "--batch-size {params.batch_size} --max-new-tokens {params.max_new_tokens} --threads {threads} "
        "--gpus {resources.gpu}"
        f"{' {params.part}' if DISTILL_SHARDS > 1 else ''} "
        "--out {output} > {log} 2>&1"


if DISTILL_SHARDS > 1:

    use rule distill_data as merge_distill_shards with:
        # The same command with --merge: it rebuilds the requests (no model) for their order.
        input:
            grounded_seed_inputs,
            parts=shard_paths("results/grounded/{model}/distill.jsonl", DISTILL_SHARDS),
        output:
            "results/grounded/{model}/distill.jsonl",
        log:
            "logs/grounded/{model}/distill.log",
        params:
            part=lambda wildcards, input: "--merge " + " ".join(input.parts),
        threads: 1
        resources:
            gpu=0,
            mem_mb=8000,
            runtime=60,

    localrules:
        merge_distill_shards,


rule transcribe_training_clips:
    """Whisper transcripts of the training clips (use_transcript), once for every backbone (resumable)."""
    input:
        grounded_seed_inputs,
        grounded_encoder_files,
        ready=ancient(READINESS),
    output:
        TRAIN_TRANSCRIPTS,
    log:
        "logs/transcripts/train.log",
    params:
        seeds=grounded_seed_file(),
        root=f"--audio-root {GROUNDED['distill']['audio_root']}" if GROUNDED["distill"]["audio_root"] else "",
        whisper=GROUNDED["encoder"]["source"],
        batch_size=transcribe_batch_size(training=True),
    threads: transcribe_resource("threads", "train")
    resources:
        gpu=transcribe_resource("gpu", "train"),
        mem_mb=transcribe_resource("mem_mb", "train"),
        runtime=transcribe_resource("runtime", "train"),
        slurm_partition=transcribe_resource("slurm_partition", "train"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb transcribe --seeds {params.seeds} {params.root} --whisper {params.whisper:q} "
        "--batch-size {params.batch_size} --threads {threads} --out {output} > {log} 2>&1"


rule transcribe_benchmark:
    """Whisper transcripts of a benchmark's clips under one condition (full, a fragment, silence or
    noise), read by the evaluation and diagnostics of every backbone (resumable)."""
    input:
        audio_benchmark_inputs,
        grounded_encoder_files,
        validation="results/benchmarks/{benchmark}/validation.json",
        ready=ancient(READINESS),
    output:
        "results/transcripts/{benchmark}/{condition}.jsonl",
    log:
        "logs/transcripts/{benchmark}/{condition}.log",
    wildcard_constraints:
        condition=_one_of(TRANSCRIBED_CONDITIONS),
    params:
        args=audio_benchmark_args,
        whisper=GROUNDED["encoder"]["source"],
        batch_size=transcribe_batch_size(training=False),
        min_samples=config["diagnostics"]["min_fragment_samples"],
    threads: transcribe_resource("threads", "benchmark")
    resources:
        gpu=transcribe_resource("gpu", "benchmark"),
        mem_mb=transcribe_resource("mem_mb", "benchmark"),
        runtime=transcribe_resource("runtime", "benchmark"),
        slurm_partition=transcribe_resource("slurm_partition", "benchmark"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb transcribe {params.args} --condition {wildcards.condition} "
        "--min-fragment-samples {params.min_samples} --whisper {params.whisper:q} "
        "--batch-size {params.batch_size} --threads {threads} --out {output} > {log} 2>&1"


rule train_lalm:
    """Connector (and LoRA) training; an interrupted job resumes from resources/train_state/{model}."""
    input:
        grounded_encoder_files,
        transcript_inputs,
        distill="results/grounded/{model}/distill.jsonl",
        model=model_files,
        ready=ancient(READINESS),
    output:
        directory("results/grounded/{model}/checkpoint"),
    log:
        "logs/grounded/{model}/train.log",
    params:
        model=model_json(),
        grounded=grounded_json,
        transcripts=transcript_option,
    threads: model_resource("threads", "train")
    resources:
        gpu=model_resource("gpu", "train"),
        mem_mb=model_resource("mem_mb", "train"),
        runtime=model_resource("runtime", "train"),
        slurm_partition=model_resource("slurm_partition", "train"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb train --distill {input.distill} {params.transcripts} --model {params.model:q} "
        "--grounded {params.grounded:q} "
        "--threads {threads} --state-dir resources/train_state/{wildcards.model} --out {output} > {log} 2>&1"


# Data-parallel training: a backbone whose training asks for more than one GPU trains under torchrun
# (lalm_launcher in common.smk). Its own rule, so train_lalm, its command and its finished jobs stay
# as they were.
if PARALLEL_TRAINED:

    rule train_lalm_parallel:
        """train_lalm on several GPUs (and nodes): one data-parallel process per GPU; resumable the
        same way (rank 0 keeps the state in resources/train_state/{model})."""
        input:
            grounded_encoder_files,
            transcript_inputs,
            distill="results/grounded/{model}/distill.jsonl",
            model=model_files,
            ready=ancient(READINESS),
        output:
            directory("results/grounded/{model}/checkpoint"),
        log:
            "logs/grounded/{model}/train.log",
        wildcard_constraints:
            model=_one_of(PARALLEL_TRAINED),
        params:
            # A parameter on purpose, unlike other resources: its GPUs and nodes set the global batch.
            launcher=lalm_launcher,
            model=model_json(),
            grounded=grounded_json,
            transcripts=transcript_option,
        threads: model_resource("threads", "train")
        resources:
            # The SLURM executor plugin's keys: GPUs of the whole job, on `nodes` nodes; one task
            # (torchrun) per node. `mpi` set lets the job step run the command itself (on several
            # nodes its srun starts the torchruns); tasks_per_gpu 0 keeps the plugin from asking
            # for `tasks` tasks per GPU.
            gpu=lambda w: max(lalm_train_shape(w.model)[0], 1) * lalm_train_shape(w.model)[1],
            nodes=lambda w: lalm_train_shape(w.model)[1],
            tasks=lambda w: lalm_train_shape(w.model)[1],
            tasks_per_gpu=0,
            mpi=lambda w: "srun" if lalm_train_shape(w.model)[1] > 1 else "",
            mem_mb=model_resource("mem_mb", "train"),
            runtime=model_resource("runtime", "train"),
            slurm_partition=model_resource("slurm_partition", "train"),
        conda:
            "../../envs/models.yaml"
        shell:
            "{params.launcher} -m akb train --distill {input.distill} {params.transcripts} "
            "--model {params.model:q} --grounded {params.grounded:q} --threads {threads} "
            "--state-dir resources/train_state/{wildcards.model} --out {output} > {log} 2>&1"

    ruleorder: train_lalm_parallel > train_lalm


rule evaluate_lalm:
    """The audio LLM answers every benchmark question with its clip (resumable)."""
    input:
        audio_benchmark_inputs,
        grounded_encoder_files,
        transcript_inputs,
        validation="results/benchmarks/{benchmark}/validation.json",
        checkpoint="results/grounded/{model}/checkpoint",
        model=model_files,
        ready=ancient(READINESS),
    output:
        "results/grounded/{model}/{benchmark}.jsonl",
    log:
        "logs/grounded/{model}/{benchmark}.log",
    params:
        args=audio_benchmark_args,
        model=model_json(),
        grounded=grounded_json,
        transcripts=transcript_option,
        mode=evaluate_mode,
        batch_size=grounded_value("evaluate", "batch_size"),
        max_new_tokens=grounded_value("evaluate", "max_new_tokens"),
    threads: model_resource("threads", "evaluate")
    resources:
        gpu=model_resource("gpu", "evaluate"),
        mem_mb=model_resource("mem_mb", "evaluate"),
        runtime=model_resource("runtime", "evaluate"),
        slurm_partition=model_resource("slurm_partition", "evaluate"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb evaluate {params.args} --checkpoint {input.checkpoint} --model {params.model:q} "
        "--grounded {params.grounded:q} --condition full {params.transcripts} --mode {params.mode} "
        "--batch-size {params.batch_size} --max-new-tokens {params.max_new_tokens} --threads {threads} "
        "--gpus {resources.gpu} --out {output} > {log} 2>&1"


rule score_grounded:
    """Official string-match scoring, overall and per domain, with bootstrap intervals."""
    input:
        audio_benchmark_inputs,
        predictions="results/grounded/{model}/{benchmark}.jsonl",
    output:
        scores="results/grounded/{model}/{benchmark}_scores.json",
        official="results/grounded/{model}/{benchmark}_official.json",
    log:
        "logs/grounded/{model}/{benchmark}_scores.log",
    params:
        args=audio_benchmark_args,
        label=lambda w: audio_benchmark_label(w.benchmark),
        resamples=config["probe"]["bootstrap_resamples"],
        seed=config["seed"],
        condition="audio",
    conda:
        "../../envs/audio.yaml"
    shell:
        "python -m akb score-audio {params.args} --predictions {input.predictions} "
        "--model-name {wildcards.model} --captioner-name {params.condition:q} "
        "--benchmark-name {params.label:q} --resamples {params.resamples} --seed {params.seed} "
        "--out {output.scores} --official-out {output.official} > {log} 2>&1"


use rule score_grounded as score_grounded_no_audio with:
    # The same audio LLM with the audio removed from its prompts: the baseline its audio must beat.
    input:
        audio_benchmark_inputs,
        predictions="results/diagnostics/{model}/{benchmark}/none.jsonl",
    output:
        scores="results/grounded/{model}/{benchmark}_no_audio_scores.json",
        official="results/grounded/{model}/{benchmark}_no_audio_official.json",
    log:
        "logs/grounded/{model}/{benchmark}_no_audio_scores.log",
    params:
        args=audio_benchmark_args,
        label=lambda w: audio_benchmark_label(w.benchmark),
        resamples=config["probe"]["bootstrap_resamples"],
        seed=config["seed"],
        condition="no audio",


rule grounded_table:
    """Table 3 of the paper for this run: audio-grounded accuracy per backbone, overall and per domain,
    with the same models' accuracy when the audio is removed."""
    input:
        grounded_score_files(),
        grounded_score_files("no_audio_scores"),
    output:
        csv=report("results/tables/grounded.csv", caption="../report/grounded_table.rst", category="Tables"),
        md="results/tables/grounded.md",
        tex="results/tables/grounded.tex",
    log:
        "logs/tables/grounded.log",
    params:
        labels=model_labels(GROUNDED_MODELS),
    conda:
        "../../envs/figures.yaml"
    shell:
        "python -m akb cascade-table --scores {input} --labels {params.labels:q} "
        "--out-stem results/tables/grounded > {log} 2>&1"


# Bookkeeping: small files in, tables out; where snakemake runs, not as cluster jobs.
localrules:
    score_grounded,
    score_grounded_no_audio,
    grounded_table,
