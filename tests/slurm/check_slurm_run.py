"""Checks of tests/slurm/run_slurm_test.sh once both runs are done (stdlib only).

    python check_slurm_run.py jobs LOG SACCT --cluster-rules R1,R2 --gpu-partition P --default-partition Q
        every cluster job of the SLURM run is in SLURM's accounting: COMPLETED, exit 0, under its rule,
        with the partition, memory, CPUs and time it asked for, and with a COMPLETED srun step (where
        the rule ran); the rules in sacct are exactly R1,R2,... (bookkeeping rules stay local); a job
        that asks for no GPU never ran in partition P, and one that names no partition ran in Q
    python check_slurm_run.py same DIR1 DIR2
        results/ and resources/ are byte-identical

Exits 1 with the reason on the first failed check.
"""

import argparse
import filecmp
import json
import re
import sys
from collections import Counter
from pathlib import Path

RULE = re.compile(r"^(local)?rule (\w+):$")
FIELD = re.compile(r"^    (\w+): (.*)$")
SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+) ")


def fail(message):
    print(f"CHECK FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def workflow_jobs(log_text):
    """The jobs of a snakemake log: (local, rule, fields of its block), and the SLURM id each
    submitted job got (snakemake jobid -> SLURM jobid)."""
    jobs, submitted, block = [], {}, None
    for line in log_text.splitlines():
        if match := RULE.match(line):
            block = {"local": bool(match.group(1)), "rule": match.group(2), "fields": {}}
            jobs.append(block)
        elif block is not None and (match := FIELD.match(line)):
            block["fields"][match.group(1)] = match.group(2)
        else:
            block = None
            if match := SUBMITTED.match(line):
                submitted[match.group(1)] = match.group(2)
    return jobs, submitted


def job_resources(fields):
    return dict(kv.split("=", 1) for kv in fields.get("resources", "").split(", ") if "=" in kv)


def expected_resources(fields, default_partition):
    """What SLURM should have granted: partition (the default one when the job names none), memory,
    time limit and CPUs from the job's resources."""
    resources = job_resources(fields)
    minutes = int(resources["runtime"])
    limit = f"{minutes // 60:02d}:{minutes % 60:02d}:00" if minutes < 24 * 60 else None
    return {"ReqMem": f"{resources['mem_mb']}M", "Timelimit": limit, "AllocCPUS": fields.get("threads", "1"),
            "Partition": resources.get("slurm_partition") or default_partition}


def rule_of(record):
    """The rule a sacct record ran, from the comment the executor gives each job (rule_<name>_...)."""
    match = re.match(r"rule_(\w+?)_wildcards|rule_(\w+)$", record["Comment"])
    return next(g for g in match.groups() if g) if match else record["Comment"]


SACCT_FIELDS = ["JobID", "JobName", "State", "ExitCode", "Comment", "Partition", "NodeList", "Elapsed",
                "ReqMem", "Timelimit", "AllocCPUS"]


def check_jobs(log_file, sacct_file, cluster_rules, gpu_partition, default_partition):
    """sacct_file: `sacct -a -P -n --format=` SACCT_FIELDS, jobs and their steps."""
    jobs, submitted = workflow_jobs(Path(log_file).read_text(errors="replace"))
    remote = {job["fields"]["jobid"]: job for job in jobs if not job["local"]}
    local = Counter(job["rule"] for job in jobs if job["local"])
    if not remote:
        fail(f"{log_file}: no job of the workflow was sent to the cluster")
    if set(submitted) != set(remote):
        fail(f"jobs sent to the cluster {sorted(remote)} but submissions reported for {sorted(submitted)}")
    records = {}
    for line in Path(sacct_file).read_text().splitlines():
        if line.strip():
            record = dict(zip(SACCT_FIELDS, line.split("|")))
            records[record["JobID"]] = record
    print(f"{'rule':<20} {'id':>4} {'state':<10} {'exit':<4} {'partition':<9} {'node':<6} "
          f"{'mem':<6} {'cpus':<4} {'limit':<9} {'elapsed':<9} step .0")
    for snakemake_id, job in sorted(remote.items(), key=lambda kv: int(submitted[kv[0]])):
        rule, slurm_id = job["rule"], submitted[snakemake_id]
        record, step = records.get(slurm_id), records.get(f"{slurm_id}.0")
        if record is None:
            fail(f"SLURM job {slurm_id} (rule {rule}) is not in sacct's records")
        print(f"{rule:<20} {slurm_id:>4} {record['State']:<10} {record['ExitCode']:<4} {record['Partition']:<9} "
              f"{record['NodeList']:<6} {record['ReqMem']:<6} {record['AllocCPUS']:<4} {record['Timelimit']:<9} "
              f"{record['Elapsed']:<9} {step['JobName'] + ' ' + step['State'] if step else '-'}")
        if record["State"] != "COMPLETED" or record["ExitCode"] != "0:0":
            fail(f"SLURM job {slurm_id} (rule {rule}): state {record['State']}, exit code {record['ExitCode']}")
        if not record["Comment"].startswith(f"rule_{rule}"):
            fail(f"SLURM job {slurm_id}: comment {record['Comment']!r} does not name rule {rule}")
        if step is None or step["State"] != "COMPLETED":
            fail(f"SLURM job {slurm_id} (rule {rule}): no COMPLETED srun step {slurm_id}.0 (the rule's own step)")
        for key, value in expected_resources(job["fields"], default_partition).items():
            if value is not None and record[key] != value:
                fail(f"SLURM job {slurm_id} (rule {rule}): {key} {record[key]}, the job asked for {value}")
        if int(job_resources(job["fields"]).get("gpu", "0")) == 0 and record["Partition"] == gpu_partition:
            fail(f"SLURM job {slurm_id} (rule {rule}) asks for no GPU but ran in the GPU partition {gpu_partition}")
    extra = {r["JobID"] for r in records.values() if "." not in r["JobID"]} - set(submitted.values())
    if extra:  # a retried job would show here (the profile sets retries: 1)
        fail(f"sacct lists SLURM jobs the run did not report: {sorted(extra, key=int)}")
    # Which rules SLURM ran, from its own records: the model jobs and nothing else (a bookkeeping rule
    # that lost its localrule would show here).
    ran = {rule_of(r) for r in records.values() if "." not in r["JobID"]}
    if ran != set(cluster_rules):
        fail(f"SLURM ran jobs of rules {sorted(ran)}, expected exactly {sorted(cluster_rules)} "
             f"(submitted, not local: {sorted(ran - set(cluster_rules))}; missing: {sorted(set(cluster_rules) - ran)})")
    partitions = Counter(r["Partition"] for r in records.values() if "." not in r["JobID"])
    by_rule = Counter(job["rule"] for job in remote.values())
    print(f"{len(remote)} cluster jobs, all COMPLETED in sacct with the requested partition, memory, CPUs and time: "
          + ", ".join(f"{rule} x{n}" for rule, n in sorted(by_rule.items())))
    print("partitions: " + ", ".join(f"{p} x{n}" for p, n in sorted(partitions.items()))
          + f"; none without a GPU in {gpu_partition}")
    print("run on the submitting host (localrules): " + ", ".join(f"{r} x{n}" for r, n in sorted(local.items())))


def tree(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


# Reports of the machine or the moment rather than results, present in both runs: readiness.json
# (free disk at the time of the check) may differ as a whole (None), provenance.json only in the
# top-level keys named here.
VOLATILE = {"readiness.json": None, "provenance.json": {"written_at"}}


def same_file(a, b, name):
    """Byte-identical; a report above: equal but for its volatile keys."""
    if name not in VOLATILE:
        return filecmp.cmp(a, b, shallow=False)
    if VOLATILE[name] is None:
        return True
    kept = [{k: v for k, v in json.loads(Path(f).read_text()).items() if k not in VOLATILE[name]} for f in (a, b)]
    return kept[0] == kept[1]


def check_same(dir1, dir2):
    total = 0
    for sub in ["results", "resources"]:
        a, b = Path(dir1) / sub, Path(dir2) / sub
        files_a, files_b = tree(a), tree(b)
        if not files_a:
            fail(f"{a}: no files")
        if files_a != files_b:
            only_a, only_b = sorted(set(files_a) - set(files_b)), sorted(set(files_b) - set(files_a))
            fail(f"{sub}/ differs: only in {dir1}: {only_a}; only in {dir2}: {only_b}")
        different = [f for f in files_a if not same_file(a / f, b / f, f)]
        if different:
            fail(f"{sub}/: {len(different)} of {len(files_a)} files differ: {different}")
        total += len(files_a)
        print(f"{sub}/: {len(files_a)} files, byte-identical ({', '.join(sorted(VOLATILE))}: but for volatile fields)")
    return total


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["jobs", "same"])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--cluster-rules", type=lambda text: text.split(","), default=[])
    parser.add_argument("--gpu-partition", default="gpu")
    parser.add_argument("--default-partition", default=None)
    args = parser.parse_args()
    if args.check == "jobs":
        check_jobs(args.first, args.second, args.cluster_rules, args.gpu_partition, args.default_partition)
    else:
        check_same(args.first, args.second)
