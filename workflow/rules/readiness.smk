# Before any model runs: one cheap local job lists everything the config still lacks (benchmark
# files and clips, the bank, API keys, Hugging Face access, disk) and fails with the whole list.
# Model jobs take its report as an ancient() input: they wait for it, and a rewritten report reruns
# none of them. A changed config is rechecked by the onstart hook below, not by rerunning the job:
# a job rerun upstream of every model job would hide, for that run, every job the change reruns.

READINESS = "results/readiness.json"
READINESS_LOG = "logs/readiness.log"


rule check_readiness:
    """Everything missing for this config, listed at once (as `akb check-ready` does); fails when anything is."""
    output:
        READINESS,
    log:
        READINESS_LOG,
    run:
        # In this process, on the config exactly as the workflow validated it (a --configfile
        # replaces the demo one): a shell command would have to carry the whole config, and
        # Snakemake prints a failed command in full, burying the list.
        from akb.assets.readiness import check_for_workflow

        check_for_workflow(config, output[0], log[0])


onstart:
    # Snakemake's own process, before the first job of a run that has jobs to do (not in a dry run,
    # not inside cluster jobs): a report made for another config (or that found gaps) is made again.
    from akb.assets.readiness import NotReady, recheck_if_config_changed

    try:
        if recheck_if_config_changed(config, READINESS, READINESS_LOG):
            print(f"readiness: rechecked for the changed config ({READINESS})", file=sys.stderr)
    except NotReady as gap:
        print(f"readiness: {gap}; no job was started", file=sys.stderr)
        sys.exit(1)


localrules:
    check_readiness,
