"""Measured figures of the project, each with its command, date, commit and machine, in one file.

Numbers typed by hand into the README go stale: the code changes, the machine changes, nobody
remembers what was run. This script records each measurement as a named entry of
`docs/measurements.json` (the store) and renders `docs/measured.md` from it, the one page the
README and docs link to for measured numbers. Every recording sub-command re-renders the page.

    time NAME [--cwd DIR] -- CMD ...         run CMD (output passed through), record its wall time and
                                             exit status (and, for a Snakemake run, its job count:
                                             the last "N of M steps (P%) done" in its output or in the
                                             newest .snakemake/log/*.snakemake.log it wrote); exits
                                             with CMD's status
    pytest --junit FILE [--wall-s S] [-- CMD ...]
                                             tests passed / failed / skipped / errors and pytest's own
                                             time from a JUnit XML (pytest --junitxml); with CMD, run
                                             it first, time it (wall) and exit with its status
    import NAME --json FILE [-- CMD ...]     the headline numbers of bench/probe_throughput.py --json or
                                             bench/train_throughput.py --json-out (told apart by their
                                             fields); with CMD, run it first (it must write FILE)
    render                                   write the page from the store

Options of the recording sub-commands: --cwd DIR (the working tree measured: CMD runs there, and
its git commit, its .venv's Python and torch versions and its Snakemake log are recorded; default
the current directory), --note TEXT (conditions worth knowing, e.g. "6 other jobs running"),
--command TEXT (what produced FILE, when CMD is not given). Global options, before the
sub-command: --store (default docs/measurements.json), --out (default docs/measured.md).

An entry is replaced by a newer one of the same name and keeps its own date, commit and machine,
so the page can mix numbers measured at different times, and says so. Record on the machine that
measured: the machine fields are read when recording.

To refresh the numbers the README quotes: commit first (a clone has only committed work, and the
page shows the commit), then from the repository root, on an otherwise idle machine, measure in
fresh clones with their own .venv (CMD runs in --cwd; give FILE as an absolute path, as it is read
from here):

    # the offline demo, setup included (about 35-40 min on 2 cores); its job count is read too
    git clone . /tmp/akb-demo
    .venv/bin/python bench/measurements.py time demo --cwd /tmp/akb-demo --note "idle, fresh clone" -- \
        bash -c 'bash .ci/setup-venv && HF_HUB_OFFLINE=1 .venv/bin/snakemake --cores 2'
    # the whole test suite as CI runs it, in a clone of its own (setup not timed)
    git clone . /tmp/akb-tests && (cd /tmp/akb-tests && bash .ci/setup-venv)
    .venv/bin/python bench/measurements.py pytest --junit /tmp/akb-junit.xml --cwd /tmp/akb-tests \
        --note idle -- bash -c 'HF_HUB_OFFLINE=1 .venv/bin/python -m pytest --junitxml=/tmp/akb-junit.xml'
    # the probe against a naive loop, on the demo's converted models
    .venv/bin/python bench/measurements.py import probe-smollm2 --cwd /tmp/akb-demo \
        --json /tmp/probe-smollm2.json -- .venv/bin/python bench/probe_throughput.py \
        --model-dir resources/models/smollm2-135m-instruct --items 128 --mode both --batch-size 32 \
        --threads 2 --json /tmp/probe-smollm2.json
    .venv/bin/python bench/measurements.py import probe-gemma3 --cwd /tmp/akb-demo \
        --json /tmp/probe-gemma3.json -- .venv/bin/python bench/probe_throughput.py \
        --model-dir resources/models/gemma3-270m --plain --items 64 --mode loglik --batch-size 32 \
        --threads 2 --json /tmp/probe-gemma3.json
    # audio-LLM training steps and batched evaluation, on the demo's trained checkpoint
    .venv/bin/python bench/measurements.py import train-smollm2 --cwd /tmp/akb-demo \
        --json /tmp/train-smollm2.json -- .venv/bin/python bench/train_throughput.py --steps 5 \
        --batch-size 8 --eval-items 24 --eval-batch-size 16 --max-new-tokens 8 --threads 2 \
        --checkpoint results/grounded/smollm2-135m-instruct/checkpoint --json-out /tmp/train-smollm2.json

Then commit docs/measurements.json and docs/measured.md. Snakemake must print its progress (no
--quiet) for the job count. A JUnit file produced elsewhere (CI) is recorded with
`pytest --junit FILE --wall-s S --command TEXT`.

The store (JSON, version 1): {"version": 1, "entries": {NAME: ENTRY}}, where ENTRY is
    {"name", "kind": "time" | "pytest" | "probe-throughput" | "train-throughput",
     "values": {...the kind's numbers...}, "command": str | null, "cwd": str,
     "date": ISO 8601 UTC, "commit": short hash ["+dirty": tracked files changed] | "unknown",
     "machine": {"cpu", "cpus", "cpu_quota", "ram_gib", "os", "python", "torch", "gpu"},
     "load": 1-minute load average when the measurement started | null, "note": str | null}
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from akb.io import atomic_path, write_json

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "docs" / "measurements.json"
PAGE = ROOT / "docs" / "measured.md"
VERSION = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Snakemake's progress line (snakemake.logging): "75 of 75 steps (100%) done".
STEPS_RE = re.compile(rb"(\d+) of (\d+) steps? \(([\d.]+)%\) done")
# File times come from a coarse kernel clock that can lag time.time() by a few milliseconds: a file
# written just after a command starts must not look older than its start.
MTIME_SLACK_S = 1.0

# Run by the measured tree's interpreter, so a fresh clone's .venv reports its own versions.
VERSIONS_SNIPPET = """
import json, platform
from importlib import metadata
try:
    torch = metadata.version("torch")
