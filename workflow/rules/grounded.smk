# Stage 3: audio-grounded. Each backbone distils its own training answers from seed descriptions,
# is fine-tuned into a DeSTA-style audio LLM, and answers the audio benchmarks with the audio.


rule distill_data:
    """The backbone answers prompts about each training clip from its seed description (resumable)."""
    input:
        grounded_seed_inputs,
        model=model_files,
        ready=ancient(READINESS),
    output:
        "results/grounded/{model}/distill.jsonl",
    log:
        "logs/grounded/{model}/distill.log",
    params:
        seeds=grounded_seed_file(),
        root=f"--audio-root {GROUNDED['distill']['audio_root']}" if GROUNDED["distill"]["audio_root"] else "",
        prompts=json.dumps(GROUNDED["distill"]["prompts"]),
        per_clip=GROUNDED["distill"]["prompts_per_clip"],
        questions="--item-questions" if GROUNDED["distill"]["item_questions"] else "--no-item-questions",
        question_mode=grounded_mode,
        batch_size=GROUNDED["distill"]["batch_size"],
        max_new_tokens=GROUNDED["distill"]["max_new_tokens"],
        model=model_json("distill"),
        seed=config["seed"],
    threads: model_resource("threads", "distill")
    resources:
        gpu=model_resource("gpu", "distill"),
        mem_mb=model_resource("mem_mb", "distill"),
        runtime=model_resource("runtime", "distill"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb distill --seeds {params.seeds} {params.root} --prompts {params.prompts:q} "
        "--prompts-per-clip {params.per_clip} {params.questions} --question-mode {params.question_mode} "
        "--seed {params.seed} --model {params.model:q} "
        "--batch-size {params.batch_size} --max-new-tokens {params.max_new_tokens} --threads {threads} "
        "--out {output} > {log} 2>&1"


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
        batch_size=TRANSCRIBE["batch_size"],
    threads: transcribe_resource("threads", "train")
    resources:
        gpu=transcribe_resource("gpu", "train"),
        mem_mb=transcribe_resource("mem_mb", "train"),
        runtime=transcribe_resource("runtime", "train"),
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
        batch_size=TRANSCRIBE["batch_size"],
        min_samples=config["diagnostics"]["min_fragment_samples"],
    threads: transcribe_resource("threads", "benchmark")
    resources:
        gpu=transcribe_resource("gpu", "benchmark"),
        mem_mb=transcribe_resource("mem_mb", "benchmark"),
        runtime=transcribe_resource("runtime", "benchmark"),
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
        model=model_json("train"),
        grounded=grounded_json(),
        transcripts=transcript_option,
    threads: model_resource("threads", "train")
    resources:
        gpu=model_resource("gpu", "train"),
        mem_mb=model_resource("mem_mb", "train"),
        runtime=model_resource("runtime", "train"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb train --distill {input.distill} {params.transcripts} --model {params.model:q} "
        "--grounded {params.grounded:q} "
        "--threads {threads} --state-dir resources/train_state/{wildcards.model} --out {output} > {log} 2>&1"


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
        model=model_json("evaluate"),
        grounded=grounded_json(),
        transcripts=transcript_option,
        mode=evaluate_mode,
        batch_size=GROUNDED["evaluate"]["batch_size"],
        max_new_tokens=GROUNDED["evaluate"]["max_new_tokens"],
    threads: model_resource("threads", "evaluate")
    resources:
        gpu=model_resource("gpu", "evaluate"),
        mem_mb=model_resource("mem_mb", "evaluate"),
        runtime=model_resource("runtime", "evaluate"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb evaluate {params.args} --checkpoint {input.checkpoint} --model {params.model:q} "
        "--grounded {params.grounded:q} --condition full {params.transcripts} --mode {params.mode} "
        "--batch-size {params.batch_size} "
        "--max-new-tokens {params.max_new_tokens} --threads {threads} --out {output} > {log} 2>&1"


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
