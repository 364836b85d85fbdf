# Building an AKB-style benchmark: generation -> automatic checks -> review sheet -> (decisions) ->
# verified, released bank. `snakemake bankgen` runs it; the `all` target does not.
from akb.bankgen.settings import (bankgen_targets, check_bankgen, crosscheck_models, decisions_path, existing_file,
                                  generator_inputs)
from akb.assets.packaged import PACKAGED_MODELS

BANKGEN = config["bankgen"]
try:
    check_bankgen(config)
except ConfigError as error:
    raise WorkflowError(str(error))
BANKGEN_DIR = f"results/bankgen/{BANKGEN['name']}"
BANKGEN_GENERATORS = BANKGEN["generators"]
BANKGEN_CHECKERS = crosscheck_models(BANKGEN) if BANKGEN_GENERATORS else []
BANKGEN_DECISIONS = decisions_path(BANKGEN)
BANKGEN_RELEASE = f"{BANKGEN_DIR}/release/{BANKGEN['name']}-{BANKGEN['version']}.jsonl"
BANKGEN_JSON = json.dumps(BANKGEN)
BANKGEN_EMBEDDING = BANKGEN["embedding"]["model"]
BANKGEN_EMBEDDING_FILES = (
    [f"resources/models/{BANKGEN_EMBEDDING}"] if BANKGEN_EMBEDDING in PACKAGED_MODELS else local_model_files(BANKGEN_EMBEDDING)
)


wildcard_constraints:
    generator=_one_of(BANKGEN_GENERATORS),
    checker=_one_of(BANKGEN_CHECKERS),


