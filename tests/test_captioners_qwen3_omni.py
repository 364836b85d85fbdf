"""The `audio-lm` captioner on Qwen3-Omni, the family of the AKB paper's "Omni" captioner
(Qwen/Qwen3-Omni-30B-A3B-Captioner): a tiny random model of the real classes, built offline, saved
like the published checkpoint (a `qwen3_omni_moe` config, thinker weights, Qwen3OmniMoeProcessor
files) and loaded through `load_captioner`.

Qwen3OmniMoeProcessor builds a video processor, which needs torchvision. Where torchvision is not
installed (as here), the processor is built and loaded without its video half: only the check that
refuses a missing video processor and the loading of that processor are bypassed (`no_video_half`);
everything the captioner uses (tokenizer, chat template, Whisper features, audio-token expansion)
is the real code."""

import contextlib
import json
import logging

import numpy as np
import pytest
import torch
from transformers import (
    PreTrainedTokenizerFast,
    Qwen3OmniMoeConfig,
    Qwen3OmniMoeForConditionalGeneration,
    Qwen3OmniMoeProcessor,
    Qwen3OmniMoeThinkerConfig,
    Qwen3OmniMoeThinkerForConditionalGeneration,
    WhisperFeatureExtractor,
)
from transformers.utils import is_torchvision_available

from akb.audio import SAMPLE_RATE
from akb.captioners import load_captioner
from akb.captioners.audio_lm import AudioLMCaptioner
from akb.models.tiny import ChatFormat, build_tokenizer

# Modelled on Qwen3-Omni's chat template: ChatML turns, no default system message, and each clip as
# <|audio_start|><|audio_pad|><|audio_end|>, which the processor widens to one pad per audio frame.
QWEN3_OMNI_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' or 'audio' in content %}<|audio_start|><|audio_pad|><|audio_end|>"
    "{% elif content['type'] == 'image' or 'image' in content %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# The tokens Qwen3OmniMoeProcessor reads off its tokenizer by name.
NAMED_TOKENS = {
    "audio_token": "<|audio_pad|>", "audio_bos_token": "<|audio_start|>", "audio_eos_token": "<|audio_end|>",
    "image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
    "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>",
}
PROMPTLESS_TURN = "<|im_start|>user\n<|audio_start|><|audio_pad|><|audio_end|><|im_end|>\n<|im_start|>assistant\n"
MAX_NEW_TOKENS = 6


@contextlib.contextmanager
def no_video_half():
    """Qwen3OmniMoeProcessor without its video processor, where torchvision (which that processor
    needs) is missing: accept None for it, and load None for it."""
    if is_torchvision_available():
        yield
        return
    from transformers.models.auto import video_processing_auto
    from transformers.processing_utils import ProcessorMixin

    class NoVideoProcessor:  # where ProcessorMixin.from_pretrained looks for the video processor
        @classmethod
        def from_pretrained(cls, *args, **kwargs):
            return None

    check = ProcessorMixin.check_argument_for_proper_class
    auto_class = video_processing_auto.AutoVideoProcessor
    ProcessorMixin.check_argument_for_proper_class = (
        lambda self, name, arg: None if name == "video_processor" and arg is None else check(self, name, arg)
    )
    video_processing_auto.AutoVideoProcessor = NoVideoProcessor
    try:
        yield
    finally:
        ProcessorMixin.check_argument_for_proper_class = check
        video_processing_auto.AutoVideoProcessor = auto_class


def _clip(seconds, hz):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _noise(seconds, seed):
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * SAMPLE_RATE)).astype(np.float32)


CLIPS = [_clip(0.7, 330), _clip(2.0, 220), _noise(0.3, 1), _clip(1.2, 440), _noise(1.6, 2)]  # unsorted


def _image_processor():
    if is_torchvision_available():
        from transformers import Qwen2VLImageProcessor

        return Qwen2VLImageProcessor()
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil()


def _video_processor():
    if not is_torchvision_available():
        return None
    from transformers import Qwen2VLVideoProcessor

    return Qwen2VLVideoProcessor()


