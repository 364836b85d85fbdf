import numpy as np
import pytest
import soundfile as sf

from akb.audio import SAMPLE_RATE, AudioError, audio_duration, is_silent, load_audio


def test_resamples_to_16k_mono(tmp_path):
    t = np.arange(44_100) / 44_100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t)] * 2, axis=1) * 0.5
    sf.write(tmp_path / "a.wav", stereo, 44_100)
    audio = load_audio(tmp_path / "a.wav")
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - SAMPLE_RATE) <= 1 and not is_silent(audio)


@pytest.mark.parametrize("read", [load_audio, audio_duration])
def test_bad_files_name_the_file(tmp_path, read):
    """Decoding and the header-only check fail alike, naming the file."""
    with pytest.raises(AudioError, match="missing.wav: audio file not found"):
        read(tmp_path / "missing.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00not audio at all")
    with pytest.raises(AudioError, match="corrupt.wav: cannot decode audio"):
        read(tmp_path / "corrupt.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0), SAMPLE_RATE)
    with pytest.raises(AudioError, match="empty.wav: audio file holds no samples"):
        read(tmp_path / "empty.wav")


def test_silence_is_detected_not_rejected(tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros(SAMPLE_RATE), SAMPLE_RATE)
    assert is_silent(load_audio(tmp_path / "quiet.wav"))


def test_duration_from_the_header(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(8_000), 8_000)
    assert audio_duration(tmp_path / "a.wav") == 1.0
