# Provenance: once every other target is done, what produced the results (results/provenance.json,
# see akb.provenance) and the configuration as resolved (results/config.json). No job reads them,
# so writing them never reruns a model job; they are rewritten whenever a result or the config changes.

from akb.io import write_json

PROVENANCE = "results/provenance.json"
RESOLVED_CONFIG = "results/config.json"


rule provenance:
    """Git commit, config digest, package versions, torch threads and device, data digests."""
    input:
        study_outputs(),
        bank=BANK_FILE,
        suite=synthetic_suite_inputs(),
    output:
        config=RESOLVED_CONFIG,
        provenance=report(PROVENANCE, caption="../report/provenance.rst", category="Provenance"),
    log:
        "logs/provenance.log",
    params:
        config=lambda wildcards: json.dumps(config, sort_keys=True),  # a new config rewrites both files
        suite=lambda wildcards, input: f"--suite {input.suite}" if input.suite else "",
        repo=workflow.basedir,
    run:
        # The config exactly as the workflow resolved it (a --configfile, --config overrides and
        # defaults included) goes to the command through a file: a command line would carry all of it.
        write_json(output.config, config)
        shell(
            "python -m akb provenance --config {output.config} --bank {input.bank} {params.suite} "
            "--repo {params.repo:q} --out {output.provenance} > {log} 2>&1"
        )


localrules:
    provenance,