except metadata.PackageNotFoundError:
    torch = None
print(json.dumps({"python": platform.python_version(), "torch": torch}))
"""


# ---- provenance: date, commit, machine ----


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit(cwd: Path, own_files: list[Path]) -> str:
    """Short commit of the tree at `cwd`, "+dirty" when tracked files differ from it (as in
    akb.provenance: untracked results and resources do not count), not counting this script's own
    store and page, which recording itself modifies."""
    commit = _git(cwd, "rev-parse", "--short", "HEAD")
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if not commit or not top:
        return "unknown"
    excludes = [f":(exclude){p.resolve().relative_to(Path(top).resolve())}" for p in own_files
                if p.resolve().is_relative_to(Path(top).resolve())]
    status = _git(Path(top), "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes)
    return commit + ("+dirty" if status else "")


def _first_line_value(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text(errors="replace").splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return (_first_line_value("/proc/cpuinfo", "model name") or platform.processor()
            or platform.machine() or "unknown")


def ram_gib() -> float | None:
    total = _first_line_value("/proc/meminfo", "MemTotal")  # "24683584 kB"
    if total:
        return round(int(total.split()[0]) / 2**20, 1)
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def cpu_quota() -> float | None:
    """CPUs a cgroup v2 quota allows (a container's real share), None without one."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else round(int(quota) / int(period), 2)


def os_name() -> str:
    try:
        return platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, KeyError, AttributeError):
        return platform.platform(terse=True)


def gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def interpreter(cwd: Path) -> str:
    venv = cwd / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def software(cwd: Path) -> dict:
    return dict(_versions(interpreter(cwd)))


@functools.lru_cache(maxsize=None)  # an interpreter's versions do not change while we run
def _versions(python: str) -> tuple:
    try:
        done = subprocess.run([python, "-c", VERSIONS_SNIPPET], capture_output=True, text=True, timeout=60)
        return tuple(json.loads(done.stdout).items())
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return (("python", None), ("torch", None))


def machine(cwd: Path) -> dict:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count()
    return {"cpu": cpu_model(), "cpus": cpus, "cpu_quota": cpu_quota(), "ram_gib": ram_gib(),
            "os": os_name(), **software(cwd), "gpu": gpus()}


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def provenance(args: argparse.Namespace, load: float | None) -> dict:
    return {"cwd": str(args.cwd), "commit": git_commit(args.cwd, [args.store, args.out]),
            "machine": machine(args.cwd), "load": load, "note": args.note}


# ---- running a command ----


