"""`akb check-ready`: every gap of a config listed before anything heavy runs, against a loopback
server that answers like the Hugging Face hub's model API."""

import json
import os
import re
import subprocess
import sys
import threading
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from huggingface_hub import constants

from akb.assets import readiness
from akb.config import validate_config
from akb.assets.readiness import MISSING, OK, UNCHECKED, check_readiness

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-test-0123456789-do-not-print"
TOKEN = "hf_test_token_granted"
SHA = "a" * 40

# The hub's repos: files and their sizes, gating, and which tokens were granted access.
REPOS = {
    "org/public-model": {"gated": False, "files": {"config.json": 700, "model.safetensors": 5_000_000,
                                                   "pytorch_model.bin": 9_000_000, "consolidated.safetensors": 10**10,
                                                   "model.fp32-00001-of-00002.safetensors": 10**10,
                                                   "original/consolidated.pth": 10**12}},
    "meta-llama/gated-model": {"gated": "manual", "granted": {TOKEN},
                               "files": {"config.json": 650, "model-00001-of-00002.safetensors": 4 * 10**9,
                                         "model-00002-of-00002.safetensors": 10**9,
                                         "model.safetensors.index.json": 2000}},
    "org/huge-model": {"gated": False, "files": {"config.json": 700, "model.safetensors": 10**16}},
}


