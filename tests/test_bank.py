import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from akb.cli import main
from akb.data.bank import BankError, check_items, load_bank, resolve_source
from conftest import make_items

BUILTIN_CATEGORIES = ["Sound", "Paralinguistic", "Phonetic", "Music", "Audio Quality", "Technical"]


def test_roundtrip_of_the_akb_format(bank_file, items):
    assert load_bank(str(bank_file)) == items


def test_json_array_and_answers_as_text_or_index(tmp_path):
    records = [
        {"id": "a", "question": "Q1?", "options": ["x", "y", "z", "w"], "answer": "z"},
        {"id": "b", "question": "Q2?", "options": ["x", "y", "z", "w"], "answer": 3},
        {"id": "c", "question": "Q3?", "options": ["x", "y", "z", "w"], "answer": "(B)"},
    ]
    path = tmp_path / "bank.json"
    path.write_text(json.dumps(records))
    assert [it.answer for it in load_bank(str(path))] == ["z", "w", "y"]


def test_csv_with_column_mapping(tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text("qid,text,A,B,C,D,key,cat,sub\n1,Which is loudest?,60 dB,90 dB,30 dB,0 dB,B,Technical,units\n")
    columns = {"id": "qid", "question": "text", "options": ["A", "B", "C", "D"], "answer": "key",
               "category": "cat", "subcategory": "sub"}
    (item,) = load_bank(str(path), columns=columns)
    assert (item.id, item.answer, item.answer_letter, item.category) == ("1", "90 dB", "B", "Technical")


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"id": "a", "question": "Q?", "options": ["x", "y"], "answer": "A"}\n{"id": ', "line 2"),
        ('{"id": "a", "options": ["x", "y"], "answer": "A"}\n', "item a: missing or empty field 'question'"),
        ('{"id": "a", "question": "Q?", "options": ["x", "y"], "answer": "C"}\n', "item a: answer 'C'"),
        ('{"question": "Q?", "options": ["x", "y"], "answer": "A"}\n', "item #0 (no id)"),
        ('{"id": "a", "question": "Q?", "options": ["x"], "answer": "A"}\n', "at least 2"),
        ('{"id": "a", "question": "Q?", "options": ["x", "y"], "answer": "A"}\n' * 2, "a: id used by 2 items"),
    ],
)
def test_malformed_banks_name_file_item_and_field(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(BankError, match="bad.jsonl") as error:
        load_bank(str(path))
    assert message in str(error.value)


def test_hugging_face_dataset_source(tmp_path, items):
    pytest.importorskip("datasets")
    dataset = tmp_path / "my-akb"
    dataset.mkdir()
    (dataset / "test.jsonl").write_text("".join(json.dumps(it.to_bank_record()) + "\n" for it in items))
    assert load_bank(f"hf://{dataset}", split="test") == items


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(BankError, match="not found"):
        load_bank(str(tmp_path / "absent.jsonl"))
    with pytest.raises(BankError, match="bank.format"):
        load_bank(str(tmp_path / "bank.txt"))


def test_checks_flag_letter_imbalance_and_near_duplicates(items):
    skewed = [replace(it, answer=it.choices[0]) for it in items]
    near = replace(skewed[1], id="near", question=skewed[1].question + " Listen again.")
    messages = [str(p) for p in check_items([*skewed, replace(skewed[0], id="copy"), near], n_options=4)]
    assert "warning: letter A: is the answer of 100.0% of items (expected 20%-30%)" in messages
    assert "warning: letter D: is the answer of 0.0% of items (expected 20%-30%)" in messages
    assert "warning: q00: same question and options as copy" in messages
    assert "warning: q01: near-duplicate of near" in messages
    assert not [p for p in check_items(items, n_options=4) if "letter" in p.item_id]  # balanced


def test_length_cue_is_flagged():
    # Every answer padded to be the longest option: "pick the longest" would score 100%.
    items = make_items(24)
    cued = [replace(it, choices=tuple(c + " (exactly so)" if c == it.answer else c for c in it.choices),
                    answer=it.answer + " (exactly so)") for it in items]
    assert not [p for p in check_items(cued[:19], n_options=4) if p.item_id == "length cue"]  # too few to tell
    messages = [str(p) for p in check_items(cued, n_options=4)]
    assert "warning: length cue: picking the longest option scores 100.0% (ties shared; chance 25%)" in messages
    assert "warning: length cue: picking the shortest option scores 0.0% (ties shared; chance 25%)" in messages


def test_the_shipped_bank_meets_its_standard():
    items = load_bank("builtin")
    assert len(items) >= 960
    assert check_items(items, n_options=4) == []
    assert [c for c in dict.fromkeys(it.category for it in items)] == BUILTIN_CATEGORIES
    per_subcategory = Counter((it.category, it.subcategory) for it in items)
    assert len(per_subcategory) == 48 and min(per_subcategory.values()) >= 20
    assert {"lexical_stress", "rhyme", "pronunciation"} <= {s for _, s in per_subcategory}
    letters = Counter(it.answer_letter for it in items)
    assert all(0.2 <= letters[k] / len(items) <= 0.3 for k in "ABCD")


def test_the_shipped_bank_passes_the_cue_audit_and_carries_its_per_item_fields():
    from akb.bankgen.embed import CharNgramEmbedder
    from akb.config import schema_default
    from akb.data.cues import audit_bank

    items = load_bank("builtin")
    audit = audit_bank(items, max_gain=schema_default("bank.audit.max_gain"),
                       letter_tolerance=schema_default("bank.audit.letter_tolerance"),
                       embed=CharNgramEmbedder().embed, duplicate_threshold=schema_default("bank.audit.duplicate_threshold"))
    assert audit.passed, audit.table()
    records = [json.loads(line) for line in Path(resolve_source("builtin")).read_text().splitlines()]
    assert all(r["difficulty"] in ("introductory", "specialist") and r["rationale"] and r["provenance"] for r in records)
    assert sum(r["difficulty"] == "specialist" for r in records) >= len(records) / 2
    assert all("second reader" in r["provenance"] and "pending" not in r["provenance"] for r in records)


def test_the_first_bank_stays_loadable_by_name():
    v1 = load_bank("builtin-v1")
    assert len(v1) == 528 and v1[0].id == "snd-environmental_sources-01"
    assert load_bank("builtin-v2") == load_bank("builtin")


def test_validate_bank_command(tmp_path, capsys, bank_file):
    assert main(["validate-bank", "builtin"]) == 0
    records = [json.loads(line) for line in bank_file.read_text().splitlines()]
    records[1]["options"][2] = records[1]["options"][0]
    bad = tmp_path / "dup.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["validate-bank", str(bad)]) == 1
    assert "q01: options are not distinct" in capsys.readouterr().out