class StepScanner:
    """Remembers the last Snakemake progress line in a byte stream fed in arbitrary chunks."""

    def __init__(self):
        self.partial = b""
        self.last: tuple[int, int] | None = None

    def feed(self, chunk: bytes) -> None:
        lines = re.split(rb"[\r\n]", self.partial + chunk)
        self.partial = lines.pop()
        for line in lines:
            self._scan(line)

    def close(self) -> None:
        self._scan(self.partial)
        self.partial = b""

    def _scan(self, line: bytes) -> None:
        for m in STEPS_RE.finditer(line):
            self.last = (int(m.group(1)), int(m.group(2)))


def _pump(source, sink, scanner: StepScanner) -> None:
    """Copy a child's pipe to our stream as it comes (so the user sees it live), scanning it."""
    out = getattr(sink, "buffer", None)
    while chunk := os.read(source.fileno(), 1 << 16):
        if out is not None:
            out.write(chunk)
        else:  # a text-only stream (a test's capture): decode for it
            sink.write(chunk.decode(errors="replace"))
        sink.flush()
        scanner.feed(chunk)
    scanner.close()


def run_command(cmd: list[str], cwd: Path) -> tuple[int, float, tuple[int, int] | None]:
    """(exit status, wall seconds, last Snakemake steps seen in its output) of `cmd` run in `cwd`.
    A signal's death is reported as the shell does, 128 + the signal number."""
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    try:
        child = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise FileNotFoundError(f"cannot run {shlex.join(cmd)} in {cwd}: {e.strerror or e}") from None
    scanners = [StepScanner(), StepScanner()]
    pumps = [threading.Thread(target=_pump, args=(pipe, sink, scanner), daemon=True)
             for pipe, sink, scanner in zip((child.stdout, child.stderr), (sys.stdout, sys.stderr), scanners)]
    for pump in pumps:
        pump.start()
    status = child.wait()
    for pump in pumps:
        pump.join()
    seconds = time.perf_counter() - start
    steps = [s.last for s in scanners if s.last]
    return (128 - status if status < 0 else status), seconds, max(steps, default=None)


def steps_from_log(cwd: Path, since: float) -> tuple[int, int] | None:
    """The last progress line of the newest Snakemake log under `cwd` written since `since` (epoch
    seconds): a command that hides Snakemake's output (a wrapper script, a log redirect) still
    leaves it there. An older log belongs to an earlier run and is not used."""
    logs = [p for p in (cwd / ".snakemake" / "log").glob("*.snakemake.log")
            if p.stat().st_mtime >= since - MTIME_SLACK_S]
    if not logs:
        return None
    scanner = StepScanner()
    scanner.feed(max(logs, key=lambda p: p.stat().st_mtime).read_bytes())
    scanner.close()
    return scanner.last


# ---- reading the measurements ----


