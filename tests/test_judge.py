"""`akb judge` (All That Glitters' LLM judge for answers the rules cannot read) against a loopback
OpenAI-compatible server, and `akb score-audio --judged`."""

import json
import re

import numpy as np
import pytest
import soundfile as sf
from test_api_backend import KEY_ENV, Handler, record_waits, running_server

from akb.cli import main
from akb.data.items import MCQItem
from akb.io import read_jsonl, write_jsonl
from akb.scoring.judge import Judge, judge_predictions, load_judge_prompt, parse_selection, score_judged

CHOICES = ["Man", "Woman", "Child", "Robot"]
# Item -> (the model's output, the judge's replies, attempt by attempt). Outputs the rules read get no request.
CASES = {
    "q1": ("B", None),  # a letter: rules
    "q2": ("Woman", None),  # one option's text: rules
    "q3": ("It sounds like a grown-up lady.", ["Selected: B"]),
    "q4": ("Could be the man or the child.", ["Selected: NONE"]),
    "q5": ("I would go with the small one.", ["I think C", "Selected: C"]),  # right on the retry
    "q6": ("no idea really", ["B probably", "Selected: b", "Selected: E"]),  # never in form: unparseable
    "q7": ("", None),  # empty: nothing to judge
}


class JudgeHandler(Handler):
    """Replies scripted per question and attempt (the attempt: how many replies the conversation holds)."""

    def respond(self, action, body):
        if action != "ok":
            return super().respond(action, body)
        question = re.search(r"Question:\n(q\d+)\?", body["messages"][0]["content"])[1]
        attempt = (len(body["messages"]) - 1) // 2
        reply = {"choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": CASES[question][1][attempt]}}]}
        self.send(200, json.dumps(reply).encode())


@pytest.fixture
def server(monkeypatch):
    record_waits(monkeypatch)
    with running_server(monkeypatch, JudgeHandler) as srv:
        yield srv


@pytest.fixture
def entry(server, tmp_path):
    return {"name": "haiku", "backend": "api", "source": "claude-haiku-4-5",
            "api": {"base_url": server.url, "key_env": KEY_ENV, "cache_dir": str(tmp_path / "cache"),
                    "backoff_base_s": 0.001, "timeout_s": 5, "max_retries": 1}}


ITEMS = [MCQItem(id=q, question=f"{q}?", choices=tuple(CHOICES), answer="Woman" if q != "q5" else "Child",
                 domain="speech") for q in CASES]
ROWS = [{"id": q, "raw_output": output} for q, (output, _) in CASES.items()] + [{"id": "q8", "raw_output": None}]
ITEMS.append(MCQItem(id="q8", question="q8?", choices=tuple(CHOICES), answer="Man", domain="sound"))


def judged_questions(server) -> list[str]:
    return [re.search(r"Question:\n(q\d+)\?", r["body"]["messages"][0]["content"])[1] for r in server.requests]


def test_only_outputs_the_rules_cannot_read_are_judged(server, entry, tmp_path):
    out = tmp_path / "judged.jsonl"
    counts = judge_predictions(ITEMS, ROWS, Judge(entry, load_judge_prompt("v1")), out)
    assert sorted(judged_questions(server)) == ["q3", "q4", "q5", "q5", "q6", "q6", "q6"]
    rows = {r["id"]: r for r in read_jsonl(out)}
    assert [r["id"] for r in read_jsonl(out)] == [it.id for it in ITEMS]
    assert {q: (r["source"], r["letter"], r["judge_status"]) for q, r in rows.items()} == {
        "q1": ("rules", "B", None), "q2": ("rules", "B", None), "q3": ("judge", "B", "selected"),
        "q4": ("judge", None, "none"), "q5": ("judge", "C", "selected"), "q6": ("judge", None, "unparseable"),
        "q7": ("rules", None, None), "q8": ("rules", None, None)}
    assert rows["q6"]["judge_replies"] == ["B probably", "Selected: b", "Selected: E"]
    assert counts == {"letter": 1, "option_text": 1, "judge_selected": 2, "judge_none": 1, "judge_unparseable": 1,
                      "empty": 1, "missing": 1}
    first = server.requests[judged_questions(server).index("q3")]["body"]
    assert first["temperature"] == 0.0 and first["model"] == "claude-haiku-4-5"
    assert "A: Man\nB: Woman\nC: Child\nD: Robot" in first["messages"][0]["content"]
    assert "It sounds like a grown-up lady." in first["messages"][0]["content"]
    retry = next(r["body"]["messages"] for r in server.requests if len(r["body"]["messages"]) == 3)
    assert retry[1]["role"] == "assistant" and "(one of A, B, C, D)" in retry[2]["content"]


