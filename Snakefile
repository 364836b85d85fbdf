# The AKB study: how much auditory knowledge text LLMs carry, and how it shapes audio LLMs.
# Default config: the offline demo. The real study: --configfile config/paper.yaml.
from snakemake.utils import min_version

min_version("8.20")


# A --configfile replaces the demo config rather than merging into it: merged, the demo's models,
# backbones and blocks the paper config leaves out would leak into the study.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# With --sdm apptainer every job's command runs in this image (config `container`: a .sif built from
# containers/akb.def, or docker://...; docs/cluster.md). Set before the rules, which take it when defined.
container: config.get("container")


include: "workflow/rules/common.smk"
include: "workflow/rules/readiness.smk"  # model jobs wait for results/readiness.json
include: "workflow/rules/resources.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/cascade.smk"
include: "workflow/rules/grounded.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/bankgen.smk"  # `snakemake bankgen`; not part of `all`
include: "workflow/rules/knowledge_dose.smk"  # `snakemake knowledge_dose`; not part of `all`
include: "workflow/rules/provenance.smk"  # results/provenance.json, after every other target


rule all:
    input:
        study_outputs(),  # a new stage's targets go there, so the provenance waits for them too
        PROVENANCE,
    default_target: True
