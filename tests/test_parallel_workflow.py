"""The workflow plans data-parallel training and sharded distillation with the SLURM profile, and
leaves the jobs of configs that ask for neither exactly as they were."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def plan(tmp_path, edit=None):
    """`snakemake -n` of the paper's config (edited) with the SLURM profile: {output: job text}."""
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    if edit:
        edit(config)
    shutil.copytree(ROOT / "config", tmp_path / "config")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "-n", "--configfile",
         str(tmp_path / "study.yaml"), "--directory", str(tmp_path), "--workflow-profile", str(ROOT / "profiles/slurm")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    if result.returncode:
        pytest.fail(result.stdout[-3000:] + result.stderr[-3000:])
    jobs = {}
    for job in (result.stdout + result.stderr).split("\n\n"):
        for line in job.splitlines():
            if line.strip().startswith("output: "):
                jobs[line.split("output: ", 1)[1]] = job
    return jobs


def resources(job):
    line = next(line for line in job.splitlines() if line.strip().startswith("resources: "))
    return dict(item.split("=", 1) for item in line.split("resources: ", 1)[1].split(", "))


def command(job):
    return next(line for line in job.splitlines() if line.startswith("Shell command: "))[len("Shell command: "):]


def set_train(name, **train):
    def edit(config):
        entry = next(m for m in config["models"] if m["name"] == name)
        entry["resources"] = {**entry["resources"], "train": {**entry["resources"].get("train", {}), **train}}

    return edit


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """DeSTA2.5's shape for one backbone (8 GPUs on a node), two 4-GPU nodes for another, and the
    distillation in 3 shards per backbone; beside the paper's config with its distillation unsharded."""

    def edit(config):
        set_train("qwen2.5-7b", gpu=8)(config)
        set_train("qwen3-14b", gpu=4, nodes=2)(config)
        config["grounded"]["distill"]["shards"] = 3

    def unsharded(config):
        config["grounded"]["distill"].pop("shards", None)

    return plan(tmp_path_factory.mktemp("parallel"), edit), plan(tmp_path_factory.mktemp("paper"), unsharded)


def test_a_multi_gpu_backbone_trains_under_torchrun_on_one_node(planned):
    jobs, _ = planned
    job = jobs["results/grounded/qwen2.5-7b/checkpoint"]
    assert "rule train_lalm_parallel:" in job
    assert command(job).startswith("torchrun --standalone --nproc-per-node 8 -m akb train ")
    res = resources(job)  # sbatch --gpus=8 --nodes=1, one task (torchrun), as the SLURM plugin reads them
    assert (res["gpu"], res["nodes"], res["tasks"], res["tasks_per_gpu"]) == ("8", "1", "1", "0")
    assert res["mpi"] == "" and res["slurm_partition"] == "gpu" and res["runtime"] == "2880"
    assert "--state-dir resources/train_state/qwen2.5-7b" in command(job)


def test_a_multi_node_backbone_runs_one_torchrun_per_node(planned):
    jobs, _ = planned
    job = jobs["results/grounded/qwen3-14b/checkpoint"]
    assert command(job).startswith("srun --nodes 2 --ntasks 2 --ntasks-per-node 1 --gpus-per-node 4 ")
    assert "torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d" in command(job)
    res = resources(job)
    assert (res["gpu"], res["nodes"], res["tasks"], res["mpi"]) == ("8", "2", "2", "srun")


def test_single_gpu_backbones_and_unsharded_configs_keep_their_jobs(planned):
    """Nothing changes for backbones trained on one GPU, nor for any job of an unsharded config."""
    jobs, paper = planned
    for name in ("qwen3-8b", "llama-3.1-8b"):
        out = f"results/grounded/{name}/checkpoint"
        assert "rule train_lalm:" in jobs[out] and command(jobs[out]).startswith("python -m akb train ")
        assert command(jobs[out]) == command(paper[out])
    assert not any("train_lalm_parallel" in job or "--shard" in job for job in paper.values())
    assert "results/grounded/qwen2.5-7b/shards/distill.1-of-3.jsonl" not in paper


def test_distillation_is_sharded_and_merged(planned):
    jobs, paper = planned
    unsharded = command(paper["results/grounded/qwen3-8b/distill.jsonl"])
    for k in (1, 2, 3):
        part = f"results/grounded/qwen3-8b/shards/distill.{k}-of-3.jsonl"
        assert command(jobs[part]) == unsharded.replace(
            "--out results/grounded/qwen3-8b/distill.jsonl > logs/grounded/qwen3-8b/distill.log",
            f"--shard {k}/3 --out {part} > logs/grounded/qwen3-8b/shards/distill.{k}-of-3.log")
        assert resources(jobs[part])["gpu"] == "1"
    merge = jobs["results/grounded/qwen3-8b/distill.jsonl"]
    assert "rule merge_distill_shards:" in merge and resources(merge)["gpu"] == "0"
    parts = " ".join(f"results/grounded/qwen3-8b/shards/distill.{k}-of-3.jsonl" for k in (1, 2, 3))
    assert f"--merge {parts} --out results/grounded/qwen3-8b/distill.jsonl" in command(merge)
    # Sharding the distillation retrains nothing: training reads the same settings.
    train = "results/grounded/qwen3-8b/checkpoint"
    assert command(jobs[train]) == command(paper[train])
