"""Tiny random audio LLMs of the real transformers classes, built offline (no hub): tests and
offline demos run the real code paths with them. Their replies are noise; identical seeds give
identical models. Each builder returns (model, processor) with a processor of the real kind (the
real feature extractor, an offline-trained byte-level BPE tokenizer carrying the family's special
tokens, and a chat template modelled on the published one; Voxtral's instead has mistral-common's
tokenizer, reading a tiny tekken.json, as the published checkpoint does)."""

from __future__ import annotations

import torch

from akb.audio_llms.transformers_lm import END_OF_TURN



# Qwen2-Audio-7B-Instruct's chat template, as shipped.
QWEN2_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_qwen2_audio(seed: int = 0):
    """(model, processor): a randomly initialised Qwen2AudioForConditionalGeneration (a 2-layer
    64-wide audio encoder and text decoder) with a Qwen2AudioProcessor of the real kind (a 128-bin
    Whisper feature extractor, an offline-trained byte-level BPE tokenizer with Qwen2-Audio's special
    tokens and chat template). Identical for identical seeds; its captions are noise. Its generation
    config samples, like the real checkpoint's, so that a captioner relying on it would show."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    from akb.models.tiny import ChatFormat, build_tokenizer

    chat = ChatFormat(
        bos=None,
        eos=END_OF_TURN,
        pad="<|endoftext|>",
        extra_special=("<|im_start|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"),
        template=QWEN2_AUDIO_CHAT_TEMPLATE,
    )
    tokenizer = build_tokenizer(chat)
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tokenizer,
        chat_template=QWEN2_AUDIO_CHAT_TEMPLATE,
    )
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder", "d_model": 64, "encoder_layers": 2,
            "encoder_attention_heads": 4, "encoder_ffn_dim": 128, "num_mel_bins": 128,
            "max_source_positions": 1500,  # the encoder's fixed input: 3000 mel frames, 30 s
        },
        text_config={
            "model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 2048,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
        },
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    generation = model.generation_config
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    generation.do_sample, generation.temperature, generation.top_p, generation.top_k = True, 0.7, 0.5, 20
    return model, processor


# Modelled on Audio Flamingo 3's (nvidia/audio-flamingo-3-hf): ChatML turns, each clip as <sound>.
AUDIO_FLAMINGO3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}<sound>{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_audio_flamingo3(seed: int = 0):
    """(model, processor): a random AudioFlamingo3ForConditionalGeneration (1-layer 32-wide Whisper-style
    encoder, 2-layer 64-wide Qwen2 decoder) with an AudioFlamingo3Processor (128-bin Whisper features)."""
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
        WhisperFeatureExtractor,
    )

    from akb.models.tiny import ChatFormat, build_tokenizer

    chat = ChatFormat(bos=None, eos=END_OF_TURN, pad="<|endoftext|>", extra_special=("<|im_start|>", "<sound>"),
                      template=AUDIO_FLAMINGO3_CHAT_TEMPLATE)
    tokenizer = build_tokenizer(chat)
    processor = AudioFlamingo3Processor(feature_extractor=WhisperFeatureExtractor(feature_size=128),
                                        tokenizer=tokenizer, chat_template=AUDIO_FLAMINGO3_CHAT_TEMPLATE)
    config = AudioFlamingo3Config(
        audio_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
                      "num_mel_bins": 128},
        text_config={"model_type": "qwen2", "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id},
        audio_token_id=tokenizer.convert_tokens_to_ids("<sound>"),
    )
    torch.manual_seed(seed)
    model = AudioFlamingo3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, processor


# Modelled on Phi-4-multimodal's: <|user|>...<|end|><|assistant|>, each clip as <|audio|>.
PHI4_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' %}<|audio|>{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_phi4_multimodal(seed: int = 0):
    """(model, processor): a random Phi4MultimodalForCausalLM (1-block 32-wide conformer audio encoder,
    a 1-layer vision encoder, a 2-layer 64-wide decoder) with a Phi4MultimodalProcessor holding the
    real Phi4MultimodalFeatureExtractor. The processor's image half (Phi4MultimodalImageProcessor
    needs torchvision) is left out: audio requests never use it."""
    from transformers import (
        Phi4MultimodalConfig,
        Phi4MultimodalFeatureExtractor,
        Phi4MultimodalForCausalLM,
        Phi4MultimodalProcessor,
        PreTrainedTokenizerFast,
    )
    from transformers.processing_utils import ProcessorMixin

    from akb.models.tiny import ChatFormat, build_tokenizer

    named = {"image_token": "<|image|>", "audio_token": "<|audio|>"}  # the processor reads them off the tokenizer
    chat = ChatFormat(bos=None, eos="<|end|>", pad="<|endoftext|>",
                      extra_special=("<|user|>", "<|assistant|>", *named.values()), template=PHI4_CHAT_TEMPLATE)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(chat).backend_tokenizer, eos_token=chat.eos,
                                        pad_token=chat.pad, chat_template=PHI4_CHAT_TEMPLATE,
                                        extra_special_tokens=named)
    check = ProcessorMixin.check_argument_for_proper_class
    try:  # accept None for the image processor, only while building this one
        ProcessorMixin.check_argument_for_proper_class = (
            lambda self, name, arg: None if name == "image_processor" and arg is None else check(self, name, arg))
        processor = Phi4MultimodalProcessor(image_processor=None, audio_processor=Phi4MultimodalFeatureExtractor(),
                                            tokenizer=tokenizer, chat_template=PHI4_CHAT_TEMPLATE)
    finally:
        ProcessorMixin.check_argument_for_proper_class = check
    ids = tokenizer.convert_tokens_to_ids
    config = Phi4MultimodalConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, bos_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 28, "patch_size": 14, "crop_size": 28, "image_token_id": ids("<|image|>")},
        audio_config={"hidden_size": 32, "intermediate_size": 64, "num_blocks": 1, "num_attention_heads": 2,
                      "ext_pw_out_channel": 32, "depthwise_separable_out_channel": 32, "nemo_conv_channels": 32,
                      "audio_token_id": ids("<|audio|>")},
    )
    torch.manual_seed(seed)
    model = Phi4MultimodalForCausalLM(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, processor


def tiny_qwen2_5_omni_thinker(seed: int = 0):
    """(thinker, processor): a random Qwen2_5OmniThinkerForConditionalGeneration (2-layer 64-wide
    audio encoder and decoder, 1-layer vision encoder). Qwen2.5-Omni's own processor needs
    torchvision for its video half; Qwen2-Audio's processor produces the same audio inputs (128-bin
    Whisper features, one placeholder widened per audio frame), so it stands in, with the vision tokens added."""
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    _, processor = tiny_qwen2_audio(seed)
    tokenizer = processor.tokenizer
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|vision_bos|>", "<|vision_eos|>", "<|IMAGE|>",
                                                                "<|VIDEO|>"]})
    ids = {key: tokenizer.convert_tokens_to_ids(token) for key, token in [
        ("audio_token_index", "<|AUDIO|>"), ("audio_start_token_id", "<|audio_bos|>"),
        ("audio_end_token_id", "<|audio_eos|>"), ("vision_start_token_id", "<|vision_bos|>"),
        ("vision_end_token_id", "<|vision_eos|>"), ("image_token_index", "<|IMAGE|>"),
        ("video_token_index", "<|VIDEO|>"),
    ]}
    config = Qwen2_5OmniThinkerConfig(
        audio_config={"d_model": 64, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 128,
                      "num_mel_bins": 128, "output_dim": 64, "n_window": 50},
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "out_hidden_size": 64, "fullatt_block_indexes": [0]},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
                     "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id},
        **ids,
    )
    torch.manual_seed(seed)
    return Qwen2_5OmniThinkerForConditionalGeneration(config).eval(), processor


# Voxtral's tokenizer: mistral-common's tekken format (byte-level BPE on tiktoken). Special tokens sit
# below the byte vocabulary at the published ranks the model and processor rely on: VoxtralProcessor
# takes id 24 as [AUDIO]; [BEGIN_AUDIO] opens each clip; instruct tokenizers v7+ need [TRANSCRIBE],
# v11 [ARGS] and [CALL_ID]. Unnamed ranks are filled with <SPECIAL_n> by mistral-common itself.
TEKKEN_PATTERN = (  # the published tekken.json's pre-tokenizer
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)
VOXTRAL_SPECIAL_RANKS = {24: "audio", 25: "begin_audio", 32: "args", 33: "call_id", 34: "transcribe"}
VOXTRAL_NUM_SPECIAL = 40


def tiny_tekken(num_special: int = VOXTRAL_NUM_SPECIAL) -> dict:
    """A tekken.json (v11) with Voxtral's audio settings (16 kHz, 12.5 audio tokens per second, clips
    padded to 30 s windows of 128-bin mel frames) over the 256 single bytes, without merges."""
    import base64

    from mistral_common.tokens.tokenizers.base import SpecialTokens
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    special = [dict(token) for token in Tekkenizer.DEPRECATED_SPECIAL_TOKENS]  # ranks 0-19: <unk>, <s>, </s>, [INST]...
    special += [{"rank": rank, "token_str": getattr(SpecialTokens, name).value, "is_control": True}
                for rank, name in VOXTRAL_SPECIAL_RANKS.items()]
    taken = {token["rank"] for token in special}
    special += [{"rank": rank, "token_str": Tekkenizer.SPECIAL_TOKEN_TEMPLATE.format(id=rank), "is_control": True}
                for rank in range(num_special) if rank not in taken]
    vocab = [{"rank": i, "token_bytes": base64.b64encode(bytes([i])).decode("ascii"), "token_str": None}
             for i in range(256)]
    return {
        "config": {"pattern": TEKKEN_PATTERN, "num_vocab_tokens": len(vocab), "version": "v11",
                   "default_vocab_size": len(vocab) + num_special, "default_num_special_tokens": num_special},
        "vocab": vocab,
        "special_tokens": sorted(special, key=lambda token: token["rank"]),
        "audio": {"sampling_rate": 16_000, "frame_rate": 12.5, "chunk_length_s": 30.0,
                  "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400}},
    }


def tiny_voxtral(seed: int = 0, directory=None):
    """(model, processor): a random VoxtralForConditionalGeneration (1-layer 32-wide Whisper-style
    encoder over 30 s windows, 2-layer 64-wide Llama decoder) with a VoxtralProcessor of the real kind:
    a 128-bin Whisper feature extractor and mistral-common's tokenizer (MistralCommonBackend) reading
    a tiny tekken.json written to `directory` (default: a temporary one, removed at exit), where
    save_pretrained finds it again. Needs mistral-common (the `voxtral` extra)."""
    import atexit
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from transformers import VoxtralConfig, VoxtralForConditionalGeneration, VoxtralProcessor, WhisperFeatureExtractor
    from transformers.tokenization_mistral_common import MistralCommonBackend

    if directory is None:
        directory = tempfile.mkdtemp(prefix="tiny-voxtral-")
        atexit.register(shutil.rmtree, directory, True)
    path = Path(directory) / "tekken.json"
    path.write_text(json.dumps(tiny_tekken()))
    tokenizer = MistralCommonBackend(path)
    processor = VoxtralProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer)
    config = VoxtralConfig(
        # The projector stacks 4 encoder frames into one text position: intermediate_size is 4 x hidden_size,
        # and the 1500 positions of a 30 s window become its 375 [AUDIO] tokens.
        audio_config={"hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "num_mel_bins": 128, "max_source_positions": 1500},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        audio_token_id=processor.audio_token_id,
    )
    torch.manual_seed(seed)
    model = VoxtralForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, processor
