"""The two generated-answer conventions: lettered options (the default) and DeSTA2.5's MMAU/MMAR
prompt (quoted options, a system prompt asking for 'The correct answer is: "..."')."""

import json

import numpy as np
import pytest
import soundfile as sf

from akb.cli import main
from akb.scoring.audio import grade_predictions, prediction_text
from akb.data.items import MCQItem
from akb.io import read_jsonl
from akb.models import ModelSpec
from akb.probe.prompts import DESTA_SYSTEM_PROMPT, PROMPT_STYLES, desta_question, styled_spec

DISTORTION = MCQItem(id="m1", question="Is the singing clean?", answer="Yes",
                     choices=("No, there is distortion", "Yes", "No, there is off-key singing"))


@pytest.mark.parametrize("choices, options", [
    (("Man", "Woman"), '"Man" or "Woman"'),
    (("one", "two", "three", "four"), '"one", "two", "three" or "four"'),
])
def test_desta_question_quotes_the_options_in_one_sentence(choices, options):
    item = MCQItem(id="x", question="Who speaks?", choices=choices, answer=choices[0])
    assert desta_question(item) == f"Who speaks?\nChoose from the following options: {options}"
    assert PROMPT_STYLES["lettered"].question(item).startswith("Who speaks?\n\n(A) ")


def test_style_brings_its_system_prompt_and_never_overrides_a_models_own():
    spec = ModelSpec.from_config({"name": "m", "backend": "tiny", "source": "qwen3"})
    assert styled_spec(spec, "lettered") is spec
    assert styled_spec(spec, "desta").chat.system_prompt == DESTA_SYSTEM_PROMPT
    own = ModelSpec.from_config({"name": "m", "backend": "tiny", "source": "qwen3", "chat": {"system_prompt": "Be brief."}})
    with pytest.raises(ValueError, match="model m: chat.system_prompt is set, and prompt style 'desta'"):
        styled_spec(own, "desta")
    with pytest.raises(ValueError, match="unknown prompt style 'fancy'"):
        styled_spec(spec, "fancy")


@pytest.mark.parametrize("output, expected, correct", [
    ('The correct answer is: "Yes"', "Yes", True),  # "is" is a wrong option's word: the framing must go
    ('The correct answer is: "Yes".', "Yes", True),
    ("The answer is Yes.", "Yes.", True),
    ('The correct answer is: "No, there is distortion"', "No, there is distortion", False),
    ("Yes, it is clean.", "Yes, it is clean.", False),  # no framing: judged as said, like the official script
])
def test_a_stated_answer_is_scored_on_its_answer(output, expected, correct):
    text, _ = prediction_text(DISTORTION, output)
    assert text == expected
    [graded] = grade_predictions([DISTORTION], [{"id": "m1", "raw_output": output}])
    assert graded["correct"] is correct


def test_cascade_with_the_desta_prompt(tmp_path):
    records = [{"id": f"q{i}", "audio_id": f"./a/q{i}.wav", "question": f"Question {i}?",
                "choices": ["Man", "Woman", "Child"], "answer": "Woman", "task": "speech"} for i in range(3)]
    for r in records:
        (tmp_path / "a").mkdir(exist_ok=True)
        sf.write(tmp_path / r["audio_id"], np.zeros(800, dtype=np.float32), 16000)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(records))
    captions = tmp_path / "captions.jsonl"
    captions.write_text("".join(json.dumps({"id": r["id"], "caption": "a woman speaks"}) + "\n" for r in records))
    model = json.dumps({"name": "tq", "backend": "tiny", "source": "qwen3"})
    out = {}
    for style in ("lettered", "desta"):
        out[style] = tmp_path / f"{style}.jsonl"
        assert main(["cascade", "--benchmark", str(bench), "--captions", str(captions), "--model", model,
                     "--mode", "generate", "--max-new-tokens", "3", "--prompt-style", style,
                     "--out", str(out[style])]) == 0
    desta, lettered = read_jsonl(out["desta"]), read_jsonl(out["lettered"])
    assert [r["id"] for r in desta] == [r["id"] for r in lettered] == ["q0", "q1", "q2"]
    for row in desta:
        assert 'Choose from the following options: "Man", "Woman" or "Child"' in row["prompt"]
        assert DESTA_SYSTEM_PROMPT in row["prompt"]  # rendered by the model's own chat template
        assert "Description of the audio clip: a woman speaks" in row["prompt"]
    for row in lettered:
        assert "(B) Woman" in row["prompt"] and DESTA_SYSTEM_PROMPT not in row["prompt"]