def build_tiny_qwen3_omni(seed=0):
    """(thinker, processor): a random Qwen3OmniMoeThinkerForConditionalGeneration (1-layer audio and
    vision encoders, a 2-layer MoE text decoder with 4 experts, 2 per token) and a
    Qwen3OmniMoeProcessor with the real checkpoints' Whisper features (128 mel bins, a 300 s window)
    and an offline-trained tokenizer carrying Qwen3-Omni's special tokens."""
    chat = ChatFormat(bos=None, eos="<|im_end|>", pad="<|endoftext|>",
                      extra_special=("<|im_start|>", *NAMED_TOKENS.values()), template=QWEN3_OMNI_TEMPLATE)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(chat).backend_tokenizer, eos_token=chat.eos, pad_token=chat.pad,
        chat_template=chat.template, extra_special_tokens=NAMED_TOKENS,
    )
    with no_video_half():
        processor = Qwen3OmniMoeProcessor(
            image_processor=_image_processor(), video_processor=_video_processor(),
            feature_extractor=WhisperFeatureExtractor(feature_size=128, chunk_length=300),
            tokenizer=tokenizer, chat_template=QWEN3_OMNI_TEMPLATE,
        )
    ids = tokenizer.convert_tokens_to_ids
    hidden = 64
    config = Qwen3OmniMoeThinkerConfig(
        audio_config={"d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
                      "num_mel_bins": 128, "output_dim": hidden, "downsample_hidden_size": 8},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2,
                       "out_hidden_size": hidden, "deepstack_visual_indexes": [0], "num_position_embeddings": 64},
        text_config={"vocab_size": len(tokenizer), "hidden_size": hidden, "intermediate_size": 128,
                     "moe_intermediate_size": 32, "num_experts": 4, "num_experts_per_tok": 2,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3],
                                         "interleaved": True},
                     "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id},
        audio_token_id=ids("<|audio_pad|>"), audio_start_token_id=ids("<|audio_start|>"),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
    )
    torch.manual_seed(seed)
    return Qwen3OmniMoeThinkerForConditionalGeneration(config).eval(), processor


def save_processor_as_published(processor, path):
    """The processor files of the published Qwen3-Omni checkpoints: tokenizer files, the chat
    template, and one preprocessor_config.json holding both the Whisper features and the image
    processor's settings (no video_preprocessor_config.json)."""
    processor.tokenizer.save_pretrained(path)
    (path / "chat_template.jinja").write_text(processor.chat_template)
    settings = processor.image_processor.to_dict() | processor.feature_extractor.to_dict()
    settings |= {"image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen3OmniMoeProcessor"}
    (path / "preprocessor_config.json").write_text(json.dumps(settings, indent=2))


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_qwen3_omni(seed=0)


@pytest.fixture(scope="module")
def captioner(tiny):
    return AudioLMCaptioner(*tiny, max_new_tokens=MAX_NEW_TOKENS)


@pytest.fixture(scope="module")
def batch_captions(captioner):
    return captioner.caption(CLIPS)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny):
    """A Qwen3-Omni checkpoint as published: the whole model's config (`qwen3_omni_moe`, here with
    audio output switched on, as the Instruct checkpoint has it) and the thinker's weights."""
    thinker, processor = tiny
    path = tmp_path_factory.mktemp("tiny-qwen3-omni")
    full = Qwen3OmniMoeForConditionalGeneration(
        Qwen3OmniMoeConfig(thinker_config=thinker.config.to_dict(), enable_audio_output=False)
    )
    full.thinker.load_state_dict(thinker.state_dict())
    full.config.enable_audio_output = True  # the loader must not build the talker even so
    full.save_pretrained(path)
    save_processor_as_published(processor, path)
    return path


def test_the_captioner_hears_the_clip_alone(captioner, tiny):
    """Qwen3-Omni-30B-A3B-Captioner takes no text: by default the user turn holds only the clip,
    rendered by the checkpoint's template; replies end at ChatML's end of turn."""
    tokenizer = tiny[1].tokenizer
    assert captioner.prompt is None and captioner.text == PROMPTLESS_TURN
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in captioner.eos_token_ids
    assert captioner.pad_token_id == tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert captioner.sample_rate == 16_000 and captioner.max_samples == 300 * 16_000  # the extractor's window

    prompted = AudioLMCaptioner(*tiny, prompt="Describe the sound.", max_new_tokens=MAX_NEW_TOKENS)
    assert prompted.text == PROMPTLESS_TURN.replace("<|audio_end|>", "<|audio_end|>Describe the sound.")
    with pytest.raises(ValueError, match="the prompt is empty"):
        AudioLMCaptioner(*tiny, prompt="  ")


