"""The `file` captioner (user-supplied captions) and the `audio-lm` captioner (an audio LLM), the
latter on tiny random Qwen2-Audio and Qwen2.5-Omni thinker models built offline."""

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from akb.audio import SAMPLE_RATE
from akb.cascade.caption import caption_items, read_captions
from akb.captioners import Captioner
from akb.captioners.audio_lm import AudioLMCaptioner, tiny_qwen2_audio
from akb.captioners.file import (
    CaptionFileError,
    FileCaptioner,
    caption_file_path,
    load_caption_file,
    write_file_captions,
)
from akb.data.audio_bench import load_audio_benchmark
from akb.data.items import MCQItem
from akb.io import read_jsonl

SPEAKERS = ["Man", "Woman", "Child", "Robot"]


def _clip(seconds, hz=440.0):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture
def items(tmp_path):
    """An MMAU-style benchmark of 5 items on 4 clips (mmau-4 reuses mmau-0's clip)."""
    records = []
    for i in range(5):
        clip = f"./test-mini-audios/mmau-{i % 4}.wav"
        records.append({"id": f"mmau-{i}", "audio_id": clip, "question": "Who speaks?", "choices": SPEAKERS,
                        "answer": SPEAKERS[i % 4], "task": ["sound", "music", "speech"][i % 3],
                        "category": "Reasoning", "sub-category": "Speaker"})
    (tmp_path / "test-mini-audios").mkdir()
    for i in range(4):
        sf.write(tmp_path / "test-mini-audios" / f"mmau-{i}.wav", _clip(0.2 + 0.1 * i, 220 * (i + 1)), SAMPLE_RATE)
    path = tmp_path / "mmau.json"
    path.write_text(json.dumps(records))
    return load_audio_benchmark(path)[0]


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------------------------------------
# file


def test_caption_file_by_id_writes_the_caption_items_format(tmp_path, items):
    rows = [{"id": it.id, "caption": f"  caption of {it.id} ", "model": "gemini"} for it in reversed(items)]
    source = _write(tmp_path / "gemini.jsonl", rows[:2] + [""] + rows[2:])  # any order, blank lines ok
    assert load_caption_file(source, items) == {it.id: f"caption of {it.id}" for it in items}

    out = tmp_path / "results" / "captions" / "gemini" / "mmau.jsonl"
    FileCaptioner(source).write_captions(items, out)
    written = read_jsonl(out)
    assert written == [{"id": it.id, "captioner": "file", "caption": f"caption of {it.id}"} for it in items]
    assert read_captions(out) == load_caption_file(source, items)
    assert not list(out.parent.glob("*.partial")) and not list(out.parent.glob(".*.tmp"))