def _as_utc(stamp: str | None) -> str | None:
    """A JUnit timestamp as UTC ISO 8601 when it carries a zone (pytest >= 7.4); None otherwise."""
    try:
        when = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None
    if when is None or when.tzinfo is None:
        return None
    return when.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def read_junit(path: Path) -> tuple[dict, dict]:
    """(counts and pytest's time, header: hostname and start) from a pytest JUnit XML file.

    Counted per testcase, as pytest's summary does: a <failure> is a failed test, an <error> an
    error (a test failing in its call and erroring in teardown counts in both), a <skipped> of type
    pytest.xfail an expected failure, any other <skipped> a skip."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: not a JUnit XML file ({e})") from None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if root.tag not in ("testsuite", "testsuites") or not suites:
        raise ValueError(f"{path}: no <testsuite> element (is it pytest --junitxml output?)")
    counts = dict.fromkeys(("passed", "failed", "errors", "skipped", "xfailed"), 0)
    for case in (c for s in suites for c in s.iter("testcase")):
        tags = {child.tag: child for child in case}
        if "failure" in tags or "error" in tags:
            counts["failed"] += "failure" in tags
            counts["errors"] += "error" in tags
        elif "skipped" in tags:
            counts["xfailed" if tags["skipped"].get("type") == "pytest.xfail" else "skipped"] += 1
        else:
            counts["passed"] += 1
    try:
        counts["pytest_s"] = round(sum(float(s.get("time", 0)) for s in suites), 2)
    except ValueError:
        raise ValueError(f"{path}: a <testsuite> time attribute is not a number") from None
    return counts, {"hostname": suites[0].get("hostname"), "date": _as_utc(suites[0].get("timestamp"))}


def _runs(data: dict) -> dict[tuple[str, str], dict]:
    return {(r["mode"], r["method"]): r for r in data["runs"]}


def _same(reports: list[dict], mode: str, method: str, against: str) -> list[int] | None:
    for r in reports:
        if (r["mode"], r["method"], r["against"]) == (mode, method, against):
            return [r["same_prediction"], r["items"]]
    return None


def _modes(data: dict, reference: str, extra: tuple[str, ...]) -> dict:
    """Per mode: the reference loop's and the batched probe's items/s, the speed-up, agreement,
    and the items/s of any other method named in `extra` (prefix match: "lm_eval 0.4.13")."""
    runs = _runs(data)
    modes = {}
    for mode in dict.fromkeys(m for m, _ in runs):
        ref, fast = runs[(mode, reference)], runs[(mode, "batched")]
        row = {f"{reference}_items_per_s": ref["items_per_s"], "batched_items_per_s": fast["items_per_s"],
               "speedup": fast["items_per_s"] / ref["items_per_s"], "accuracy": fast["accuracy"],
               "same_predictions": _same(data["agreement"], mode, "batched", reference)}
        for (m, method), run in runs.items():
            for prefix in extra:
                if m == mode and method.startswith(prefix):
                    row[f"{prefix.replace('-', '_')}_items_per_s"] = run["items_per_s"]
                    row[f"{prefix.replace('-', '_')}_method"] = method
        modes[mode] = row
    return modes


def probe_values(data: dict) -> dict:
    """Headline numbers of bench/probe_throughput.py --json."""
    return {"model": data["model"], "source": data["source"], "templated": data["templated"],
            "items": data["items"], "batch_size": data["batch_size"], "threads": data["threads"],
            "torch": data["torch"], "modes": _modes(data, "naive", ("lm_eval",))}


def train_values(data: dict) -> dict:
    """Headline numbers of bench/train_throughput.py --json-out."""
    train = data["train"]
    values = {"backbone": data["backbone"], "device": data["device"], "threads": data["threads"],
              "torch": data["torch"], "trainable_parameters": data["trainable_parameters"],
              "transcripts": data["transcripts"], "train": None, "eval": None}
    if train:
        values["train"] = {
            "batch_size": train["batch_size"], "steps": train["steps"], "bf16": train["bf16"],
            "seconds_per_step": train["seconds_per_step"], "samples_per_s": train["samples_per_s"],
            "tokens_per_s": train["tokens_per_s"], "peak_rss_mib": train["memory"]["peak_rss_mib"],
            "rss_scope": train["memory"]["rss_scope"],
            "cuda_peak_allocated_mib": train["memory"].get("cuda_peak_allocated_mib")}
    if data["eval"]["runs"]:
        evaluation = data["eval"]
        values["eval"] = {"items": evaluation["items"], "batch_size": evaluation["batch_size"],
                          "modes": _modes(evaluation, "loop", ("per-item",))}
    return values


def import_values(path: Path) -> tuple[str, dict]:
    """(kind, headline numbers) of a throughput benchmark's JSON, the kind told by its fields."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a JSON object expected")
    if "runs" in data:
        kind, read = "probe-throughput", probe_values
    elif "train" in data and "eval" in data:
        kind, read = "train-throughput", train_values
    else:
        raise ValueError(f"{path}: neither bench/probe_throughput.py --json output (no 'runs') "
                         f"nor bench/train_throughput.py --json-out output (no 'train' and 'eval')")
    try:
        return kind, read(data)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: {kind} JSON without the field {e}") from None


# ---- the store ----


def load_store(path: Path) -> dict:
    if not path.exists():
        return {"version": VERSION, "entries": {}}
    try:
        store = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if not isinstance(store, dict) or store.get("version") != VERSION or not isinstance(store.get("entries"), dict):
        raise ValueError(f"{path}: not a measurements store of version {VERSION}")
    for name, entry in store["entries"].items():
        if not isinstance(entry, dict) or entry.get("kind") not in TABLES:
            raise ValueError(f"{path}: entry {name!r} has no known kind (one of {', '.join(TABLES)})")
    return store