def test_batched_captions_equal_one_by_one_and_repeat(captioner, tiny, batch_captions):
    """Greedy search: a clip's caption is the one it gets alone, whatever the batch, its order or
    the sub-batching (left padding, each clip's own audio tokens), and the same on every call."""
    assert len(batch_captions) == len(CLIPS) and all(isinstance(c, str) and c for c in batch_captions)
    assert len(set(batch_captions)) > 1  # the clips are told apart
    assert [captioner.caption([clip])[0] for clip in CLIPS] == batch_captions
    assert captioner.caption(CLIPS[::-1]) == batch_captions[::-1]
    assert AudioLMCaptioner(*tiny, max_new_tokens=MAX_NEW_TOKENS, batch_size=2).caption(CLIPS) == batch_captions
    assert captioner.caption(CLIPS) == batch_captions
    assert captioner.caption([]) == []


def test_clips_longer_than_the_window_are_cut(tiny, caplog):
    """A clip is heard up to the feature extractor's window, cut by the captioner itself (this
    processor would otherwise read all of it). A 2 s window stands in for the real 300 s one."""
    thinker, processor = tiny
    with no_video_half():
        short_window = Qwen3OmniMoeProcessor(
            image_processor=processor.image_processor, video_processor=getattr(processor, "video_processor", None),
            feature_extractor=WhisperFeatureExtractor(feature_size=128, chunk_length=2),
            tokenizer=processor.tokenizer, chat_template=processor.chat_template,
        )
    captioner = AudioLMCaptioner(thinker, short_window, max_new_tokens=MAX_NEW_TOKENS)
    long_clip = np.concatenate([_clip(2.0, 220), _noise(1.5, 3)])
    with caplog.at_level(logging.WARNING):
        assert captioner.caption([long_clip]) == captioner.caption([long_clip[: 2 * SAMPLE_RATE]])
    assert "1 of 1 clips are longer than the model's 2 s window (longest 3.5 s)" in caplog.text


def test_load_captioner_builds_only_the_thinker(checkpoint, batch_captions, monkeypatch):
    """The real loading path of a config entry: a `qwen3_omni_moe` checkpoint loads its thinker
    alone (the talker and code2wav are never built), with the checkpoint's own processor."""
    def no_talker(self):
        raise AssertionError("the talker was built")

    monkeypatch.setattr(Qwen3OmniMoeForConditionalGeneration, "enable_talker", no_talker)
    entry = {"name": "qwen3-omni-captioner", "backend": "audio-lm", "source": str(checkpoint),
             "max_new_tokens": MAX_NEW_TOKENS, "device": "cpu"}
    with no_video_half():
        captioner = load_captioner(entry)
    assert captioner.name == "qwen3-omni-captioner"
    assert type(captioner.model) is Qwen3OmniMoeThinkerForConditionalGeneration
    assert not any(name.startswith(("talker", "code2wav")) for name, _ in captioner.model.named_modules())
    assert isinstance(captioner.processor, Qwen3OmniMoeProcessor) and captioner.text == PROMPTLESS_TURN
    assert captioner.model.dtype == torch.float32  # fp32 on CPU
    assert captioner.caption(CLIPS) == batch_captions


def test_a_thinker_saved_alone_loads_too(tmp_path, tiny, batch_captions):
    thinker, processor = tiny
    thinker.save_pretrained(tmp_path)
    save_processor_as_published(processor, tmp_path)
    with no_video_half():
        captioner = AudioLMCaptioner.from_pretrained(tmp_path, max_new_tokens=MAX_NEW_TOKENS, device="cpu")
    assert type(captioner.model) is Qwen3OmniMoeThinkerForConditionalGeneration
    assert captioner.caption(CLIPS) == batch_captions


@pytest.mark.skipif(is_torchvision_available(), reason="torchvision is installed")
def test_missing_torchvision_is_named(checkpoint):
    with pytest.raises(ValueError, match=r"audio-lm captioner: cannot load '.*': .*torchvision"):
        AudioLMCaptioner.from_pretrained(checkpoint, device="cpu")