class HubHandler(BaseHTTPRequestHandler):
    """GET /api/models/{repo}[/revision/{rev}] and HEAD /{repo}/resolve/{rev}/{file}, with the
    status codes and X-Error-Code headers huggingface_hub turns into its errors."""

    def log_message(self, *args):
        pass

    def _error(self, status: int, code: str) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", code)
        body = json.dumps({"error": code}).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self.server.requests.append(("GET", self.path, self.headers.get("authorization")))
        path = unquote(urlsplit(self.path).path)
        if not path.startswith("/api/models/"):
            return self._error(404, "EntryNotFound")
        repo, _, revision = path.removeprefix("/api/models/").partition("/revision/")
        if repo not in REPOS:
            return self._error(401, "RepoNotFound")  # the hub answers 401 for missing and private repos
        if revision and revision not in ("main", SHA):
            return self._error(404, "RevisionNotFound")
        spec = REPOS[repo]
        body = json.dumps({"id": repo, "sha": SHA, "gated": spec["gated"], "private": False,
                           "siblings": [{"rfilename": f, "size": s} for f, s in spec["files"].items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self.server.requests.append(("HEAD", self.path, self.headers.get("authorization")))
        repo, _, rest = unquote(urlsplit(self.path).path).lstrip("/").partition("/resolve/")
        spec = REPOS.get(repo)
        if spec is None:
            return self._error(401, "RepoNotFound")
        if spec["gated"]:
            auth = self.headers.get("authorization")
            if auth is None:
                return self._error(401, "GatedRepo")
            if auth.removeprefix("Bearer ") not in spec["granted"]:
                return self._error(403, "GatedRepo")
        filename = rest.partition("/")[2]
        self.send_response(200)
        self.send_header("X-Repo-Commit", SHA)
        self.send_header("ETag", '"etag"')
        self.send_header("Content-Length", str(spec["files"].get(filename, 0)))
        self.end_headers()


@pytest.fixture(scope="module")
def hub_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hub(hub_server, monkeypatch, tmp_path):
    """huggingface_hub pointed at the loopback hub, online, with an empty cache and no token.
    Its constants are read when it is imported, so the test sets them on the module as well."""
    url = f"http://127.0.0.1:{hub_server.server_address[1]}"
    for name, value in {"ENDPOINT": url, "HF_HUB_OFFLINE": False, "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
                        "HF_TOKEN_PATH": str(tmp_path / "no-token")}.items():
        monkeypatch.setattr(constants, name, value)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.chdir(tmp_path)
    hub_server.requests.clear()
    hub_server.url = url
    return hub_server


def write_mmau(directory: Path, n_items: int = 3, present: int = 3) -> Path:
    """An MMAU-format file whose first `present` clips exist (as files: the check never reads them)."""
    directory.mkdir(parents=True, exist_ok=True)
    records = [{"id": f"q{i}", "audio_id": f"./test-mini-audios/q{i}.wav", "question": f"Question {i}?",
                "choices": ["dog", "cat"], "answer": "dog", "task": "sound", "category": "Sound",
                "sub-category": "animals"} for i in range(n_items)]
    path = directory / "mmau-test-mini.json"
    path.write_text(json.dumps(records))
    (directory / "test-mini-audios").mkdir(exist_ok=True)
    for i in range(present):
        (directory / "test-mini-audios" / f"q{i}.wav").write_bytes(b"RIFF")
    return path


def local_model(directory: Path, with_config: bool = True) -> str:
    directory.mkdir(parents=True)
    if with_config:
        (directory / "config.json").write_text("{}")
    return str(directory)


def study(models, benchmarks=(), captioners=(), **extra):
    config = {"models": list(models), "audio_benchmarks": list(benchmarks), "captioners": list(captioners), **extra}
    return validate_config(config)


def hf(name, source, **kw):
    return {"name": name, "backend": "hf", "source": source, **kw}


def api(name, key_env):
    return {"name": name, "backend": "api", "source": name, "probe_mode": "generate",
            "api": {"base_url": "https://api.example.com/v1", "key_env": key_env}}


def by_name(report):
    return {c.name: c for c in report.checks}


# ---- each gap ----


def test_all_ok_config_is_ready_and_never_reveals_a_key(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("EXAMPLE_API_KEY", SECRET)
    bench = write_mmau(tmp_path / "mmau", n_items=3, present=3)
    config = study([hf("public", "org/public-model"), api("remote", "EXAMPLE_API_KEY"),
                    hf("mine", local_model(tmp_path / "mine"))],
                   [{"name": "mmau", "source": str(bench), "kind": "mmau"}])
    report = check_readiness(config)
    assert report.ready, report.table()
    checks = by_name(report)
    assert checks["mmau"].detail == "3 items, 3 of 3 clips present"
    assert checks["EXAMPLE_API_KEY"].status == OK
    # what from_pretrained downloads: top-level files, the standard safetensors only (not the .bin,
    # the consolidated or fp32 copies, nor original/)
    assert checks["org/public-model"].needs_bytes == 700 + 5_000_000
    assert SECRET not in report.table() and SECRET not in json.dumps(report.to_json())


def test_missing_benchmark_file_is_a_gap_unless_the_fetch_job_gets_it(hub):
    config = study([hf("public", "org/public-model")],
                   [{"name": "mmau", "source": "data/mmau/mmau-test-mini.json", "kind": "mmau"},
                    {"name": "mmar", "source": "data/mmar/MMAR-meta.jsonl", "kind": "mmar"}])
    config["audio_benchmarks"][1]["fetch"] = "mmar"  # the key another part of the workflow adds
    checks = by_name(check_readiness(config))
    assert checks["mmau"].status == MISSING and "not found" in checks["mmau"].detail
    assert checks["mmar"].status == OK and "fetch job" in checks["mmar"].detail
    # audio not there yet counts against the disk: MMAR's allowance
    assert checks["mmar"].needs_bytes == readiness.AUDIO_ALLOWANCE["mmar"]


def test_missing_clips_are_counted_not_read(hub, tmp_path):
    bench = write_mmau(tmp_path / "mmau", n_items=4, present=2)
    (tmp_path / "mmau" / "test-mini-audios" / "q0.wav").write_bytes(b"not audio at all")  # never opened
    entry = {"name": "mmau", "source": str(bench), "kind": "mmau"}
    report = check_readiness(study([hf("public", "org/public-model")], [entry]))
    check = by_name(report)["mmau"]
    assert check.status == MISSING
    assert check.detail.startswith("4 items, 2 of 4 clips present") and "q2.wav" in check.detail
    # The user's choice to leave bad items out is honoured: no gap, but said.
    skipping = by_name(check_readiness(study([hf("public", "org/public-model")], [{**entry, "on_bad_item": "skip"}])))
    assert skipping["mmau"].status == OK and "will be skipped" in skipping["mmau"].detail


def test_unloadable_benchmark_names_the_problem(hub, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"id": "q0", "audio_id": "a.wav", "question": "?", "choices": ["a", "b"],
                                 "answer": "c", "task": "sound"}]))
    check = by_name(check_readiness(study([hf("public", "org/public-model")],
                                          [{"name": "bad", "source": str(path), "kind": "mmau"}])))["bad"]
    assert check.status == MISSING and "cannot be loaded" in check.detail and str(path) in check.detail


def test_unset_key_names_the_variable(hub, monkeypatch):
    monkeypatch.delenv("EXAMPLE_API_KEY", raising=False)
    monkeypatch.setenv("OTHER_API_KEY", "  ")  # blank is not set
    models = [api("a", "EXAMPLE_API_KEY"), api("b", "EXAMPLE_API_KEY"), api("c", "OTHER_API_KEY")]
    report = check_readiness(study(models))
    checks = by_name(report)
    assert checks["EXAMPLE_API_KEY"].status == MISSING and "used by a, b" in checks["EXAMPLE_API_KEY"].detail
    assert "export EXAMPLE_API_KEY=" in checks["EXAMPLE_API_KEY"].fix
    assert checks["OTHER_API_KEY"].status == MISSING
    assert not report.ready


def test_gated_model_without_access_says_where_to_accept_the_licence(hub, monkeypatch):
    config = study([hf("llama", "meta-llama/gated-model")])
    check = by_name(check_readiness(config))["meta-llama/gated-model"]
    assert check.status == MISSING
    assert "accept the licence at https://huggingface.co/meta-llama/gated-model and set HF_TOKEN" in check.fix
    assert "no HF token" in check.detail
    monkeypatch.setenv("HF_TOKEN", "hf_not_granted")
    check = by_name(check_readiness(config))["meta-llama/gated-model"]
    assert check.status == MISSING and "has no access" in check.detail
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    check = by_name(check_readiness(config))["meta-llama/gated-model"]
    assert check.status == OK and "access granted" in check.detail
    assert check.needs_bytes == 650 + 5 * 10**9 + 2000
    assert ("HEAD", "/meta-llama/gated-model/resolve/main/config.json", f"Bearer {TOKEN}") in hub.requests


def test_unknown_model_and_revision(hub):
    checks = by_name(check_readiness(study([hf("nope", "org/no-such-model"),
                                            hf("old", "org/public-model", revision="v0")]))) 
    unknown = checks["org/no-such-model"]
    assert unknown.status == MISSING and "not found on the hub" in unknown.detail
    assert checks["org/public-model@v0"].status == MISSING and "'v0' not found" in checks["org/public-model@v0"].detail


def test_local_directory_needs_a_config(hub, tmp_path):
    empty = local_model(tmp_path / "weights-only", with_config=False)
    checks = by_name(check_readiness(study([hf("mine", empty), hf("gone", str(tmp_path / "missing"))])))
    assert checks[empty].status == MISSING and "config.json" in checks[empty].detail
    assert checks[str(tmp_path / "missing")].status == MISSING


def _cache(root: Path, repo: str, files: list[str]) -> None:
    """A model in the huggingface_hub cache layout (refs/main -> snapshots/<sha>/...)."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(SHA)
    for name in files:
        (folder / "snapshots" / SHA / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "snapshots" / SHA / name).write_text("{}")


def test_unreachable_hub_is_said_once_and_cached_models_pass(hub, monkeypatch, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    _cache(Path(constants.HF_HUB_CACHE), "org/cached-model", ["config.json", "model.safetensors"])
    report = check_readiness(study([hf("a", "org/cached-model"), hf("b", "org/public-model"),
                                    hf("c", "org/huge-model")]), timeout=30)
    checks = by_name(report)
    assert checks["org/cached-model"].status == OK and "local HF cache" in checks["org/cached-model"].detail
    assert checks["org/public-model"].status == UNCHECKED and checks["org/huge-model"].status == UNCHECKED
    assert len(report.notes) == 1 and "cannot reach" in report.notes[0] and closed in report.notes[0]
    assert not report.ready


def test_offline_mode_asks_nothing(hub, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    report = check_readiness(study([hf("b", "org/public-model")]))
    assert by_name(report)["org/public-model"].status == UNCHECKED
    assert "HF_HUB_OFFLINE" in report.notes[0] and hub.requests == []


def test_disk_counts_downloads_and_free_space(hub, monkeypatch):
    report = check_readiness(study([hf("huge", "org/huge-model")]))
    disk = [c for c in report.checks if c.check == "disk"]
    assert [c.status for c in disk] == [MISSING] and "needed" in disk[0].detail

    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(readiness.shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 10**6, 10**6))
    report = check_readiness(study([hf("public", "org/public-model")]))
    assert [c.status for c in report.checks if c.check == "disk"] == [MISSING]
    assert not report.ready


def test_demo_config_is_ready_offline_without_the_hub(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(readiness.shutil, "disk_usage", lambda path: Usage(10**12, 0, 10**12))  # not this machine's
    config = validate_config(yaml.safe_load((ROOT / "config/config.yaml").read_text()))
    report = check_readiness(config)
    assert report.ready, report.table()


def test_paper_config_lists_every_gap_at_once(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # none of the study's files here
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    for var in ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    config = validate_config(yaml.safe_load((ROOT / "config/paper.yaml").read_text()))
    gaps = {(c.check, c.name) for c in check_readiness(config).gaps}
    expected = {("bank", "resources/akb2000/akb2000.jsonl"),
                ("api key", "OPENAI_API_KEY"), ("api key", "GEMINI_API_KEY"), ("api key", "ANTHROPIC_API_KEY"),
                ("model", "meta-llama/Llama-3.1-8B-Instruct"), ("model", "openai/whisper-large-v3"),
                ("seeds", "grounded.distill.desta_aqa.audio_roots")}  # DeSTA-AQA5M, no corpus yet
    assert expected <= gaps


# ---- the workflow's job ----


def test_workflow_job_fails_with_the_list_and_writes_log_and_report(hub, tmp_path, capsys):
    config = study([api("remote", "UNSET_API_KEY")])
    with pytest.raises(readiness.NotReady, match=r"not ready: 1 gap\(s\), listed above and in logs/readiness.log"):
        readiness.check_for_workflow(config, "results/readiness.json", "logs/readiness.log")
    assert re.search(r"^MISSING +api key +UNSET_API_KEY +not set", capsys.readouterr().out, re.M)
    assert "UNSET_API_KEY" in (tmp_path / "logs/readiness.log").read_text()
    assert json.loads((tmp_path / "results/readiness.json").read_text())["ready"] is False


def test_a_run_rechecks_a_report_made_for_another_config_and_stops_on_a_gap(hub, tmp_path, monkeypatch):
    out, log = tmp_path / "results/readiness.json", tmp_path / "logs/readiness.log"
    monkeypatch.setenv("EXAMPLE_API_KEY", SECRET)
    ready = study([api("remote", "EXAMPLE_API_KEY")])
    assert readiness.recheck_if_config_changed(ready, out, log) is False  # no report yet: the job makes it
    readiness.check_for_workflow(ready, out, log)
    assert json.loads(out.read_text())["config_sha256"] == readiness.config_fingerprint(ready)

    calls = []
    real_check = readiness.check_readiness
    monkeypatch.setattr(readiness, "check_readiness", lambda config: calls.append(1) or real_check(config))
    assert readiness.recheck_if_config_changed(ready, out, log) is False and calls == []  # same config: no check

    changed = study([api("remote", "EXAMPLE_API_KEY"), api("other", "UNSET_API_KEY")])
    with pytest.raises(readiness.NotReady, match="1 gap"):
        readiness.recheck_if_config_changed(changed, out, log)
    assert calls == [1] and not out.exists()  # the job stands guard again
    assert "UNSET_API_KEY" in log.read_text()

    for unreadable in ('{"ready": tr', "[]"):  # a cut-off or foreign report is checked again, never trusted
        out.write_text(unreadable)
        assert readiness.recheck_if_config_changed(ready, out, log) is True
    readiness.check_for_workflow(ready, out, log)
    monkeypatch.setenv("UNSET_API_KEY", SECRET)
    assert readiness.recheck_if_config_changed(changed, out, log) is True
    assert json.loads(out.read_text())["config_sha256"] == readiness.config_fingerprint(changed)


def test_the_workflow_rechecks_a_changed_config_before_its_first_job(tmp_path):
    """A real `snakemake` run: a report made for another config is checked again, and a gap stops
    the run before any job (here the bank's preparation) starts."""
    work = tmp_path / "work"
    (work / "results").mkdir(parents=True)
    (work / "results/readiness.json").write_text(json.dumps({"ready": True, "config_sha256": "another config"}))
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump({"models": [api("remote", "UNSET_API_KEY")], "bank": {"limit": 4}}))
    env = {k: v for k, v in os.environ.items() if k != "UNSET_API_KEY"}
    done = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--snakefile", str(ROOT / "Snakefile"),
                           "--directory", str(work), "resources/banks/akb.jsonl", "--configfile", str(configfile)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**env, "HF_HUB_OFFLINE": "1"})
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    assert "readiness: not ready: 1 gap(s)" in output and "no job was started" in output
    assert re.search(r"^MISSING +api key +UNSET_API_KEY", output, re.M) and "Traceback" not in output
    assert not (work / "resources/banks/akb.jsonl").exists() and not (work / "results/readiness.json").exists()


