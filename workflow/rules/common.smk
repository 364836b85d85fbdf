# Config validation, lookups and target lists shared by every stage.
import json
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The library is importable here and in every job, installed or not.
WORKFLOW_DIR = Path(workflow.basedir) / "workflow"
sys.path.insert(0, str(WORKFLOW_DIR))

from akb.config import ConfigError, model_entry, probe_settings, validate_config
from akb.data.bank import resolve_source, taxonomy_categories
from akb.job_env import prepare_job_environment
from akb.models.base import ModelSpec

prepare_job_environment(WORKFLOW_DIR)

try:
    _validated = validate_config(config)
except ConfigError as error:
    raise WorkflowError(str(error))
config.clear()
config.update(_validated)

BANK = config["bank"]["name"]
BANK_FILE = f"resources/banks/{BANK}.jsonl"
BANK_LABEL = config["bank"]["display_name"] or BANK
CATEGORIES = taxonomy_categories()


def _runnable(names):
    """Models whose backend can run now; declared API models are reported and skipped."""
    api = [n for n in names if model_entry(config, n)["backend"] == "api"]
    if api:
        print(
            f"Skipping API model(s) {', '.join(api)}: the 'api' backend is declared but not "
            "implemented yet.",
            file=sys.stderr,
        )
    return [n for n in names if n not in api]


PROBE_MODELS = _runnable(config["probe"]["models"] or [m["name"] for m in config["models"]])


def model_json(wildcards):
    return json.dumps(model_entry(config, wildcards.model))


def model_resource(key):
    return lambda wildcards: model_entry(config, wildcards.model)["resources"][key]


def model_threads(wildcards):
    return model_entry(config, wildcards.model)["resources"]["threads"]


def model_files(wildcards):
    """A packaged model's converted directory must exist before the model runs."""
    entry = model_entry(config, wildcards.model)
    return [f"resources/models/{entry['source']}"] if entry["backend"] == "packaged" else []


def model_labels(names):
    specs = [ModelSpec.from_config(model_entry(config, n)) for n in names]
    return json.dumps({s.name: {"label": s.label, "family": s.family, "group": s.group} for s in specs})


def probe_outputs():
    return [
        *expand("results/probe/{model}/{bank}_scores.json", model=PROBE_MODELS, bank=BANK),
        *expand("results/tables/{bank}_probe.{ext}", bank=BANK, ext=["csv", "md", "tex"]),
    ]


def figure_outputs():
    return [
        "results/tables/metrics.csv",
        "results/figures/category_correlations_heatmap.png",
        "results/figures/paper_comparison.png",
        "results/paper/correlations_heatmap.png",
    ]


wildcard_constraints:
    bank=BANK,
    model="|".join(map(re.escape, PROBE_MODELS)) if PROBE_MODELS else "(?!)",


def bank_source_files(wildcards):
    """A local bank file (the shipped one included) is tracked as an input, so editing it reruns
    what depends on it; a missing one (or a dataset id) is reported by prepare-bank when the job
    runs, so the study can be planned without it."""
    source = resolve_source(config["bank"]["source"])
    return [source] if Path(source).is_file() else []
