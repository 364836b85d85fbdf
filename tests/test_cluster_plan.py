"""What the SLURM profile submits, planned with `snakemake -n`: bookkeeping stays on the login node,
each job names the partition its resources call for, and no API key reaches a command."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_parallel_workflow import command, resources

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-test-secret-0123456789"
# Every variable the paper's API models and captioner read their key from, and the hub token.
SECRET_ENV = {"OPENAI_API_KEY": SECRET, "GEMINI_API_KEY": SECRET, "ANTHROPIC_API_KEY": SECRET, "HF_TOKEN": SECRET}
# The rules that load a model (or call one): the only jobs of `snakemake all` sent to the cluster.
CLUSTER_RULES = {"probe_model", "caption_benchmark", "cascade_model", "distill_data", "transcribe_training_clips",
                 "transcribe_benchmark", "train_lalm", "evaluate_lalm", "diagnose_condition"}


def dry_run(config: Path, workdir: Path, env=None) -> list[str]:
    """The jobs (text blocks) of `snakemake -n -p` with the SLURM profile."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "-n", "-p", "--configfile",
         str(config), "--directory", str(workdir), "--workflow-profile", str(ROOT / "profiles/slurm")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})  # fmt: skip
    output = result.stdout + result.stderr
    if result.returncode:
        pytest.fail(output[-3000:])
    return output.split("\n\n")


def rule_of(job: str) -> str | None:
    """The rule of a job block; None for other blocks. (A dry run prints every job as `rule X:`.)"""
    for line in job.splitlines():
        if line.startswith("rule ") and line.endswith(":"):
            return line[len("rule "):-1]
    return None


# The dry run executes nothing, so it does not say which jobs stay local: the workflow does.
# (Snakemake's Python API; _localrules is the set the localrules directives fill.)
LOCAL_RULES = """
import sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(snakefile=Path(sys.argv[1]), workdir=Path(sys.argv[2]),
                            resource_settings=ResourceSettings(),
                            config_settings=ConfigSettings(configfiles=[Path(sys.argv[3])]))._workflow
    print(" ".join(sorted(workflow._localrules)))
"""


def local_rules(config: Path, workdir: Path) -> set[str]:
    result = subprocess.run([sys.executable, "-c", LOCAL_RULES, str(ROOT / "Snakefile"), str(workdir), str(config)],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return set(result.stdout.split())


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory):
    """The paper's study planned with every API key and HF_TOKEN set: (job blocks, whole output)."""
    workdir = tmp_path_factory.mktemp("paper")
    jobs = dry_run(ROOT / "config/paper.yaml", workdir, SECRET_ENV)
    local = local_rules(ROOT / "config/paper.yaml", workdir)
    return [j for j in jobs if rule_of(j) not in (None, "all")], "\n\n".join(jobs), local


def test_only_model_jobs_are_submitted_bookkeeping_runs_locally(paper_plan):
    jobs, _, local = paper_plan
    planned = {rule_of(j) for j in jobs}
    assert planned - local == CLUSTER_RULES
    assert {"score_grounded", "score_grounded_no_audio", "grounded_table", "diagnostics_tables", "score_probe",
            "score_cascade", "cascade_table", "probe_table", "collect_metrics", "study_figures", "paper_figures",
            "check_readiness", "validate_audio_benchmark", "prepare_bank"} <= planned & local


def test_gpu_jobs_go_to_the_gpu_partition_and_no_cpu_job_does(paper_plan):
    jobs, _, local = paper_plan
    seen = set()
    for job in jobs:
        if rule_of(job) in local:
            continue
        res = resources(job)
        expected = "gpu" if int(res["gpu"]) > 0 else ""  # "": the cluster's default partition
        assert res["slurm_partition"] == expected, job
        seen.add(expected)
    assert seen == {"gpu", ""}
    # API models and the API captioner ask for no GPU.
    (gpt5,) = [j for j in jobs if "output: results/probe/gpt-5/akb2000.jsonl" in j]
    (gemini,) = [j for j in jobs if "output: results/captions/gemini/mmau.jsonl" in j]
    for job in (gpt5, gemini):
        assert (resources(job)["gpu"], resources(job)["slurm_partition"]) == ("0", "")


def test_api_keys_and_the_hub_token_never_reach_a_command_or_the_log(paper_plan):
    jobs, output, _ = paper_plan
    assert sum("Shell command: python -m akb probe " in j for j in jobs) == 17  # commands were printed
    assert "OPENAI_API_KEY" in output  # the variable's name is how jobs find the key
    assert SECRET not in output


def test_partitions_per_kind_and_per_stage_and_api_backends_never_ask_for_a_gpu(tmp_path):
    api = {"base_url": "http://127.0.0.1:9/v1", "key_env": "EXAMPLE_API_KEY"}
    config = {
        "bank": {"limit": 8},
        "partitions": {"gpu": "a100", "cpu": "small"},
        "models": [
            {"name": "on-gpu", "backend": "tiny", "source": "llama", "resources": {"gpu": 1}},
            {"name": "own", "backend": "tiny", "source": "qwen3",
             "resources": {"gpu": 1, "probe": {"partition": "big"}}},
            {"name": "on-cpu", "backend": "tiny", "source": "gemma"},
            # A GPU request shared by anchor with the open models: an API model still needs none.
            {"name": "remote", "backend": "api", "source": "gpt-x", "probe_mode": "generate", "api": api,
             "resources": {"gpu": 1}},
        ],
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    jobs = {}
    for job in dry_run(path, tmp_path):
        if rule_of(job) == "probe_model":
            jobs[job.split("output: results/probe/", 1)[1].split("/", 1)[0]] = job
    got = {name: (resources(job)["gpu"], resources(job)["slurm_partition"]) for name, job in jobs.items()}
    assert got == {"on-gpu": ("1", "a100"), "own": ("1", "big"), "on-cpu": ("0", "small"), "remote": ("0", "small")}
    # Where a job runs is no parameter of it: naming a partition reruns nothing.
    assert "partition" not in command(jobs["own"])


def test_the_profile_no_longer_sends_every_job_to_one_partition():
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert "slurm_partition" not in (profile.get("default-resources") or {})
    assert "slurm_partition" not in str(profile.get("set-resources") or {})