def test_a_rerun_is_answered_from_the_cache(server, entry, tmp_path):
    judge_predictions(ITEMS, ROWS, Judge(entry, load_judge_prompt("v1")), tmp_path / "a.jsonl")
    sent = len(server.requests)
    judge = Judge(entry, load_judge_prompt("v1"))
    judge_predictions(ITEMS, ROWS, judge, tmp_path / "b.jsonl")
    assert len(server.requests) == sent and judge.client.stats["sent"] == 0
    assert read_jsonl(tmp_path / "a.jsonl") == read_jsonl(tmp_path / "b.jsonl")


def test_a_killed_run_resumes_with_the_items_left(server, entry, tmp_path, monkeypatch):
    out = tmp_path / "judged.jsonl"
    real_select = Judge.select
    seen = []

    def killed_after_one_batch(self, asked):
        seen.append([item.id for item, _ in asked])
        if len(seen) == 2:
            raise KeyboardInterrupt  # as a kill between two batches
        return real_select(self, asked)

    monkeypatch.setattr(Judge, "select", killed_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        judge_predictions(ITEMS, ROWS, Judge(entry, load_judge_prompt("v1")), out, batch_size=2)
    assert not out.exists() and seen == [["q3", "q4"], ["q5", "q6"]]
    seen.clear()
    monkeypatch.setattr(Judge, "select", lambda self, asked: seen.append([i.id for i, _ in asked]) or
                        real_select(self, asked))
    judge_predictions(ITEMS, ROWS, Judge(entry, load_judge_prompt("v1")), out, batch_size=2)
    assert seen == [["q5", "q6"]]
    assert [r["letter"] for r in read_jsonl(out)] == ["B", "B", "B", None, "C", None, None, None]


@pytest.mark.parametrize("reply, expected", [
    ("Selected: B", ("B", "selected")),
    ("  Selected: D\n", ("D", "selected")),
    ("Selected: NONE", (None, "none")),
    ("Selected: b", (None, "unparseable")),
    ("Selected: E", (None, "unparseable")),  # no such option
    ("Selected: B.", (None, "unparseable")),
    ("The response picks B. Selected: B", (None, "unparseable")),
    ("Selected: A, B", (None, "unparseable")),
    ("", (None, "unparseable")),
])
def test_the_judges_reply_is_read_strictly(reply, expected):
    assert parse_selection(reply, "ABCD") == expected


def test_unknown_prompt_version_names_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match=r"no judge prompt 'v9'.*shipped versions: \['v1'"):
        load_judge_prompt("v9")


def test_rows_judged_from_other_outputs_are_refused():
    judged = [{"id": it.id, "output_sha256": None, "rule_status": "missing", "source": "rules", "letter": None}
              for it in ITEMS]
    with pytest.raises(ValueError, match="judged.jsonl: 7 item\\(s\\) were judged from other outputs"):
        score_judged(ITEMS, ROWS, judged, where="judged.jsonl")


def test_judge_and_score_audio_commands(server, entry, tmp_path):
    """End to end through the CLI on a benchmark file: judge, then score by its letters."""
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "x.wav", np.full(800, 0.1, "float32"), 16000)
    records = [{"id": it.id, "audio_id": "a/x.wav", "question": it.question, "choices": CHOICES,
                "answer": it.answer, "task": it.domain} for it in ITEMS]
    (tmp_path / "bench.json").write_text(json.dumps(records))
    write_jsonl(tmp_path / "pred.jsonl", ROWS)
    bench = ["--benchmark", str(tmp_path / "bench.json")]
    assert main(["judge", *bench, "--predictions", str(tmp_path / "pred.jsonl"), "--judge", json.dumps(entry),
                 "--out", str(tmp_path / "judged.jsonl")]) == 0
    score = ["score-audio", *bench, "--predictions", str(tmp_path / "pred.jsonl"), "--model-name", "m",
             "--benchmark-name", "b", "--resamples", "10", "--official-out", str(tmp_path / "official.json")]
    assert main([*score, "--judged", str(tmp_path / "judged.jsonl"), "--out", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    # Right by the letters: q1, q2 (rules), q3 and q5 (judge). By string match: q1, q2 only.
    assert (scores["n"], scores["correct"], scores["scoring"]) == (8, 4, "judge")
    assert scores["agreement"] == {"n": 8, "judge_accuracy": 50.0, "string_match_accuracy": 25.0,
                                   "differ_share": 25.0}
    assert scores["missing"] == 1 and scores["unparseable"] == 3  # q8; q4 (NONE), q6 (unparseable), q7 (empty)
    # The predictions changed after judging: refused, naming the judged file.
    write_jsonl(tmp_path / "pred.jsonl", [{**r, "raw_output": "C"} if r["id"] == "q3" else r for r in ROWS])
    assert main([*score, "--judged", str(tmp_path / "judged.jsonl"), "--out", str(tmp_path / "s2.json")]) == 2
    assert not (tmp_path / "s2.json").exists()
