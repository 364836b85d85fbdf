# The AKB study: how much auditory knowledge text LLMs carry, and how it shapes audio LLMs.
# Default config: the offline demo. The real study: --configfile config/paper.yaml.
from snakemake.utils import min_version

min_version("8.20")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/probe.smk"


rule all:
    input:
        probe_outputs(),
    default_target: True
