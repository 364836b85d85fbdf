# The knowledge-dose experiment (docs/knowledge-dose.md; `snakemake --cores 2 knowledge_dose`, not
# part of the default run): one backbone LoRA-trained on growing shares of a corpus of auditory facts,
# or on a same-size control corpus. Each variant is a model to the study's own rules (common.smk,
# DOSE_VARIANTS): probed on the bank, answering the cascade from captions, distilled and trained into
# an audio LLM, evaluated with and without audio; the report reads those runs.
if DOSE:

    rule dose_backbone:
        """LoRA training of the backbone on one variant's share of the corpus, merged into a model folder."""
        input:
            dose_corpus_files,
            model=lambda w: packaged_model_dir(config, DOSE["backbone"]),
            ready=ancient(READINESS),
        output:
            directory(backbone_dir("{variant}")),
        log:
            "logs/knowledge_dose/{variant}.log",
        wildcard_constraints:
            variant=_one_of([n for n, v in DOSE_VARIANTS.items() if v.trained]),
        params:
            model=json.dumps(job_settings(model_entry(config, DOSE["backbone"]))),
            corpus=DOSE["corpus"],
            dose=lambda w: "control" if DOSE_VARIANTS[w.variant].control else DOSE_VARIANTS[w.variant].dose,
            seed=lambda w: DOSE_VARIANTS[w.variant].seed,
            lora=json.dumps(DOSE["lora"]),
        threads: dose_train_resource("threads")
        resources:
            gpu=dose_train_resource("gpu"),
            mem_mb=dose_train_resource("mem_mb"),
            runtime=dose_train_resource("runtime"),
            slurm_partition=dose_train_resource("slurm_partition"),
        conda:
            "../../envs/models.yaml"
        shell:
            "python -m akb dose-train --corpus {params.corpus:q} --model {params.model:q} --variant {wildcards.variant} "
            "--dose {params.dose} --seed {params.seed} --lora {params.lora:q} --threads {threads} "
            "--out {output} > {log} 2>&1"

    rule knowledge_dose_report:
        """Accuracy per dose in every evaluation (trained, held-out and other families), the slopes and
        the control contrast with their tests, the figure and the generated summary."""
        input:
            dose_corpus_files,
            [path for runs in dose_runs().values() for path in runs.values()],
            benchmark=lambda w: audio_benchmark_inputs(DOSE_BENCHMARK),
        output:
            DOSE_OUTPUTS,
        log:
            "logs/knowledge_dose/report.log",
        params:
            settings=json.dumps(job_settings(DOSE)),  # not its resources: they change no result
            runs=json.dumps(dose_runs()),
            args=lambda w: audio_benchmark_args(DOSE_BENCHMARK),
            seed=config["seed"],
        conda:
            "../../envs/figures.yaml"
        shell:
            "python -m akb dose-report --settings {params.settings:q} --runs {params.runs:q} {params.args} "
            f"--seed {{params.seed}} --out-dir {DOSE_DIR} > {{log}} 2>&1"

    rule knowledge_dose:
        """The experiment's target: `snakemake --cores 2 knowledge_dose`."""
        input:
            DOSE_OUTPUTS[:-2],
            report(f"{DOSE_DIR}/dose_response.png", caption=str(WORKFLOW_DIR / "report/knowledge_dose.rst"),
                   category="Knowledge dose"),

    localrules:
        knowledge_dose_report,
        knowledge_dose,

else:

    rule knowledge_dose:
        """Without a runnable experiments.knowledge_dose there is nothing to run: say why."""
        localrule: True
        params:
            problem=DOSE_PROBLEM or "this config has no experiments.knowledge_dose (a backbone at least; "
            "config/config.yaml sets one, docs/knowledge-dose.md)",
        conda:
            "../../envs/tables.yaml"
        shell:
            "echo knowledge_dose: {params.problem:q} >&2; exit 1"
