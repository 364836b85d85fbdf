"""bench/measurements.py: measured numbers recorded with their command, date, commit and machine,
replaced by name, and rendered into one page."""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("measurements", ROOT / "bench" / "measurements.py")
measurements = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(measurements)

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" errors="1" failures="1" skipped="2" tests="7" time="12.5"
 timestamp="2026-12-03T05:41:32.046466+02:00" hostname="{host}">
<testcase classname="t" name="a" time="1"/><testcase classname="t" name="b" time="1"/>
<testcase classname="t" name="c" time="1"/>
<testcase classname="t" name="d" time="1"><failure message="assert 0">assert 0</failure></testcase>
<testcase classname="t" name="e" time="1"><error message="fixture">boom</error></testcase>
<testcase classname="t" name="f" time="0"><skipped type="pytest.skip" message="no chromium"/></testcase>
<testcase classname="t" name="g" time="0"><skipped type="pytest.xfail" message="known"/></testcase>
</testsuite></testsuites>
"""


def probe_json(batched_per_s: float = 25.0) -> dict:
    """The shape bench/probe_throughput.py --json writes (two modes, no lm_eval)."""
    runs = [{"mode": "loglik", "method": "naive", "items": 32, "seconds": 3.2, "items_per_s": 10.0, "accuracy": 0.25},
            {"mode": "loglik", "method": "batched", "items": 32, "seconds": 1.28, "items_per_s": batched_per_s,
             "accuracy": 0.25},
            {"mode": "generate", "method": "naive", "items": 32, "seconds": 8.0, "items_per_s": 4.0, "accuracy": 0.0},
            {"mode": "generate", "method": "batched", "items": 32, "seconds": 2.0, "items_per_s": 16.0,
             "accuracy": 0.0}]
    agreement = [{"against": "naive", "method": "batched", "mode": m, "items": 32, "same_prediction": s,
                  "agreement": s / 32} for m, s in (("loglik", 32), ("generate", 31))]
    return {"model": "tiny-qwen3", "source": "tiny:qwen3", "templated": True, "items": 32, "bank": "builtin",
            "batch_size": 16, "max_new_tokens": 16, "threads": 1, "torch": "2.13.0+cpu", "runs": runs,
            "agreement": agreement, "skipped": [], "notes": []}


def train_json() -> dict:
    """The shape bench/train_throughput.py --json-out writes (training and a loglik evaluation)."""
    memory = {"peak_rss_mib": 2900.0, "rss_at_start_mib": 1500.0, "rss_scope": "phase"}
    runs = [{"mode": "loglik", "method": m, "items": 24, "calls": c, "seconds": 24 / s, "items_per_s": s,
             "accuracy": 0.3, "memory": memory} for m, c, s in (("loop", 96, 1.75), ("per-item", 24, 2.2),
                                                                 ("batched", 2, 2.91))]
    agreement = [{"against": "loop", "method": m, "mode": "loglik", "items": 24, "same_prediction": 24,
                  "agreement": 1.0} for m in ("per-item", "batched")]
    return {"backbone": "smollm2-135m-instruct", "spec": {"backend": "hf", "source": "x"}, "device": "cpu",
            "threads": 2, "torch": "2.13.0+cpu", "tiny": False, "checkpoint": None, "transcripts": "off",
            "lalm_config": {}, "trainable_parameters": 3790000,
            "train": {"steps": 5, "warmup_steps": 2, "batch_size": 8, "seconds": 11.65, "seconds_per_step": 2.33,
                      "samples_per_s": 3.43, "tokens_per_s": 900.0, "tokens": 10485, "padded_tokens": 12000,
                      "prep_seconds_per_step": 0.1, "bf16": False, "losses": [7.1, 6.0], "memory": memory},
            "eval": {"items": 24, "batch_size": 16, "max_new_tokens": 8, "runs": runs, "agreement": agreement}}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A committed working tree; the store and page live in its docs/, as in the project."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "code.py").write_text("x = 1\n")
    git(repo, "init", "-q")
    git(repo, "add", "code.py")
    git(repo, "commit", "-q", "-m", "init")
    return repo


def run(repo: Path, sub: str, *args: str) -> int:
    """main() on the repo's store and page, measuring the repo (--cwd); a command follows "--"."""
    args = list(args)
    split = args.index("--") if "--" in args else len(args)
    store, page = repo / "docs" / "measurements.json", repo / "docs" / "measured.md"
    return measurements.main(["--store", str(store), "--out", str(page), sub, *args[:split],
                              "--cwd", str(repo), *args[split:]])