def write_page(path: Path, store: dict, store_path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(render(store, store_path, path), encoding="utf-8")


def record(args: argparse.Namespace, entry: dict) -> None:
    """Put `entry` in the store in place of any of the same name, and re-render the page."""
    store = load_store(args.store)
    store["entries"][entry["name"]] = entry
    store["entries"] = dict(sorted(store["entries"].items()))
    write_json(args.store, store)
    write_page(args.out, store, args.store)
    print(f"recorded {entry['kind']} entry {entry['name']!r} in {args.store}; rendered {args.out}", file=sys.stderr)


# ---- rendering ----


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _same_text(same: list[int] | None) -> str:
    return "-" if same is None else f"{same[0]}/{same[1]}"


def _day_minute(date: str) -> str:
    """'2026-12-03T03:43:15+00:00' as '2026-12-03 03:43' (the column says UTC)."""
    return date[:16].replace("T", " ")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: str | None) -> str:
    if not text:
        return "not recorded"
    return f"`{text}`" if "`" not in text else text


def time_rows(e: dict) -> list[list[str]]:
    v = e["values"]
    jobs = f"{v['jobs_done']} of {v['jobs_total']}" if v.get("jobs_total") is not None else "-"
    return [[duration(v["wall_s"]), str(v["exit_code"]), jobs]]


def pytest_rows(e: dict) -> list[list[str]]:
    v = e["values"]
    return [[str(v["passed"]), str(v["failed"]), str(v["errors"]), str(v["skipped"]), str(v["xfailed"]),
             duration(v["pytest_s"]), duration(v.get("wall_s"))]]


def probe_rows(e: dict) -> list[list[str]]:
    v = e["values"]
    return [[v["model"] + {True: " (chat)", False: " (plain)"}.get(v["templated"], ""), mode, str(v["items"]),
             str(v["batch_size"]), str(v["threads"]),
             _num(m["naive_items_per_s"]), _num(m["batched_items_per_s"]), f"**{m['speedup']:.2f}x**",
             _num(m.get("lm_eval_items_per_s")), _same_text(m["same_predictions"])]
            for mode, m in v["modes"].items()]


def train_rows(e: dict) -> list[list[str]]:
    v, t, ev = e["values"], e["values"]["train"] or {}, e["values"]["eval"]
    cuda = t.get("cuda_peak_allocated_mib")
    memory = "-" if not t else f"{t['peak_rss_mib']:,.0f} RSS" + (f", {cuda:,.0f} CUDA" if cuda else "")
    evals = "-" if not ev else f"{ev['items']} items: " + "; ".join(
        f"{mode} **{m['speedup']:.2f}x** ({_num(m['batched_items_per_s'])} vs {_num(m['loop_items_per_s'])} "
        f"items/s, same {_same_text(m['same_predictions'])})" for mode, m in ev["modes"].items())
    return [[v["backbone"], v["device"] + (" bf16" if t.get("bf16") else ""), str(v["threads"]),
             str(t.get("batch_size", "-")), _num(t.get("seconds_per_step"), ".3f"), _num(t.get("samples_per_s")),
             memory, evals]]


# kind: (title, explanation, value columns, rows of value cells per entry)
TABLES = {
    "time": ("Wall time", "`time`: a command's wall-clock time and exit status; for a Snakemake run, "
             "the jobs done of those planned.", ["wall time", "exit", "jobs"], time_rows),
    "pytest": ("Test suite", "`pytest`: counts from pytest's JUnit XML; pytest time is pytest's own, wall "
               "time that of the whole command.",
               ["passed", "failed", "errors", "skipped", "xfailed", "pytest time", "wall time"], pytest_rows),
    "probe-throughput": ("Probe throughput", "`bench/probe_throughput.py`: the batched probe against a naive "
                         "per-item loop (and lm-evaluation-harness when installed) on one loaded model; "
                         "same = items where the batched prediction equals the naive one.",
                         ["model", "mode", "items", "batch", "threads", "naive items/s", "batched items/s",
                          "speed-up", "lm-eval items/s", "same"], probe_rows),
    "train-throughput": ("Audio-LLM training and evaluation", "`bench/train_throughput.py`: timed optimizer "
                         "steps (after warm-up) and evaluation by the batched probe against a per-item loop; "
                         "memory in MiB.",
                         ["backbone", "device", "threads", "batch", "s/step", "samples/s", "peak memory",
                          "evaluation, batched vs loop"], train_rows),
}


