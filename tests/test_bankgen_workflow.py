"""`snakemake bankgen` end to end: an API generator (a local OpenAI-compatible server that writes
questions) and a tiny model cross-checking; then the reviewer's decisions, the release, and a plan
that probes the released bank with the unchanged probe stage. Also the paper config's plan."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from akb.bankgen.review import sheet_id
from akb.data.bank import load_bank
from akb.io import read_jsonl, sha256_file
from bankgen_fixtures import question_line
from test_workflow import ROOT, snakemake

QUESTIONS = {
    "Rhyme": [("Which word rhymes with 'light'?", ["kite", "lit", "late", "lot"], "A"),
              ("Which pair of words forms a slant rhyme?", ["cat / hat", "shape / keep", "dog / log", "red / bed"], "B"),
              ("What is an eye rhyme?", ["words sounding alike", "words spelled alike but sounding different",
                                         "a rhyme inside one line", "a rhyme on stressed syllables"], "B")],
    "Tempo and dynamics": [("What does 'forte' ask a performer to do?", ["play softly", "play loudly",
                                                                         "slow down", "speed up"], "B"),
                           ("Which marking means 'at a walking pace'?", ["andante", "presto", "largo", "vivace"], "A")],
}


class Generator(BaseHTTPRequestHandler):
    """Writes the questions above for a generation request (plus, for rhyme, a copy of a shipped bank
    item and a malformed line), and answers "(A)" to a question put to it by the cross-check."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"]
        if "Reply with exactly" in text:
            subcategory = re.search(r"Subcategory: (.+?) \(covers", text).group(1)
            lines = [question_line(*q) for q in QUESTIONS[subcategory]]
            if subcategory == "Rhyme":
                copied = next(it for it in load_bank("builtin") if it.subcategory == "rhyme")
                lines[2:] = [question_line(copied.question, list(copied.choices), copied.answer_letter),
                             '{"question": "Half a question?", "options": ["a1", "b1"], "answer": "A", "rationale": "r"}']
            content = "```json\n" + "\n".join(lines) + "\n```"
        else:
            content = "(A)"
        payload = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def api_url(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Generator)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _config(tmp_path, api_url, **bank):
    config = {
        "bank": bank or {"source": "builtin"},
        "models": [
            {"name": "fake-api", "backend": "api", "source": "fake-model", "probe_mode": "generate",
             "api": {"base_url": api_url, "max_retries": 0, "cache_dir": str(tmp_path / "api_cache")}},
            {"name": "tiny-llama", "backend": "tiny", "source": "llama", "probe_mode": "loglik"},
        ],
        "bankgen": {"name": "e2e", "version": "1.0.0", "subcategories": ["rhyme", "tempo_dynamics"],
                    "generators": ["fake-api"], "n_per_subcategory": 3, "examples": 2,
                    "embedding": {"model": "tfidf", "threshold": 0.9}, "crosscheck": {"models": ["tiny-llama"]}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_bankgen_candidates_checks_review_sheet_then_release(tmp_path, api_url):
    config = _config(tmp_path, api_url)
    snakemake("--cores", "2", "bankgen", "--configfile", str(config), "--directory", str(tmp_path))
    out = tmp_path / "results/bankgen/e2e"
    assert len(read_jsonl(out / "generated/fake-api.jsonl")) == 5
    (reject,) = read_jsonl(out / "rejects/fake-api.jsonl")
    assert reject["reason"] == "2 options instead of 4" and reject["subcategory"] == "rhyme"
    (removed,) = read_jsonl(out / "removed.jsonl")
    assert removed["check"] == "near_duplicate_bank" and "pho-rhyme-" in removed["reason"]
    checked = read_jsonl(out / "checked.jsonl")
    assert len(checked) == 4
    # the generator answers "(A)" to everything: wrong wherever rebalancing moved the answer elsewhere
    for r in checked:
        assert r["provenance"]["crosscheck"]["fake-api"]["answer"] == "A"
        assert ("generator_wrong" in r["provenance"]["flags"]) == (r["answer"] != "A")
        assert set(r["provenance"]["crosscheck"]) == {"tiny-llama", "fake-api"}
    assert sorted(r["answer"] for r in checked) == ["A", "B", "C", "D"]
    report = json.loads((out / "report.json").read_text())
    assert report["reject_reasons"] == {"2 options instead of 4": 1}
    assert report["removed_by_check"] == {"near_duplicate_bank": 1} and report["to_review"] == 4
    assert "near_duplicate_bank" in (out / "report.md").read_text()
    assert sheet_id(checked) in (out / "review.html").read_text()
    assert len((out / "review.csv").read_text().strip().splitlines()) == 5
    assert not (out / "release").exists()  # no decisions yet

    decisions = tmp_path / "review/e2e/decisions.json"
    decisions.parent.mkdir(parents=True)
    decisions.write_text(json.dumps({"format": "akb-review-decisions/1", "sheet": sheet_id(checked),
                                     "reviewer": "t", "decisions": {r["id"]: {"decision": "accept"} for r in checked}}))
    rerun = snakemake("--cores", "2", "bankgen", "--configfile", str(config), "--directory", str(tmp_path)).stderr
    assert "bankgen_generate" not in rerun  # nothing upstream reruns
    manifest = json.loads((out / "release/manifest.json").read_text())
    released = out / "release/e2e-1.0.0.jsonl"
    assert manifest["version"] == "1.0.0" and manifest["sha256"] == sha256_file(released) and manifest["items"] == 4
    assert all(it.extra["provenance"]["review"]["decision"] == "accept" for it in load_bank(str(released)))

    # the released bank is probed by the probe stage, configured like any other bank
    probe = _config(tmp_path, api_url, name="e2e", source=str(released))
    plan = snakemake("-n", "--configfile", str(probe), "--directory", str(tmp_path)).stdout
    (job,) = [j for j in plan.split("\n\n") if "rule prepare_bank:" in j]
    assert f"input: {released}" in job
    assert "output: results/probe/tiny-llama/e2e.jsonl" in plan


def test_paper_config_plans_generation_by_three_api_models(tmp_path):
    result = snakemake("-n", "bankgen", "--configfile", str(ROOT / "config/paper.yaml"), "--directory", str(tmp_path))
    out = result.stdout + result.stderr
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["bankgen_generate"] == 3 and counts["bankgen_crosscheck"] == 5
    assert "results/bankgen/akb-generated/generated/claude-sonnet-4.5.jsonl" in out


def test_generation_jobs_take_their_models_bankgen_resources(tmp_path):
    """A `bankgen` block in a model's resources applies to its generation jobs only, as the other
    stages' blocks do to theirs; the job's model entry carries no stage block."""
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    claude = next(m for m in config["models"] if m["name"] == "claude-sonnet-4.5")
    claude["resources"] = {**claude["resources"], "bankgen": {"runtime": 999}}
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(config))
    jobs = snakemake("-n", "bankgen", "--configfile", str(path), "--directory", str(tmp_path)).stdout.split("\n\n")
    (generate,) = [j for j in jobs if "rule bankgen_generate:" in j and "generated/claude-sonnet-4.5.jsonl" in j]
    assert "runtime=999" in generate and '"bankgen"' not in generate
    (check,) = [j for j in jobs if "rule bankgen_crosscheck:" in j and "crosscheck/claude-sonnet-4.5.jsonl" in j]
    assert "runtime=999" not in check


def test_default_target_does_not_build_a_bank(tmp_path):
    plan = snakemake("-n", "--configfile", str(ROOT / "config/config.yaml"), "--directory", str(tmp_path)).stdout
    assert "bankgen" not in plan
    assert "dose_backbone" not in plan and "knowledge_dose" not in plan  # nor the knowledge-dose experiment