rule bankgen_generate:
    """One generator's candidate questions for every subcategory (raw outputs cached per request)."""
    input:
        lambda w: generator_inputs(config, w.generator),
    output:
        candidates=f"{BANKGEN_DIR}/generated/{{generator}}.jsonl",
        rejects=f"{BANKGEN_DIR}/rejects/{{generator}}.jsonl",
    log:
        f"logs/bankgen/{BANKGEN['name']}/generate_{{generator}}.log",
    params:
        model=model_json("generator"),
        settings=BANKGEN_JSON,
        seed=config["seed"],
    threads: model_resource("threads", "bankgen", "generator")
    resources:
        gpu=model_resource("gpu", "bankgen", "generator"),
        mem_mb=model_resource("mem_mb", "bankgen", "generator"),
        runtime=model_resource("runtime", "bankgen", "generator"),
        slurm_partition=model_resource("slurm_partition", "bankgen", "generator"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb bankgen-generate --model {params.model:q} --settings {params.settings:q} "
        "--seed {params.seed} --threads {threads} --gpus {resources.gpu} --out {output.candidates} "
        "--rejects {output.rejects} > {log} 2>&1"


rule bankgen_screen:
    """Format and answer validity, near-duplicates (bank and other candidates), letter rebalancing."""
    input:
        candidates=expand(f"{BANKGEN_DIR}/generated/{{generator}}.jsonl", generator=BANKGEN_GENERATORS),
        embedding=BANKGEN_EMBEDDING_FILES,
        bank=existing_file(resolve_source(BANKGEN["existing_bank"])),
    output:
        screened=f"{BANKGEN_DIR}/screened.jsonl",
        removed=f"{BANKGEN_DIR}/removed.jsonl",
    log:
        f"logs/bankgen/{BANKGEN['name']}/screen.log",
    params:
        settings=BANKGEN_JSON,
        seed=config["seed"],
    threads: 2
    resources:
        slurm_partition=CPU_PARTITION,
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb bankgen-screen --candidates {input.candidates} --settings {params.settings:q} "
        "--seed {params.seed} --threads {threads} --out {output.screened} --removed {output.removed} > {log} 2>&1"


rule bankgen_crosscheck:
    """One model answers every screened candidate, exactly as the probe stage answers a bank."""
    input:
        bank=f"{BANKGEN_DIR}/screened.jsonl",
        model=lambda w: packaged_model_dir(config, w.checker),
    output:
        f"{BANKGEN_DIR}/crosscheck/{{checker}}.jsonl",
    log:
        f"logs/bankgen/{BANKGEN['name']}/crosscheck_{{checker}}.log",
    params:
        model=model_json("checker"),
        mode=lambda w: probe_settings(config, w.checker)["mode"],
        batch_size=lambda w: probe_settings(config, w.checker)["batch_size"],
        max_new_tokens=lambda w: probe_settings(config, w.checker)["max_new_tokens"],
    threads: model_resource("threads", "probe", "checker")
    resources:
        gpu=model_resource("gpu", "probe", "checker"),
        mem_mb=model_resource("mem_mb", "probe", "checker"),
        runtime=model_resource("runtime", "probe", "checker"),
        slurm_partition=model_resource("slurm_partition", "probe", "checker"),
    conda:
        "../../envs/models.yaml"
    shell:
        "python -m akb probe --bank {input.bank} --model {params.model:q} --mode {params.mode} "
        "--batch-size {params.batch_size} --max-new-tokens {params.max_new_tokens} --threads {threads} "
        "--gpus {resources.gpu} --out {output} > {log} 2>&1"


rule bankgen_report:
    """Cross-check flags, and the report of every candidate removed and why."""
    input:
        screened=f"{BANKGEN_DIR}/screened.jsonl",
        removed=f"{BANKGEN_DIR}/removed.jsonl",
        candidates=expand(f"{BANKGEN_DIR}/generated/{{generator}}.jsonl", generator=BANKGEN_GENERATORS),
        rejects=expand(f"{BANKGEN_DIR}/rejects/{{generator}}.jsonl", generator=BANKGEN_GENERATORS),
        predictions=expand(f"{BANKGEN_DIR}/crosscheck/{{checker}}.jsonl", checker=BANKGEN_CHECKERS),
    output:
        checked=f"{BANKGEN_DIR}/checked.jsonl",
        report=f"{BANKGEN_DIR}/report.json",
        report_md=report(f"{BANKGEN_DIR}/report.md", caption="../report/bankgen_report.rst", category="Benchmark building"),
    log:
        f"logs/bankgen/{BANKGEN['name']}/report.log",
    params:
        predictions=" ".join(f"{m}={BANKGEN_DIR}/crosscheck/{m}.jsonl" for m in BANKGEN_CHECKERS),
        drop=" ".join(BANKGEN["crosscheck"]["drop"]),
    conda:
        "../../envs/tables.yaml"
    shell:
        "python -m akb bankgen-report --screened {input.screened} --removed {input.removed} "
        "--candidates {input.candidates} --rejects {input.rejects} --predictions {params.predictions} "
        "--drop {params.drop} --out {output.checked} --report {output.report} --report-md {output.report_md} "
        "> {log} 2>&1"


rule bankgen_review_sheet:
    """The review sheet: CSV, and one self-contained HTML page (accept / reject / edit, notes, keys)."""
    input:
        f"{BANKGEN_DIR}/checked.jsonl",
    output:
        csv=f"{BANKGEN_DIR}/review.csv",
        html=f"{BANKGEN_DIR}/review.html",
    log:
        f"logs/bankgen/{BANKGEN['name']}/review_sheet.log",
    params:
        title=f"Review: {BANKGEN['name']} {BANKGEN['version']}",
    conda:
        "../../envs/tables.yaml"
    shell:
        "python -m akb bankgen-review-sheet --checked {input} --title {params.title:q} --csv {output.csv} "
        "--html {output.html} > {log} 2>&1"


rule bankgen_import:
    """The reviewer's decisions merged into a verified bank, with provenance per item."""
    input:
        checked=f"{BANKGEN_DIR}/checked.jsonl",
        decisions=BANKGEN_DECISIONS,
    output:
        bank=f"{BANKGEN_DIR}/verified.jsonl",
        summary=f"{BANKGEN_DIR}/import_summary.json",
    log:
        f"logs/bankgen/{BANKGEN['name']}/import.log",
    conda:
        "../../envs/tables.yaml"
    shell:
        "python -m akb bankgen-import --checked {input.checked} --decisions {input.decisions} "
        "--out {output.bank} --summary {output.summary} > {log} 2>&1"


rule bankgen_release:
    """The verified bank, validated, under a versioned name with its sha256 in a manifest."""
    input:
        f"{BANKGEN_DIR}/verified.jsonl",
    output:
        bank=BANKGEN_RELEASE,
        manifest=f"{BANKGEN_DIR}/release/manifest.json",
    log:
        f"logs/bankgen/{BANKGEN['name']}/release.log",
    params:
        name=BANKGEN["name"],
        version=BANKGEN["version"],
        strict="--strict" if BANKGEN["strict_release"] else "",
    conda:
        "../../envs/tables.yaml"
    shell:
        "python -m akb bankgen-release --bank {input} --name {params.name} --version {params.version} "
        "{params.strict} --out {output.bank} --manifest {output.manifest} > {log} 2>&1"


rule bankgen:
    """Target: candidates, the checks report and the review sheet (and the release, once decided)."""
    input:
        bankgen_targets(BANKGEN, BANKGEN_DIR),


localrules:
    bankgen_report,
    bankgen_review_sheet,
    bankgen_import,
    bankgen_release,
    bankgen,