def machine_ids(entries: list[dict]) -> dict[str, str]:
    """The same machine and software, in the same order of first use, get the same short id."""
    ids: dict[str, str] = {}
    for e in entries:
        key = json.dumps(e["machine"], sort_keys=True)
        ids.setdefault(key, f"m{len(ids) + 1}")
    return ids


def machine_row(mid: str, m: dict) -> list[str]:
    cpus = f"{m['cpus']}" + (f" (quota {m['cpu_quota']:g})" if m.get("cpu_quota") else "")
    return [mid, m["cpu"], cpus, _num(m.get("ram_gib"), ".1f"), m["os"], m.get("python") or "-",
            m.get("torch") or "-", ", ".join(m.get("gpu") or []) or "-"]


def conditions(e: dict) -> str:
    parts = [] if e.get("load") is None else [f"load {e['load']:g}"]
    return "; ".join(parts + ([e["note"]] if e.get("note") else [])) or "-"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows])


def render(store: dict, store_path: Path, page_path: Path) -> str:
    entries = list(store["entries"].values())
    ids = machine_ids(entries)
    source = os.path.relpath(store_path, page_path.parent)
    latest = [f"Latest measurement: {_day_minute(max(e['date'] for e in entries))} UTC.", ""] if entries else []
    lines = ["# Measured numbers", "", *latest,
             f"Written by `bench/measurements.py` from [{Path(source).name}]({source}); do not edit by hand. "
             "Each row keeps the date (UTC), commit and machine of its own measurement, so rows may come "
             "from different commits and machines. `+dirty`: tracked files differed from the commit. Load: the "
             "1-minute load average when the measurement started (other work on the machine). How to "
             "refresh them: the docstring of `bench/measurements.py`.", ""]
    for kind, (title, explanation, columns, rows_of) in TABLES.items():
        of_kind = [e for e in entries if e["kind"] == kind]
        if not of_kind:
            continue
        rows = [[e["name"], *cells, _code(e["command"]), _day_minute(e["date"]), e["commit"],
                 ids[json.dumps(e["machine"], sort_keys=True)], conditions(e)]
                for e in of_kind for cells in rows_of(e)]
        lines += [f"## {title}", "", explanation, "",
                  *table(["name", *columns, "command", "date (UTC)", "commit", "machine", "conditions"], rows), ""]
    if ids:
        lines += ["## Machines", "", *table(["id", "CPU", "CPUs", "RAM GiB", "OS", "Python", "torch", "GPU"],
                                            [machine_row(mid, json.loads(key)) for key, mid in ids.items()]), ""]
    else:
        lines += ["No measurements recorded yet.", ""]
    return "\n".join(lines)


# ---- sub-commands ----


def _rounded(value):
    """Floats to 4 decimals, so the store's diffs show changed numbers, not float noise."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _entry(args: argparse.Namespace, kind: str, values: dict, command: str | None, date: str, load) -> dict:
    return {"name": args.name, "kind": kind, "values": _rounded(values), "command": command, "date": date,
            **provenance(args, load)}


def cmd_time(args: argparse.Namespace) -> int:
    if not args.cmd:
        raise ValueError("time: no command given after --")
    date, load, since = utc_now(), load_average(), time.time()
    status, seconds, steps = run_command(args.cmd, args.cwd)
    steps = steps or steps_from_log(args.cwd, since)
    values = {"wall_s": round(seconds, 2), "exit_code": status,
              "jobs_done": steps[0] if steps else None, "jobs_total": steps[1] if steps else None}
    record(args, _entry(args, "time", values, shlex.join(args.cmd), date, load))
    return status


def _run_if_given(args: argparse.Namespace, output: Path) -> tuple[int, float | None, str | None]:
    """Run the sub-command's CMD when given: (status, wall seconds, command text). A CMD that leaves
    `output` older than its start did not produce it, so a stale file is never recorded: that ends
    with CMD's status (2 if it succeeded)."""
    if not args.cmd:
        return 0, None, args.command
    since = time.time()
    status, seconds, _ = run_command(args.cmd, args.cwd)
    if not output.exists() or output.stat().st_mtime < since - MTIME_SLACK_S:
        print(f"error: {output}: not written by {shlex.join(args.cmd)} (exit status {status}); nothing recorded",
              file=sys.stderr)
        raise SystemExit(status or 2)
    return status, round(seconds, 2), shlex.join(args.cmd)