def entries(repo: Path) -> dict:
    return json.loads((repo / "docs" / "measurements.json").read_text())["entries"]


def page(repo: Path) -> str:
    return (repo / "docs" / "measured.md").read_text()


def test_pytest_counts_recorded_with_commit_machine_and_rendered(repo, tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT.format(host=os.uname().nodename))
    assert run(repo, "pytest", "--junit", str(junit), "--wall-s", "754", "--note", "CI, idle") == 0
    entry = entries(repo)["test-suite"]
    assert entry["kind"] == "pytest"
    assert {k: entry["values"][k] for k in ("passed", "failed", "errors", "skipped", "xfailed", "pytest_s", "wall_s")} \
        == {"passed": 3, "failed": 1, "errors": 1, "skipped": 1, "xfailed": 1, "pytest_s": 12.5, "wall_s": 754}
    assert entry["date"] == "2026-12-03T03:41:32+00:00"  # the run's own start, in UTC
    assert entry["commit"] == git(repo, "rev-parse", "--short", "HEAD")
    assert entry["machine"]["cpus"] >= 1 and entry["machine"]["cpu"] and entry["machine"]["os"]
    assert entry["machine"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert entry["note"] == "CI, idle"
    text = page(repo)
    assert ("| test-suite | 3 | 1 | 1 | 1 | 1 | 12.5 s | 12 min 34 s | not recorded | 2026-12-03 03:41 "
            f"| {entry['commit']} | m1 | ") in text
    assert "CI, idle" in text and "## Machines" in text and entry["machine"]["cpu"] in text


def test_pytest_runs_the_command_it_is_given_and_exits_with_its_status(repo, tmp_path):
    junit = tmp_path / "junit.xml"
    script = f"import pathlib, sys; pathlib.Path({str(junit)!r}).write_text(sys.argv[1]); sys.exit(1)"
    assert run(repo, "pytest", "--junit", str(junit), "--", sys.executable, "-c", script,
               JUNIT.format(host=os.uname().nodename)) == 1  # tests failed: recorded all the same
    entry = entries(repo)["test-suite"]
    assert entry["values"]["exit_code"] == 1 and entry["values"]["failed"] == 1 and entry["values"]["wall_s"] > 0
    assert entry["command"].startswith(sys.executable)


def test_dirty_tree_is_marked(repo, tmp_path):
    (repo / "code.py").write_text("x = 2\n")
    (tmp_path / "p.json").write_text(json.dumps(probe_json()))
    assert run(repo, "import", "probe-tiny", "--json", str(tmp_path / "p.json"), "--command", "bench it") == 0
    assert entries(repo)["probe-tiny"]["commit"] == git(repo, "rev-parse", "--short", "HEAD") + "+dirty"


def test_import_probe_and_train_headlines(repo, tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(probe_json()))
    (tmp_path / "t.json").write_text(json.dumps(train_json()))
    assert run(repo, "import", "probe-tiny", "--json", str(tmp_path / "p.json"), "--command", "probe it") == 0
    assert run(repo, "import", "train-smollm2", "--json", str(tmp_path / "t.json")) == 0
    probe, train = entries(repo)["probe-tiny"], entries(repo)["train-smollm2"]
    assert probe["kind"] == "probe-throughput" and train["kind"] == "train-throughput"
    assert probe["values"]["modes"]["loglik"]["speedup"] == 2.5
    assert probe["values"]["modes"]["generate"]["same_predictions"] == [31, 32]
    assert train["values"]["train"]["samples_per_s"] == 3.43 and train["values"]["train"]["peak_rss_mib"] == 2900
    assert train["values"]["eval"]["modes"]["loglik"]["per_item_items_per_s"] == 2.2
    text = page(repo)
    assert ("| probe-tiny | tiny-qwen3 (chat) | loglik | 32 | 16 | 1 | 10.00 | 25.00 | **2.50x** | - | 32/32 "
            "| `probe it` |") in text
    assert "| generate | 32 | 16 | 1 | 4.00 | 16.00 | **4.00x** | - | 31/32 |" in text
    assert ("| train-smollm2 | smollm2-135m-instruct | cpu | 2 | 8 | 2.330 | 3.43 | 2,900 RSS "
            "| 24 items: loglik **1.66x** (2.91 vs 1.75 items/s, same 24/24) | not recorded |") in text


def test_latest_entry_of_a_name_replaces_the_older(repo, tmp_path):
    for name, per_s in (("probe-tiny", 25.0), ("probe-other", 30.0), ("probe-tiny", 40.0)):
        (tmp_path / "p.json").write_text(json.dumps(probe_json(per_s)))
        assert run(repo, "import", name, "--json", str(tmp_path / "p.json")) == 0
        if name == "probe-tiny" and per_s == 25.0:  # the store committed, then changed by the next two
            git(repo, "add", "docs")
            git(repo, "commit", "-q", "-m", "measured")
    stored = entries(repo)
    assert sorted(stored) == ["probe-other", "probe-tiny"]
    # The store and page that earlier recordings wrote do not count as changes to the tree.
    assert stored["probe-tiny"]["commit"] == git(repo, "rev-parse", "--short", "HEAD")
    assert stored["probe-tiny"]["values"]["modes"]["loglik"]["speedup"] == 4.0
    assert "**4.00x**" in page(repo) and "**2.50x**" not in page(repo)
    # The page is a function of the store alone: rendering again changes nothing.
    before = page(repo)
    assert measurements.main(["--store", str(repo / "docs" / "measurements.json"),
                              "--out", str(repo / "docs" / "measured.md"), "render"]) == 0
    assert page(repo) == before


def test_time_records_a_failing_command_and_exits_with_its_status(repo, capfd):
    script = ("import sys; print('hello from the command'); "
              "print('3 of 5 steps (60%) done', file=sys.stderr); sys.exit(3)")
    assert run(repo, "time", "demo", "--", sys.executable, "-c", script) == 3
    out, err = capfd.readouterr()
    assert "hello from the command" in out and "3 of 5 steps (60%) done" in err  # passed through
    values = entries(repo)["demo"]["values"]
    assert values["exit_code"] == 3 and (values["jobs_done"], values["jobs_total"]) == (3, 5)
    assert values["wall_s"] > 0
    assert f"| demo | {values['wall_s']:.1f} s | 3 | 3 of 5 |" in page(repo)
    assert entries(repo)["demo"]["command"].endswith("sys.exit(3)'")


def test_time_reads_the_job_count_from_the_snakemake_log_the_run_wrote(repo):
    logs = repo / ".snakemake" / "log"
    logs.mkdir(parents=True)
    stale = logs / "2020-01-01T000000.000000.snakemake.log"
    stale.write_text("9 of 9 steps (100%) done\n")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))  # an earlier run's log is not this run's
    assert run(repo, "time", "other", "--", sys.executable, "-c", "pass") == 0
    assert entries(repo)["other"]["values"]["jobs_total"] is None
    script = ("from pathlib import Path; Path('.snakemake/log/2026-12-03T000000.000000.snakemake.log')"
              ".write_text('74 of 75 steps (99%) done\\n75 of 75 steps (100%) done\\n')")
    assert run(repo, "time", "demo", "--", sys.executable, "-c", script) == 0
    values = entries(repo)["demo"]["values"]
    assert (values["exit_code"], values["jobs_done"], values["jobs_total"]) == (0, 75, 75)


def test_bad_inputs_name_the_file_and_record_nothing(repo, tmp_path, capsys):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model": "x"}))
    assert run(repo, "import", "x", "--json", str(other)) == 2
    assert str(other) in capsys.readouterr().err
    broken = tmp_path / "junit.xml"
    broken.write_text("<testsuites><testsuite")
    assert run(repo, "pytest", "--junit", str(broken)) == 2
    assert str(broken) in capsys.readouterr().err
    # A benchmark command that does not write its JSON: a stale file is not imported.
    other.write_text(json.dumps(probe_json()))
    os.utime(other, (time.time() - 60, time.time() - 60))
    with pytest.raises(SystemExit) as exited:
        run(repo, "import", "x", "--json", str(other), "--", sys.executable, "-c", "pass")
    assert exited.value.code == 2 and "not written by" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # ... and a failed one ends with its own status
        run(repo, "import", "x", "--json", str(other), "--", sys.executable, "-c", "raise SystemExit(5)")
    assert exited.value.code == 5
    assert not (repo / "docs" / "measurements.json").exists()
