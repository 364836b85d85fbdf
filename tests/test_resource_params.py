"""Resources are no job parameters: Snakemake reruns a finished job whose parameters change, so
raising a job's memory, runtime, GPUs or partition after a run (one job ran out of memory) must rerun
none of the others, while changing a real setting still reruns the jobs it changes."""

import copy
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from akb.cli import build_parser
from akb.config import SCHEDULING_BLOCKS, schema_key_paths, validate_config, without_scheduling
from akb.models import ModelSpec

ROOT = Path(__file__).resolve().parent.parent
# What a job asks the cluster for; the schema must keep all of them in a scheduling block.
RESOURCE_KEYS = {"gpu", "mem_mb", "runtime", "threads", "nodes", "partition"}
API = {"base_url": "http://127.0.0.1:9/v1", "key_env": "EXAMPLE_API_KEY"}

# A study with every kind of entry that carries resources: a GPU model that is also a grounded,
# diagnosed backbone and an audio LLM's text backbone; a Whisper captioner; an audio LLM; the judge;
# the transcription jobs. Only planned, never run.
STUDY = {
    "bank": {"limit": 8},
    "synthetic": {"n_test": 8, "n_train": 8},
    "audio_benchmarks": [{"name": "synth", "source": "synthetic"}],
    "partitions": {"gpu": "a100", "cpu": "small"},
    "models": [
        # Training keeps one GPU: more would train data-parallel, with a larger global batch (a real change).
        {"name": "big", "backend": "hf", "source": "org/big",
         "resources": {"gpu": 1, "mem_mb": 16000, "runtime": 60, "threads": 4, "train": {"gpu": 1}}},
        {"name": "small", "backend": "tiny", "source": "llama"},
    ],
    "captioners": [{"name": "whisper", "backend": "whisper", "source": "org/whisper",
                    "resources": {"gpu": 1, "mem_mb": 8000, "runtime": 30}}],
    "audio_llms": [{"name": "omni", "backend": "qwen2-audio", "source": "org/omni", "text_backbone": "big",
                    "resources": {"gpu": 1, "mem_mb": 32000, "runtime": 120}}],
    "grounded": {"backbones": ["big"], "transcribe": {"resources": {"gpu": 1, "mem_mb": 8000}}},
    "diagnostics": {"models": ["big"], "judge": {"name": "judge", "backend": "api", "source": "judge-x",
                                                 "probe_mode": "generate", "api": API,
                                                 "resources": {"mem_mb": 2000}}},
}


def raised(config):
    """`config` after a run ran out of memory and time: more of everything, on other partitions."""
    config = copy.deepcopy(config)
    config["partitions"] = {"gpu": "h100", "cpu": "medium"}
    blocks = [config["models"][0]["resources"], config["captioners"][0]["resources"],
              config["audio_llms"][0]["resources"], config["grounded"]["transcribe"]["resources"],
              config["diagnostics"]["judge"]["resources"]]
    for block in blocks:
        block.update(mem_mb=block.get("mem_mb", 4000) * 4, runtime=block.get("runtime", 60) * 4, threads=8,
                     partition="long")
        block["gpu"] = block.get("gpu", 0) + 1
    config["models"][1]["resources"] = {"mem_mb": 9000, "probe": {"runtime": 600}}
    return config


def real_change(config):
    """`config` with settings that change answers: longer generations and another caption batch."""
    config = copy.deepcopy(config)
    config["models"][0]["max_new_tokens"] = 7
    config["audio_llms"][0]["max_new_tokens"] = 64
    config["captioners"][0]["batch_size"] = 2
    return config