def cmd_pytest(args: argparse.Namespace) -> int:
    date, load = utc_now(), load_average()
    status, wall, command = _run_if_given(args, args.junit)  # failed tests still write the file
    counts, header = read_junit(args.junit)
    host = platform.node()
    if header["hostname"] and header["hostname"] != host:
        print(f"warning: {args.junit} was written on {header['hostname']!r}, recorded on {host!r}: "
              "the machine fields describe this one", file=sys.stderr)
    args.name = args.name or "test-suite"
    values = {**counts, "wall_s": wall if wall is not None else args.wall_s,
              "exit_code": status if args.cmd else None}
    record(args, _entry(args, "pytest", values, command, header["date"] or date, load))
    return status


def cmd_import(args: argparse.Namespace) -> int:
    date, load = utc_now(), load_average()
    status, wall, command = _run_if_given(args, args.json)
    if status != 0:  # a failed benchmark's JSON is not a measurement
        print(f"error: {command} exited with status {status}; nothing recorded", file=sys.stderr)
        return status
    kind, values = import_values(args.json)
    record(args, _entry(args, kind, {**values, "wall_s": wall}, command, date, load))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    write_page(args.out, load_store(args.store), args.store)
    print(f"rendered {args.out} from {args.store}", file=sys.stderr)
    return 0


def _name(text: str) -> str:
    if not NAME_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r}: a name is letters, digits, '.', '_' and '-'")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--store", type=Path, default=STORE, help="the JSON store (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=PAGE, help="the rendered page (default: %(default)s)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cwd", type=Path, default=Path("."),
                        help="the working tree measured: CMD runs there, its commit and .venv are recorded")
    common.add_argument("--note", help="conditions worth knowing (e.g. other work running)")
    sub = parser.add_subparsers(dest="sub", required=True)
    p = sub.add_parser("time", parents=[common], help="time a command (-- CMD ...)",
                       usage="%(prog)s NAME [--cwd DIR] [--note TEXT] -- CMD ...")
    p.add_argument("name", type=_name)
    p.set_defaults(func=cmd_time)
    p = sub.add_parser("pytest", parents=[common], help="test counts from pytest's JUnit XML",
                       usage="%(prog)s --junit FILE [--name NAME] [--cwd DIR] [--note TEXT] "
                             "(--wall-s S --command TEXT | -- CMD ...)")
    p.add_argument("--junit", type=Path, required=True, help="pytest --junitxml output")
    p.add_argument("--name", type=_name, default=None, help="entry name (default: test-suite)")
    p.add_argument("--wall-s", type=float, help="wall time of the run, when CMD is not given")
    p.add_argument("--command", help="the command that wrote the file, when CMD is not given")
    p.set_defaults(func=cmd_pytest)
    p = sub.add_parser("import", parents=[common], help="a throughput benchmark's JSON",
                       usage="%(prog)s NAME --json FILE [--cwd DIR] [--note TEXT] (--command TEXT | -- CMD ...)")
    p.add_argument("name", type=_name)
    p.add_argument("--json", type=Path, required=True,
                   help="what probe_throughput.py --json or train_throughput.py --json-out wrote")
    p.add_argument("--command", help="the command that wrote the file, when CMD is not given")
    p.set_defaults(func=cmd_import)
    sub.add_parser("render", help="write the page from the store").set_defaults(func=cmd_render)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    # Everything after the first "--" is the command, passed on untouched (its own options included).
    split = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    args.cmd = argv[split + 1 :]
    if args.cmd and args.sub == "render":
        build_parser().error("render takes no command")
    if args.cmd and getattr(args, "command", None):
        build_parser().error("give either -- CMD or --command, not both")
    if hasattr(args, "cwd"):
        args.cwd = args.cwd.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        # Input problems are one line naming the file, not a traceback (as akb's CLI does).
        print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