def test_caption_file_by_clip_path(tmp_path, items):
    """A clip can be named as written in the benchmark, by its resolved path or by its file name;
    a clip's caption goes to every item using it."""
    source = _write(tmp_path / "by_clip.jsonl", [
        {"audio": "./test-mini-audios/mmau-0.wav", "caption": "zero"},
        {"audio_id": "test-mini-audios/mmau-1.wav", "caption": "one"},
        {"audio": items[2].audio, "caption": "two"},
        {"audio_path": "mmau-3.wav", "caption": "three"},
    ])
    captions = load_caption_file(source, items)
    assert captions == {"mmau-0": "zero", "mmau-1": "one", "mmau-2": "two", "mmau-3": "three", "mmau-4": "zero"}
    write_file_captions(source, items, tmp_path / "out.jsonl", captioner="gemini")
    assert [r["captioner"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["gemini"] * 5


def _rows(items):
    return [{"id": it.id, "caption": f"caption {k}"} for k, it in enumerate(items)]


@pytest.mark.parametrize("spoil, message", [
    (lambda rows: rows.__setitem__(2, '{"id": "mmau-2", oops}'), r"bad.jsonl, line 3: not valid JSON"),
    (lambda rows: rows.__setitem__(1, '["mmau-1", "x"]'), r"bad.jsonl, line 2: expected a JSON object, got list"),
    (lambda rows: rows[1].pop("caption"), r"bad.jsonl, line 2: missing field 'caption'"),
    (lambda rows: rows[1].update(caption=7), r"bad.jsonl, line 2: field 'caption' must be a string, got int"),
    (lambda rows: rows[3].update(caption="  "), r"bad.jsonl, line 4: field 'caption' is empty"),
    (lambda rows: rows[0].pop("id"), r"bad.jsonl, line 1: missing field 'id' \(or a clip path"),
    (lambda rows: rows[0].update(id=["mmau-0"]), r"bad.jsonl, line 1: field 'id' must be a string, got list"),
    (lambda rows: rows.append({"id": "mmau-1", "caption": "again"}),
     r"bad.jsonl, line 6: a second caption for item 'mmau-1' \(first on line 2\)"),
    (lambda rows: rows.append({"audio": "mmau-0.wav", "caption": "clip"}),  # mmau-0 and -4 have captions
     r"bad.jsonl, line 6: a second caption for item 'mmau-0' \(first on line 1\)"),
    (lambda rows: rows.extend({"id": f"other-{k}", "caption": "x"} for k in range(7)),
     r"bad.jsonl: 7 captions for items or clips not in the benchmark, e.g. 'other-0' \(line 6\), "
     r"'other-1' \(line 7\), .*'other-4' \(line 10\)$"),
    (lambda rows: rows.append({"audio": "./elsewhere/mmau-0.wav", "caption": "x"}),
     r"1 caption for items or clips not in the benchmark, e.g. './elsewhere/mmau-0.wav' \(line 6\)"),
    (lambda rows: rows.__delitem__(slice(1, 4)),
     r"bad.jsonl: no caption for 3 of 5 items, e.g. 'mmau-1', 'mmau-2', 'mmau-3'$"),
    (lambda rows: rows.clear(), r"bad.jsonl: no caption for 5 of 5 items"),
])
def test_caption_file_errors_name_file_line_and_field(tmp_path, items, spoil, message):
    rows = _rows(items)
    spoil(rows)
    source = _write(tmp_path / "bad.jsonl", rows)
    out = tmp_path / "out.jsonl"
    with pytest.raises(CaptionFileError, match=message):
        write_file_captions(source, items, out)
    assert not out.exists()  # nothing is published from a bad file


def test_caption_file_missing_and_ambiguous_names(tmp_path, items):
    with pytest.raises(CaptionFileError, match=r"nope.jsonl: caption file not found"):
        load_caption_file(tmp_path / "nope.jsonl", items)
    # Two clips named alike in different folders: the bare file name cannot tell them apart.
    (tmp_path / "other").mkdir()
    twin_clip = tmp_path / "other" / "mmau-0.wav"
    sf.write(twin_clip, _clip(0.2), SAMPLE_RATE)
    twin = MCQItem(id="twin", question="?", choices=("a", "b"), answer="a", audio=str(twin_clip))
    source = _write(tmp_path / "c.jsonl", [{"audio": "mmau-0.wav", "caption": "x"}])
    with pytest.raises(CaptionFileError, match=r"c.jsonl, line 1: field 'audio': file name 'mmau-0.wav' is ambiguous"):
        load_caption_file(source, items + [twin])


def test_caption_file_path_per_benchmark():
    assert str(caption_file_path("data/gemini/{benchmark}.jsonl", "mmau")) == "data/gemini/mmau.jsonl"
    assert str(caption_file_path("data/gemini/mmau.jsonl", "mmar")) == "data/gemini/mmau.jsonl"


def test_file_captioner_does_not_caption_audio(tmp_path):
    captioner = FileCaptioner(tmp_path / "gemini.jsonl")
    assert isinstance(captioner, Captioner)
    with pytest.raises(TypeError, match="captions come from .*gemini.jsonl by item id"):
        captioner.caption([_clip(0.1)])


# ---------------------------------------------------------------------------------------------
# audio-lm

CLIPS = [_clip(0.7, 330), _clip(2.0, 220), _clip(0.3, 880), _clip(1.2, 440)]  # deliberately unsorted


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_qwen2_audio(seed=0)


@pytest.fixture(scope="module")
def captioner(tiny_model):
    return AudioLMCaptioner(*tiny_model, max_new_tokens=6)


@pytest.fixture(scope="module")
def batch_captions(captioner):
    return captioner.caption(CLIPS)


def test_prompt_comes_from_the_chat_template(captioner):
    text = captioner.text
    assert text.count("<|AUDIO|>") == 1
    assert "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nDescribe this audio clip" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert captioner.sample_rate == 16_000 and captioner.pad_token_id != captioner.eos_token_ids[0]


def test_one_caption_per_clip_in_input_order(captioner, batch_captions):
    """Greedy search: each clip's caption is the one it gets alone, whatever the batch, its order
    or the sub-batching; and the same on every call."""
    assert len(batch_captions) == len(CLIPS) and all(isinstance(c, str) and c for c in batch_captions)
    assert len(set(batch_captions)) > 1  # the clips are told apart, not one caption for all
    assert [captioner.caption([clip])[0] for clip in CLIPS] == batch_captions
    assert captioner.caption(CLIPS[::-1]) == batch_captions[::-1]
    assert captioner.caption(CLIPS) == batch_captions
    assert captioner.caption([]) == []


def test_sub_batches_and_a_fresh_model_give_the_same_captions(tiny_model, batch_captions):
    captioner = AudioLMCaptioner(*tiny_qwen2_audio(seed=0), max_new_tokens=6, batch_size=3)
    assert captioner.caption(CLIPS) == batch_captions
    # The tiny model's generation config samples (as the real checkpoint's does): greedy must win.
    assert tiny_model[0].generation_config.do_sample


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_model):
    path = tmp_path_factory.mktemp("tiny-qwen2-audio")
    model, processor = tiny_model
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def test_from_pretrained_loads_a_local_checkpoint(saved_model, batch_captions):
    captioner = AudioLMCaptioner.from_pretrained(saved_model, max_new_tokens=6, device="cpu")
    assert captioner.model.dtype == torch.float32  # fp32 on CPU
    assert captioner.caption(CLIPS) == batch_captions


def test_unknown_or_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"audio-lm captioner: model directory '.*no-such-model' not found"):
        AudioLMCaptioner.from_pretrained(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match=r"audio-lm captioner: cannot load '.*empty'"):
        AudioLMCaptioner.from_pretrained((tmp_path / "empty").mkdir() or tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"audio-lm captioner: cannot load 'no-such-org/no-such-model'"):
        AudioLMCaptioner.from_pretrained("no-such-org/no-such-model")  # offline: not in the cache
    from transformers import AutoConfig

    AutoConfig.for_model("qwen2", hidden_size=8, num_attention_heads=2).save_pretrained(tmp_path / "text-only")
    with pytest.raises(ValueError, match=r"is a 'qwen2' model; supported model types: qwen2_audio"):
        AudioLMCaptioner.from_pretrained(tmp_path / "text-only")