# One process: plan `all` for the first config and record every job as finished, as a run does
# (outputs written, Snakemake's metadata with each job's parameters); then plan the others and list
# the jobs whose parameters Snakemake finds changed (its `params` rerun trigger), with every command.
# (`snakemake --list-changes params` cannot say it: 9.x lists every recorded file, changed or not.)
PLAN = """
import json, os, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, DAGSettings, ExecutionSettings, OutputSettings, Quietness,
                                      ResourceSettings)

snakefile, workdir, finished, *others = sys.argv[1:]


def planned(api, configfile, forceall=True):
    workflow_api = api.workflow(snakefile=Path(snakefile), workdir=Path(workdir), resource_settings=ResourceSettings(),
                                config_settings=ConfigSettings(configfiles=[Path(configfile)]))
    workflow_api.dag(DAGSettings(forceall=forceall))
    workflow = workflow_api._workflow
    workflow._prepare_dag(forceall=forceall, ignore_incomplete=True, lock_warn_only=True)
    workflow._build_dag()
    return workflow


with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    workflow = planned(api, finished)
    workflow.execution_settings = ExecutionSettings()
    written = []
    for job in workflow.dag.jobs:
        for f in job.output:
            path = Path(f)
            if f.is_directory:
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            written.append(path)
    for path in written:  # one time for all: no output is newer than the outputs made from it
        os.utime(path, (1.7e9, 1.7e9))
    for job in workflow.dag.jobs:
        workflow.async_run(workflow.persistence.finished(job))
plans = []
for configfile in others:
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow = planned(api, configfile)
        jobs = [job for job in workflow.dag.jobs if job.output]
        plan = {"changed": sorted({job.rule.name for job in jobs if workflow.persistence.params_changed(job)}),
                "commands": {str(job.output[0]): job.shellcmd for job in jobs if job.shellcmd}}
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:  # what `snakemake` itself would run
        plan["needrun"] = sorted({job.rule.name for job in planned(api, configfile, forceall=False).dag.needrun_jobs()})
    plans.append(plan)
print(json.dumps(plans))
"""


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """(after raising resources, after a real change): the rules with changed params, the commands."""
    tmp = tmp_path_factory.mktemp("resources")
    paths = []
    for name, config in (("finished", STUDY), ("raised", raised(STUDY)), ("changed", real_change(STUDY))):
        paths.append(tmp / f"{name}.yaml")
        paths[-1].write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-c", PLAN, str(ROOT / "Snakefile"), str(tmp / "work"), *map(str, paths)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_raising_resources_reruns_no_finished_job(plans):
    after_raise, _ = plans
    # Only the provenance record of the resolved config (results/config.json) is rewritten: a local
    # job of seconds that no other job reads.
    assert after_raise["changed"] == ["provenance"]
    assert after_raise["needrun"] == ["all", "provenance"]


def test_a_real_setting_still_reruns_the_jobs_it_changes(plans):
    _, after_change = plans
    changed = {"probe_model", "cascade_model", "distill_data", "train_lalm", "evaluate_lalm", "diagnose_condition",
               "caption_benchmark", "evaluate_audio_llm"}
    assert changed <= set(after_change["changed"])
    # ... in the same run that notices the change. The readiness check is not among them: a job rerun
    # upstream of every model job made Snakemake skip the triggers of everything below it (the
    # ancient() edge kept the rerun from reaching them), so the first run only rechecked readiness.
    assert changed <= set(after_change["needrun"])
    assert "check_readiness" not in after_change["needrun"]


def test_the_jobs_gpus_still_reach_the_loader_and_every_command_parses(plans):
    after_raise, _ = plans
    parser = build_parser()
    parsed = {}
    for output, command in after_raise["commands"].items():
        argv = shlex.split(command.split(" > ")[0])
        if argv[:3] == ["python", "-m", "akb"]:
            parsed[output] = parser.parse_args(argv[3:])  # the command the rule writes is one the CLI reads
    for output, args in parsed.items():
        for entry in (getattr(args, "model", None), getattr(args, "text_backbone", None)):
            assert not (isinstance(entry, dict) and set(entry) & set(SCHEDULING_BLOCKS)), output
    probe = parsed["results/probe/big/akb.jsonl"]
    assert ModelSpec.from_config(probe.model, probe.gpus).gpus == 2  # raised from 1: spread over both
    backbone = parsed["results/diagnostics/omni/synth/backbone.jsonl"]  # the text backbone's diagnose GPUs
    assert ModelSpec.from_config(backbone.text_backbone, backbone.gpus).gpus == 2


def test_the_schema_keeps_every_resource_setting_in_a_scheduling_block():
    outside = [p for p in schema_key_paths() if p[-1] in RESOURCE_KEYS]
    assert outside == [], f"resource settings outside {SCHEDULING_BLOCKS}: they would reach jobs' parameters"


def test_the_readiness_check_sees_the_same_config_whatever_the_resources():
    finished, after_raise = validate_config(STUDY), validate_config(raised(STUDY))
    assert finished != after_raise
    assert without_scheduling(finished) == without_scheduling(after_raise)
    assert without_scheduling(finished) != without_scheduling(validate_config(real_change(STUDY)))
    assert "mem_mb" not in json.dumps(without_scheduling(finished))


def test_gpus_given_to_a_job_override_the_entry_and_none_keeps_it():
    entry = {"name": "m", "backend": "tiny", "source": "llama", "resources": {"gpu": 1, "mem_mb": 100}}
    assert ModelSpec.from_config(entry, 4).gpus == 4
    assert ModelSpec.from_config(entry).gpus == 1
    assert ModelSpec.from_config({k: v for k, v in entry.items() if k != "resources"}, None).gpus == 0
