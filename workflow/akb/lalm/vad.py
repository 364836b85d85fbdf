"""Voice activity: does a clip contain speech? (DeSTA2.5 asks Silero VAD before it runs Whisper.)

DeSTA2.5's inference loads Silero VAD and transcribes a clip only when `get_speech_timestamps`
finds speech in it; otherwise the clip's transcript is blank. Here the same model comes from the
`silero-vad` PyPI package, whose wheel ships the TorchScript model (no download, no torchaudio or
onnxruntime: it runs on torch alone), with the package's default thresholds, as DeSTA2.5 uses them.
"""

from __future__ import annotations

import numpy as np
import torch

from akb.audio import SAMPLE_RATE


class SpeechDetector:
    """`detector(audio)` -> True when Silero VAD finds at least one speech segment in a 16 kHz mono clip."""

    def __init__(self, model=None):
        if model is None:
            try:
                from silero_vad import load_silero_vad
            except ImportError as e:
                raise ImportError("voice activity detection (grounded.transcribe.vad) needs the silero-vad "
                                  "package: pip install 'silero-vad>=6.0'") from e
            model = load_silero_vad()  # the TorchScript model inside the wheel
        self.model = model

    def speech_segments(self, audio: np.ndarray) -> list[dict]:
        """Silero's speech segments, [{"start", "end"}] in samples; empty when there is no speech."""
        from silero_vad import get_speech_timestamps

        samples = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32).reshape(-1))
        with torch.inference_mode():
            return get_speech_timestamps(samples, self.model, sampling_rate=SAMPLE_RATE)

    def __call__(self, audio: np.ndarray) -> bool:
        return bool(self.speech_segments(audio))
