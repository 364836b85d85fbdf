# Before any model runs: one cheap local job lists everything the config still lacks (benchmark
# files and clips, the bank, API keys, Hugging Face access, disk) and fails with the whole list.
# Model jobs take its report as an ancient() input: they wait for it, and a rewritten report
# (a new config, a forced rerun) reruns none of them.

READINESS = "results/readiness.json"


rule check_readiness:
    """Everything missing for this config, listed at once (as `akb check-ready` does); fails when anything is."""
    output:
        READINESS,
    log:
        "logs/readiness.log",
    params:
        # Recheck when the config changes, but not its resources (nothing here depends on them, and
        # raising a job's memory must rerun nothing). A function, so "{benchmark}" in a caption path
        # is not taken for a wildcard.
        config=lambda wildcards: json.dumps(without_scheduling(config), sort_keys=True),
    run:
        # In this process, on the config exactly as the workflow validated it (a --configfile
        # replaces the demo one): a shell command would have to carry the whole config, and
        # Snakemake prints a failed command in full, burying the list.
        from akb.assets.readiness import check_for_workflow

        check_for_workflow(config, output[0], log[0])


localrules:
    check_readiness,
