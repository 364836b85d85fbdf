"""The checks of the real SLURM test (tests/slurm/check_slurm_run.py) on a made-up run: they pass a
run as the profile should submit it, and catch a bookkeeping rule sent to the cluster and a CPU job
in the GPU partition (the real cluster test itself is opt-in: tests/test_slurm_cluster.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

CHECK = Path(__file__).resolve().parent / "slurm/check_slurm_run.py"
COMPLETED = "COMPLETED|0:0"


def job(jobid, slurm_id, rule, partition="", gpu=0):
    return (f"rule {rule}:\n    jobid: {jobid}\n    threads: 1\n"
            f"    resources: mem_mb=2000, runtime=15, gpu={gpu}, slurm_partition={partition}\n\n"
            f"Job {jobid} has been submitted with SLURM jobid {slurm_id} (log: x).\n")


def sacct(slurm_id, rule, partition, wildcards="_wildcards_model=m"):
    record = f"{slurm_id}|{rule}|{COMPLETED}|rule_{rule}{wildcards}|{partition}|node|00:00:05|2000M|00:15:00|1"
    return record + f"\n{slurm_id}.0|python|{COMPLETED}||{partition}|node|00:00:04|||1\n"


def check(tmp_path, log, records):
    (tmp_path / "run.log").write_text("localrule score_probe:\n    jobid: 9\n\n" + log)
    (tmp_path / "sacct.txt").write_text(records)
    return subprocess.run([sys.executable, str(CHECK), "jobs", str(tmp_path / "run.log"), str(tmp_path / "sacct.txt"),
                           "--cluster-rules", "generate_synthetic,probe_model", "--gpu-partition", "gpu",
                           "--default-partition", "cpu"], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case, log, records, error", [
    ("as submitted", job(1, 11, "generate_synthetic") + job(2, 12, "probe_model"),
     sacct(11, "generate_synthetic", "cpu", "") + sacct(12, "probe_model", "cpu"), None),
    ("a bookkeeping rule on the cluster", job(1, 11, "generate_synthetic") + job(2, 12, "probe_model")
     + job(3, 13, "score_probe"),
     sacct(11, "generate_synthetic", "cpu", "") + sacct(12, "probe_model", "cpu") + sacct(13, "score_probe", "cpu"),
     "submitted, not local: ['score_probe']"),
    ("a CPU job in the GPU partition", job(1, 11, "generate_synthetic") + job(2, 12, "probe_model", "gpu"),
     sacct(11, "generate_synthetic", "cpu", "") + sacct(12, "probe_model", "gpu"),
     "asks for no GPU but ran in the GPU partition gpu"),
    ("no partition named, not the default one", job(1, 11, "generate_synthetic") + job(2, 12, "probe_model"),
     sacct(11, "generate_synthetic", "cpu", "") + sacct(12, "probe_model", "other"),
     "Partition other, the job asked for cpu"),
])
def test_the_cluster_checks(tmp_path, case, log, records, error):
    result = check(tmp_path, log, records)
    if error is None:
        assert result.returncode == 0, result.stderr
        assert "generate_synthetic x1, probe_model x1" in result.stdout and "partitions: cpu x2" in result.stdout
    else:
        assert result.returncode == 1 and error in result.stderr, (case, result.stderr)
