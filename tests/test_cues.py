"""The cue audit (`akb audit-bank`): answering without the knowledge must not beat chance."""

import json

import pytest

from akb.bankgen.embed import CharNgramEmbedder
from akb.cli import main as akb
from akb.data.cues import STRATEGIES, audit_bank, cue_results, fair_score, letter_imbalance, near_duplicates
from akb.data.items import MCQItem


def item(i, choices, key, question="Which one is right?", sub="s"):
    return MCQItem(id=f"q{i}", question=question, choices=tuple(choices), answer=choices[key], category="C",
                   subcategory=sub)


def accuracy(items, strategy):
    return {r.strategy: r for r in cue_results(items)}[strategy].accuracy


def test_ties_are_counted_fairly_so_an_undecided_strategy_scores_chance():
    same_length = [item(i, ["aaaa", "bbbb", "cccc", "dddd"], i % 4) for i in range(8)]
    assert accuracy(same_length, "longest") == pytest.approx(25.0)
    assert fair_score(same_length[0], {0, 1}) == 0.5 and fair_score(same_length[0], {1, 2}) == 0.0


def test_a_bank_whose_key_is_the_longest_option_fails_and_one_with_rotated_lengths_passes():
    lengths = ["a" * 5, "b" * 10, "c" * 15, "d" * 20]
    rigged = [item(i, lengths, 3 if i % 4 else i % 4) for i in range(40)]
    assert accuracy(rigged, "longest") > 70
    audit = audit_bank(rigged, min_items=20)
    assert not audit.passed and any(f.startswith("longest scores") for f in audit.failures)
    fair = [item(i, lengths, i % 4) for i in range(40)]  # the key is each length equally often
    audit = audit_bank(fair, min_items=20)
    assert audit.passed, audit.table()
    assert {r.strategy: round(r.accuracy, 6) for r in audit.cues}["longest"] == 25.0


def test_numeric_middle_counts_only_numeric_items_and_catches_keys_hidden_in_the_middle():
    middle = [item(i, ["100 Hz", "200 Hz", "400 Hz", "800 Hz"], 1 + i % 2) for i in range(10)]
    words = [item(10 + i, ["low", "mid", "high", "top"], i % 4) for i in range(10)]
    result = {r.strategy: r for r in cue_results(middle + words)}["numeric-middle"]
    assert result.n == 10 and result.accuracy == pytest.approx(50.0)
    extremes = [item(i, ["100 Hz", "200 Hz", "400 Hz", "800 Hz"], (0, 3)[i % 2]) for i in range(10)]
    assert accuracy(extremes, "numeric-middle") == 0.0


def test_absolute_words_and_stem_words_are_cues():
    absolute = [item(i, ["it always rings", "it rings", "it never rings", "it only rings"], 1) for i in range(8)]
    assert accuracy(absolute, "no-absolute") == pytest.approx(100.0)
    stem = [item(i, ["three short pulses", "a long tone", "a rising sweep", "two chirps"], 0,
                 question="What does the temporal-three pattern sound like (pulses)?") for i in range(8)]
    assert accuracy(stem, "stem-overlap") == pytest.approx(100.0)
    assert set(STRATEGIES) == {"longest", "shortest", "numeric-middle", "no-absolute", "stem-overlap", "combined"}


def test_letter_balance_is_checked_per_subcategory():
    balanced = [item(i, ["w", "x", "y", "z"], i % 4, sub="even") for i in range(8)]
    skewed = [item(10 + i, ["w", "x", "y", "z"], 0 if i < 6 else 1, sub="skew") for i in range(8)]
    assert letter_imbalance(balanced + skewed) == ["C / skew: answer letters A 6, B 2, C 0, D 0"]


def test_near_duplicates_are_found_by_embedding():
    items = [item(0, ["10 m", "34 cm", "3 m", "1 cm"], 1, question="What is the wavelength of a 1 kHz tone in air?"),
             item(1, ["10 m", "34 cm", "3 m", "1 cm"], 1, question="What is the wavelength in air of a 1 kHz tone?"),
             item(2, ["brass", "reed", "string", "skin"], 0, question="Which family does the tuba belong to?")]
    pairs = near_duplicates(items, CharNgramEmbedder().embed, 0.8)
    assert [(a, b) for a, b, _ in pairs] == [("q0", "q1")]


def test_audit_bank_command_prints_the_cue_table_and_fails_on_the_v1_bank(tmp_path, capsys):
    out = tmp_path / "audit.json"
    assert akb(["audit-bank", "builtin-v1", "--embedding", "none", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "longest" in printed and "combined" in printed and "FAIL" in printed
    report = json.loads(out.read_text())
    cues = {c["strategy"]: c for c in report["cues"]}
    # The v1 bank's known cues (issue #15): longest about 31%, everything combined about 35%.
    assert 30 < cues["longest"]["accuracy"] < 33 and 33 < cues["combined"]["accuracy"] < 37
    assert report["passed"] is False
    assert akb(["audit-bank", "builtin", "--embedding", "tfidf"]) == 0  # the shipped bank, v2, passes


def test_audit_bank_command_refuses_an_empty_bank(tmp_path, caplog):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert akb(["audit-bank", str(empty), "--embedding", "none"]) == 2
    assert str(empty) in caplog.text


def test_a_model_answering_from_the_options_alone_is_one_more_strategy(tmp_path, bank_file):
    out = tmp_path / "audit.json"
    tiny = json.dumps({"name": "tiny", "backend": "tiny", "source": "llama"})
    akb(["audit-bank", str(bank_file), "--embedding", "none", "--model", tiny, "--out", str(out)])
    report = json.loads(out.read_text())
    cues = {c["strategy"]: c for c in report["cues"]}
    assert cues["options-only tiny"]["n"] == 10 and 0 <= cues["options-only tiny"]["accuracy"] <= 100
    right = report["answered_right_without_the_question"]["options-only tiny"]  # the items to review
    assert len(right) == round(cues["options-only tiny"]["accuracy"] / 10)