MODEL_RULES = ("probe_model", "caption_benchmark", "cascade_model", "distill_data", "transcribe_training_clips",
               "transcribe_benchmark", "train_lalm", "evaluate_lalm", "diagnose_condition")


def test_every_model_job_waits_for_the_check_without_rerunning_when_it_is_rewritten():
    rules = "\n".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    for name in MODEL_RULES:
        body = rules.split(f"\nrule {name}:\n", 1)[1].split("\n    output:", 1)[0]
        assert "ready=ancient(READINESS)" in body, f"rule {name} does not wait for the readiness check"
    assert 'include: "workflow/rules/readiness.smk"' in (ROOT / "Snakefile").read_text()


# ---- the command ----


def run_cli(args, cwd, env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env.update(env_extra, PYTHONPATH=str(ROOT / "workflow"))
    return subprocess.run([sys.executable, "-m", "akb", "check-ready", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_exit_codes_and_report(hub, tmp_path):
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "EXAMPLE_API_KEY": SECRET}
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"models": [hf("public", "org/public-model"), api("remote", "EXAMPLE_API_KEY")]}))
    done = run_cli(["--config", str(good), "--out", "results/readiness.json"], tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ready: nothing missing" in done.stdout
    saved = json.loads((tmp_path / "results/readiness.json").read_text())
    assert saved["ready"] is True and SECRET not in json.dumps(saved) and SECRET not in done.stdout + done.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"models": [hf("llama", "meta-llama/gated-model"), api("remote", "UNSET_API_KEY")],
                                   "audio_benchmarks": [{"name": "mmau", "source": "nowhere/mmau.json"}]}))
    done = run_cli(["--config", str(bad), "--out", "results/bad.json"], tmp_path, env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    for line in (r"MISSING +benchmark +mmau ", r"MISSING +api key +UNSET_API_KEY ",
                 r"MISSING +model +meta-llama/gated-model "):
        assert re.search(f"^{line}", done.stdout, re.M), line
    assert "not ready: 3 gap(s), listed above and in results/bad.json" in done.stderr
    assert json.loads((tmp_path / "results/bad.json").read_text())["gaps"] == 3

    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(yaml.safe_dump({"models": [{"name": "x", "backend": "nope", "source": "y"}]}))
    done = run_cli(["--config", str(invalid)], tmp_path, env)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "config.models[0].backend" in done.stderr
