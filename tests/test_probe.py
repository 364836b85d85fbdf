import json

import pytest

from akb.io import read_jsonl
from akb.probe.run import probe
from akb.scoring.probe import probe_table, score_predictions
from conftest import DiesAfter, Interrupted


@pytest.mark.parametrize("mode", ["generate", "loglik"])
def test_one_complete_row_per_item(tmp_path, tiny_qwen3, items, mode):
    out = tmp_path / "akb.jsonl"
    probe(tiny_qwen3, items, out, mode=mode, batch_size=4, max_new_tokens=4)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [it.id for it in items]  # bank order, whatever the batching
    for row, item in zip(rows, items):
        assert row["answer"] == item.answer_letter and row["category"] == item.category
        assert row["correct"] == (row["parsed_answer"] == item.answer_letter)
        assert item.question in row["prompt"]
        if mode == "loglik":
            assert set(row["option_scores"]) == set("ABCD") and row["parse_status"] == "loglik"
        else:
            assert row["parse_status"] in {"letter", "option_text", "unparseable"}
    assert not (tmp_path / "akb.jsonl.partial").exists()


@pytest.mark.parametrize("mode", ["generate", "loglik"])
def test_interrupted_run_resumes_to_identical_results(tmp_path, tiny_qwen3, items, mode):
    reference = tmp_path / "reference.jsonl"
    probe(tiny_qwen3, items, reference, mode=mode, batch_size=4, max_new_tokens=4)

    out = tmp_path / "akb.jsonl"
    with pytest.raises(Interrupted):
        probe(DiesAfter(tiny_qwen3, 2), items, out, mode=mode, batch_size=4, max_new_tokens=4)
    assert not out.exists()  # nothing that looks complete
    partial = tmp_path / "akb.jsonl.partial"
    done = read_jsonl(partial)
    assert 0 < len(done) < len(items)
    with partial.open("a") as f:
        f.write('{"id": "q0')  # a torn line, as a kill during a write leaves it

    probe(tiny_qwen3, items, out, mode=mode, batch_size=4, max_new_tokens=4)
    assert out.read_text() == reference.read_text()


def test_scores_count_every_item(tmp_path):
    rows = [
        {"id": "a", "category": "Sound", "subcategory": "s1", "mode": "generate", "correct": True, "parse_status": "letter"},
        {"id": "b", "category": "Sound", "subcategory": "s2", "mode": "generate", "correct": False, "parse_status": "unparseable"},
        {"id": "c", "category": "Music", "subcategory": "m1", "mode": "generate", "correct": True, "parse_status": "option_text"},
        {"id": "d", "category": "Music", "subcategory": "m1", "mode": "generate", "correct": False, "parse_status": "letter"},
    ]
    scores = score_predictions(rows, n_resamples=200)
    assert (scores["n"], scores["correct"], scores["accuracy"], scores["unparseable"]) == (4, 2, 50.0, 1)
    assert scores["by_category"]["Sound"]["accuracy"] == 50.0
    assert scores["by_subcategory"]["m1"] == {**scores["by_subcategory"]["m1"], "n": 2, "accuracy": 50.0}
    assert scores["ci"][0] <= 50.0 <= scores["ci"][1]
    json.dumps(scores)  # serialisable as written by score-probe

    labels = {"x": {"label": "X", "family": "F", "group": "open"}, "y": {"label": "Y", "family": "F", "group": "open"}}
    better = {**scores, "accuracy": 75.0}
    table = probe_table({"x": scores, "y": better}, labels, ["Sound", "Music"])
    assert list(table["model"]) == ["Y", "X"] and list(table.columns[-2:]) == ["Sound", "Music"]


def test_loglik_scores_report_the_length_normalised_variant():
    rows = [{"id": str(i), "category": "c", "subcategory": "s", "mode": "loglik", "parse_status": "loglik",
             "correct": i < 1, "correct_norm": i < 3} for i in range(4)]
    scores = score_predictions(rows, n_resamples=200)
    assert scores["accuracy"] == 25.0 and scores["length_normalized"]["accuracy"] == 75.0