def test_bad_clips_and_long_clips(captioner, caplog):
    with pytest.raises(ValueError, match="clip 1: expected a mono 1-D clip"):
        captioner.caption([_clip(0.1), np.zeros((2, 100), np.float32)])
    with pytest.raises(ValueError, match="clip 0 holds no samples"):
        captioner.caption([np.zeros(0, np.float32)])
    with caplog.at_level(logging.WARNING):
        assert len(captioner.caption([_clip(31.0)])) == 1
    assert "1 of 1 clips are longer than the model's 30 s window" in caplog.text


def test_caption_items_with_the_audio_lm(tmp_path, items, captioner):
    out = tmp_path / "captions.jsonl"
    caption_items(captioner, items, out, batch_size=3)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [it.id for it in items] and {r["captioner"] for r in rows} == {"audio-lm"}
    assert rows[4]["caption"] == rows[0]["caption"]  # the same clip, captioned once


def test_qwen2_5_omni_thinker(tmp_path, monkeypatch):
    """The Omni thinker runs the same code path; a full Omni checkpoint loads only its thinker.
    (Qwen2.5-Omni's own processor needs torchvision for its video half; Qwen2-Audio's processor
    produces the same audio inputs, so it stands in.)"""
    from transformers import (
        Qwen2_5OmniConfig,
        Qwen2_5OmniForConditionalGeneration,
        Qwen2_5OmniThinkerForConditionalGeneration,
    )

    from akb.audio_llms.tiny import tiny_qwen2_5_omni_thinker

    thinker, processor = tiny_qwen2_5_omni_thinker()
    config = thinker.config
    captioner = AudioLMCaptioner(thinker, processor, max_new_tokens=5)
    captions = captioner.caption(CLIPS)
    assert len(captions) == len(CLIPS) and all(isinstance(c, str) for c in captions)
    assert [captioner.caption([clip])[0] for clip in CLIPS] == captions

    # A full checkpoint (thinker + the speech half) as published: only the thinker is loaded.
    full_config = Qwen2_5OmniConfig(thinker_config=config.to_dict(), enable_audio_output=False)
    full = Qwen2_5OmniForConditionalGeneration(full_config)
    full.thinker.load_state_dict(thinker.state_dict())
    full.config.enable_audio_output = True  # as published; the captioner must not build the talker
    full.save_pretrained(tmp_path / "omni")
    processor.save_pretrained(tmp_path / "omni")
    torch.save({}, tmp_path / "omni" / "spk_dict.pt")  # the speakers file every Omni checkpoint ships
    def no_talker(self):
        raise AssertionError("the talker was built")

    monkeypatch.setattr(Qwen2_5OmniForConditionalGeneration, "enable_talker", no_talker)
    loaded = AudioLMCaptioner.from_pretrained(tmp_path / "omni", max_new_tokens=5)
    assert isinstance(loaded.model, Qwen2_5OmniThinkerForConditionalGeneration)
    assert loaded.caption(CLIPS) == captions
