"""The `api` captioner against a local OpenAI-compatible server that decodes every clip it is sent.

The server is tests/test_api_backend.py's (request log, scripted failures, Authorization header),
answering audio requests with what it finds in the WAV, so every caption proves the clip arrived."""

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_api_backend import KEY_ENV, SECRET, Handler, record_waits, running_server

from akb.audio import SAMPLE_RATE, load_audio
from akb.cascade.caption import caption_items
from akb.captioners import CAPTIONER_BACKENDS, load_captioner
from akb.captioners.api import PROMPT_DIR, APICaptioner
from akb.config import ConfigError, validate_config
from akb.data.audio_bench import load_audio_benchmark
from akb.io import read_jsonl
from akb.models.api import APIError

ROOT = Path(__file__).resolve().parent.parent
PROMPT_V1 = (PROMPT_DIR / "v1.txt").read_text(encoding="utf-8").strip()
LSB = 1 / 32767  # one step of 16-bit PCM


def decode(body: dict) -> tuple[np.ndarray, dict]:
    """The clip a request carries, as the server sees it: samples (float) and the WAV's format."""
    part = body["messages"][-1]["content"][1]["input_audio"]
    info = sf.info(io.BytesIO(base64.b64decode(part["data"])))
    samples, _ = sf.read(io.BytesIO(base64.b64decode(part["data"])), dtype="float32")
    return samples, {"rate": info.samplerate, "channels": info.channels, "subtype": info.subtype,
                     "format": info.format, "declared": part["format"]}


class AudioHandler(Handler):
    """Errors as scripted (test_api_backend.Handler); otherwise a caption of the decoded clip. "empty"
    answers no text, as a model that spent its budget thinking does."""

    def respond(self, action, body):
        if action in ("empty", "cut"):  # no text / a caption cut at the budget
            content = None if action == "empty" else "A dog barks twice, then"
            reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                  "finish_reason": "length"}]}
            return self.send(200, json.dumps(reply).encode())
        if action != "ok":
            return super().respond(action, body)
        samples, fmt = decode(body)
        pcm, _ = sf.read(io.BytesIO(base64.b64decode(body["messages"][-1]["content"][1]["input_audio"]["data"])),
                         dtype="int16")
        caption = (f"{len(samples)} samples at {fmt['rate']} Hz, {fmt['channels']} channel(s), "
                   f"peak {np.abs(pcm.astype(int)).max()}/32767")
        reply = {"id": "cmpl-a", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": f" {caption} "},
                              "finish_reason": "stop"}]}
        self.send(200, json.dumps(reply).encode())


@pytest.fixture
def server(monkeypatch):
    with running_server(monkeypatch, AudioHandler) as srv:
        yield srv


@pytest.fixture
def entry(server, tmp_path):
    """An `api` captioner entry, completed by the config schema as the workflow does."""
    def make(name="gemini-test", api=None, **fields):
        settings = {"base_url": server.url, "key_env": KEY_ENV, "cache_dir": str(tmp_path / "cache" / name),
                    "backoff_base_s": 0.001, "backoff_max_s": 2.0, "timeout_s": 5, "max_retries": 3, **(api or {})}
        captioner = {"name": name, "backend": "api", "source": "gemini-2.5-pro", "api": settings,
                     "max_new_tokens": 512, **fields}
        config = validate_config({"models": [{"name": "m", "backend": "tiny", "source": "llama"}],
                                  "captioners": [captioner]})
        (validated,) = config["captioners"]
        validated.pop("resources")  # as the workflow's captioner_json does
        return validated

    return make


def write_wav(path: Path, seconds: float, freq: float, level: float, rate: int = SAMPLE_RATE, stereo=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    audio = level * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(int(freq)).standard_normal(t.size)
    sf.write(path, np.stack([audio, 0.5 * audio], axis=1) if stereo else audio, rate)


SPEAKERS = ["Man", "Woman", "Child", "Robot"]


@pytest.fixture
def bench(tmp_path):
    """A tiny MMAU-format benchmark (as tests/test_audio_bench.py writes them): five clips, one of
    them at 22.05 kHz stereo, the first used by two items."""
    records = []
    for i in range(6):
        clip = f"./test-mini-audios/mmau-{i % 5}.wav"
        records.append({"id": f"mmau-{i}", "audio_id": clip, "question": "Who speaks?", "choices": SPEAKERS,
                        "answer": SPEAKERS[i % 4], "dataset": "AudioSet", "task": ["sound", "music", "speech"][i % 3],
                        "split": "test-mini", "category": "Reasoning", "sub-category": "Speaker",
                        "difficulty": "easy"})
    for i in range(5):
        write_wav(tmp_path / "bench" / f"test-mini-audios/mmau-{i}.wav", 0.2 + 0.05 * i, 200 * (i + 1),
                  0.2 + 0.15 * i, rate=22_050 if i == 3 else SAMPLE_RATE, stereo=i == 3)
    path = tmp_path / "bench" / "mmau-test-mini.json"
    path.write_text(json.dumps(records, indent=1))
    return path


def clips(bench: Path) -> list[np.ndarray]:
    return [load_audio(bench.parent / f"test-mini-audios/mmau-{i}.wav", SAMPLE_RATE) for i in range(5)]


def expected_caption(audio: np.ndarray) -> str:
    """What the server answers for the clip: its length and its peak as 16-bit PCM (as this
    libsndfile quantises: builds differ in the scale, 32767 or 32768)."""
    wav = io.BytesIO()
    sf.write(wav, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    pcm, _ = sf.read(io.BytesIO(wav.getvalue()), dtype="int16")
    return f"{audio.size} samples at 16000 Hz, 1 channel(s), peak {np.abs(pcm.astype(int)).max()}/32767"


def test_each_clip_goes_as_a_16khz_wav_after_the_versioned_prompt(entry, server, bench):
    captioner = load_captioner(entry())
    assert isinstance(captioner, APICaptioner) and "api" in CAPTIONER_BACKENDS
    audios = clips(bench)
    captions = captioner.caption(audios)
    assert len(server.requests) == len(audios)
    by_size = {len(decode(r["body"])[0]): r for r in server.requests}  # concurrent: any order
    for audio, caption in zip(audios, captions):
        request = by_size[audio.size]
        assert request["path"] == "/v1/chat/completions" and request["auth"] == f"Bearer {SECRET}"
        body = request["body"]
        assert body["model"] == "gemini-2.5-pro" and body["max_tokens"] == 512 and body["temperature"] == 0
        (message,) = body["messages"]
        text, sound = message["content"]
        assert message["role"] == "user" and text == {"type": "text", "text": PROMPT_V1}
        assert sound["type"] == "input_audio" and set(sound["input_audio"]) == {"data", "format"}
        samples, fmt = decode(body)
        assert fmt == {"rate": 16000, "channels": 1, "subtype": "PCM_16", "format": "WAV", "declared": "wav"}
        np.testing.assert_allclose(samples, audio, rtol=0, atol=1.5 * LSB)  # the clip itself, to 16-bit precision
        assert caption == expected_caption(audio)  # stripped, in input order
    # The 22.05 kHz stereo clip arrives resampled to 16 kHz mono.
    assert audios[3].size == round(0.35 * SAMPLE_RATE)
    assert PROMPT_V1.startswith("Listen to this audio clip") and "Do not guess what questions" in PROMPT_V1


def test_rerun_sends_nothing_and_the_cache_holds_no_audio(entry, server, bench, tmp_path):
    audios = clips(bench)
    first = load_captioner(entry()).caption(audios)
    again = load_captioner(entry())  # a fresh process, same cache
    assert again.caption(audios) == first and again.stats == {"cached": 5, "sent": 0}
    assert len(server.requests) == 5
    files = sorted((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 5
    sent = {r["body"]["messages"][0]["content"][1]["input_audio"]["data"] for r in server.requests}
    for path in files:
        text = path.read_text()
        record = json.loads(text)
        assert record["captioner"] == "gemini-test" and record["content"] in first and record["key"] == path.stem
        assert record["request"]["messages"][0]["content"][0]["text"] == PROMPT_V1
        assert record["request"]["messages"][0]["content"][1]["input_audio"]["data"].startswith("sha256:")
        assert not any(data in text for data in sent) and SECRET not in text and len(text) < 8000


def test_a_changed_clip_or_prompt_is_asked_again(entry, server, bench, tmp_path):
    audios = clips(bench)
    load_captioner(entry()).caption(audios)
    changed = [audios[0], audios[1] * 0.5, *audios[2:]]
    captioner = load_captioner(entry())
    assert captioner.caption(changed)[1] == expected_caption(changed[1])
    assert captioner.stats == {"cached": 4, "sent": 1} and len(server.requests) == 6
    prompt = tmp_path / "my-prompt.txt"
    prompt.write_text("Describe the clip in one sentence.\n")
    other = load_captioner(entry(prompt_file=str(prompt)))
    other.caption(audios[:1])
    assert other.stats["sent"] == 1
    assert server.requests[-1]["body"]["messages"][0]["content"][0]["text"] == "Describe the clip in one sentence."


@pytest.mark.parametrize(("headers", "first_wait"), [({"Retry-After": "1.5"}, 1.5), ({"retry-after-ms": "300"}, 0.3)])
def test_429_with_retry_after_then_200(entry, server, bench, monkeypatch, headers, first_wait):
    waits = record_waits(monkeypatch)
    server.script = [(429, headers), (503, {})]
    captioner = load_captioner(entry(api={"max_concurrency": 1, "backoff_base_s": 0.5}))
    audios = clips(bench)[:1]
    assert captioner.caption(audios) == [expected_caption(audios[0])]
    assert len(server.requests) == 3 and captioner.stats == {"cached": 0, "sent": 3}
    assert waits == [first_wait, 1.0]  # the server's wait, then the backoff's second step (jitter at its top)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        ((400, {}), "HTTP 400 from http://127.0.0.1"),
        ("bad-json", "malformed reply 2 time(s): not JSON"),
        ("empty", "no text in the reply (finish_reason=length); raise max_new_tokens"),
    ],
)
def test_a_failed_clip_is_a_clear_error_naming_captioner_clip_item_and_status(entry, server, bench, tmp_path,
                                                                               failure, message):
    server.default = failure
    items = load_audio_benchmark(bench)[0]
    captioner = load_captioner(entry(api={"malformed_retries": 1}))
    with pytest.raises(APIError) as error:
        caption_items(captioner, items[1:2], tmp_path / "captions.jsonl")
    text = str(error.value)
    clip = bench.parent / "test-mini-audios" / "mmau-1.wav"
    assert text.startswith(f"captioner gemini-test: clip {clip} (item mmau-1) (request ")
    assert message in text and ("HTTP 400" in text or "HTTP 200" in text)
    assert SECRET not in text
    if failure == (400, {}):
        assert "[redacted]" in text  # the server echoed the Authorization header in its error
    assert len(server.requests) == (1 if failure == (400, {}) else 2)  # a 400 is not retried
    assert not list((tmp_path / "cache").rglob("*.json")) and not (tmp_path / "captions.jsonl").exists()


def test_a_caption_cut_at_the_budget_is_kept_with_a_warning(entry, server, bench, tmp_path, caplog):
    server.default = "cut"
    items = load_audio_benchmark(bench)[0]
    caption_items(load_captioner(entry()), items[:1], tmp_path / "captions.jsonl")
    assert read_jsonl(tmp_path / "captions.jsonl")[0]["caption"] == "A dog barks twice, then"
    assert "mmau-0.wav (item mmau-0)" in caplog.text and "answer cut at max_new_tokens (512)" in caplog.text


def test_missing_key_names_the_variable(entry, server, bench, monkeypatch):
    audios = clips(bench)
    load_captioner(entry()).caption(audios[:2])
    monkeypatch.delenv(KEY_ENV)
    assert len(load_captioner(entry()).caption(audios[:2])) == 2  # from the cache: no key needed
    with pytest.raises(APIError, match=f"^captioner gemini-test: the environment variable {KEY_ENV} .*not set"):
        load_captioner(entry()).caption(audios)
    assert len(server.requests) == 2


def test_interrupted_caption_run_resumes_with_only_the_unanswered_clips(entry, server, bench, tmp_path):
    items = load_audio_benchmark(bench)[0]
    out = tmp_path / "captions" / "mmau.jsonl"
    server.script = ["ok"] * 3
    server.default = (500, {})
    with pytest.raises(APIError, match="failed after 2 attempt"):
        caption_items(load_captioner(entry(api={"max_retries": 1, "max_concurrency": 1})), items, out, batch_size=2)
    assert not out.exists()
    done = {r["id"] for r in read_jsonl(out.with_name(out.name + ".partial"))}
    assert done == {"mmau-0", "mmau-5", "mmau-1"}  # the first batch (clip 0 is shared by mmau-5)
    answered = len(server.requests) - 2  # the third good answer (clip 2) is cached, its batch unfinished
    server.requests.clear()
    server.default = "ok"
    captioner = load_captioner(entry())
    caption_items(captioner, items, out, batch_size=2)
    assert captioner.stats == {"cached": 1, "sent": 2} and answered == 3  # clips 3 and 4 only
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [it.id for it in items]
    audios = clips(bench)
    assert [r["caption"] for r in rows] == [expected_caption(audios[i % 5]) for i in range(6)]
    assert {r["captioner"] for r in rows} == {"gemini-test"}


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "akb", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, cwd=ROOT)


def test_akb_caption_cli_end_to_end(entry, server, bench, tmp_path):
    out = tmp_path / "results" / "captions.jsonl"
    # Every clip at 16 kHz here: resampling would load librosa in each of the three processes (5 s each).
    write_wav(bench.parent / "test-mini-audios/mmau-3.wav", 0.35, 800, 0.65)
    config = entry()
    args = ["caption", "--benchmark", str(bench), "--kind", "mmau", "--captioner", json.dumps(config),
            "--batch-size", "2", "--out", str(out)]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [f"mmau-{i}" for i in range(6)] and len(server.requests) == 5
    assert rows[5]["caption"] == rows[0]["caption"] == expected_caption(clips(bench)[0])
    assert SECRET not in result.stderr
    # Another output file, same cache: nothing is sent. A new clip without a key: one clear line.
    assert run_cli(*args[:-1], str(tmp_path / "again.jsonl"), env={KEY_ENV: ""}).returncode == 0
    assert len(server.requests) == 5 and read_jsonl(tmp_path / "again.jsonl") == rows
    server.default = (400, {})
    write_wav(bench.parent / "test-mini-audios/mmau-4.wav", 0.5, 330, 0.4)
    failed = run_cli(*args[:-1], str(tmp_path / "changed.jsonl"))
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "captioner gemini-test: clip " in failed.stderr and "mmau-4.wav (item mmau-4)" in failed.stderr
    assert "HTTP 400" in failed.stderr and SECRET not in failed.stderr


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"prompt_version": "v9"}, FileNotFoundError, "no shipped caption prompt 'v9'"),
        ({"prompt_file": "missing.txt"}, FileNotFoundError, "prompt_file missing.txt does not exist"),
        ({"prompt_version": "v1", "prompt": "Describe."}, ValueError, "give one of prompt_version, prompt_file"),
        ({"api": {"base_url": "http://x", "keyenv": "K"}}, ValueError, "unknown `api` setting(s) ['keyenv']"),
        ({"api": None}, ValueError, "needs an `api:` block with at least `base_url`"),
        ({"source": ""}, ValueError, "needs `source`, the API model id"),
    ],
)
def test_bad_entries_are_clear_errors(fields, error, message):
    entry = {"name": "cap", "backend": "api", "source": "gemini-2.5-pro", "api": {"base_url": "http://x"}, **fields}
    with pytest.raises(error, match="captioner cap: ") as raised:
        load_captioner(entry)
    assert message in str(raised.value)


def test_schema_fills_api_defaults_and_asks_for_no_gpu():
    config = validate_config({"models": [{"name": "m", "backend": "tiny", "source": "llama"}], "captioners": [
        {"name": "gemini", "backend": "api", "source": "gemini-2.5-pro", "prompt_version": "v1",
         "api": {"base_url": "https://generativelanguage.googleapis.com/v1beta/openai", "key_env": "GEMINI_API_KEY"}},
        {"name": "dsp", "backend": "dsp"},
    ]})
    gemini, dsp = config["captioners"]
    assert gemini["api"]["max_concurrency"] == 4 and gemini["api"]["cache_dir"] is None
    assert gemini["resources"]["gpu"] == 0
    assert not {"prompt_version", "prompt_file", "api"} & set(dsp)  # other captioners' job parameters unchanged
    captioner = load_captioner(gemini)
    assert captioner.client.url == "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"
    assert str(captioner.client.cache_dir) == "resources/api_cache/captions/gemini"
    assert captioner.prompt.text == PROMPT_V1 and captioner.prompt.origin == "version v1"
    for bad, message in [({"api": None}, "'api' is a required property"),
                         ({"source": None}, "'source' is a required property"),
                         ({"prompt_version": "../v1"}, "does not match")]:
        entry = {"name": "g", "backend": "api", "source": "s", "api": {"base_url": "http://x"}, **bad}
        entry = {k: v for k, v in entry.items() if v is not None}
        with pytest.raises(ConfigError, match="config.captioners") as raised:
            validate_config({"models": [{"name": "m", "backend": "tiny", "source": "llama"}], "captioners": [entry]})
        assert message in str(raised.value)


def test_workflow_plans_the_caption_job_with_the_entry_its_prompt_and_no_gpu(tmp_path, bench):
    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"name": "tiny-llama", "backend": "tiny", "source": "llama"}],
        "audio_benchmarks": [{"name": "mmau", "source": str(bench), "kind": "mmau"}],
        "captioners": [{"name": "gemini", "backend": "api", "source": "gemini-2.5-pro", "max_new_tokens": 4096,
                        "api": {"base_url": "https://generativelanguage.googleapis.com/v1beta/openai",
                                "key_env": "GEMINI_API_KEY", "extra_body": {"reasoning_effort": "low"}}}],
    }))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(config),
         "--directory", str(tmp_path), "-n", "-p", "results/captions/gemini/mmau.jsonl"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    job = out[out.index("rule caption_benchmark:"):]
    job = job[: job.index("Job stats")]
    assert f"{PROMPT_DIR / 'v1.txt'}" in job.split("output:")[0]  # editing the prompt re-captions
    assert "gpu=0" in job
    command = job[job.index("python -m akb caption"):]
    captioner = json.loads(command.split("--captioner '")[1].split("' --batch-size")[0])
    assert captioner["backend"] == "api" and captioner["source"] == "gemini-2.5-pro"
    assert captioner["api"]["key_env"] == "GEMINI_API_KEY" and captioner["api"]["extra_body"] == {"reasoning_effort": "low"}
    assert captioner["max_new_tokens"] == 4096 and "resources" not in captioner
    assert load_captioner(captioner).prompt.text == PROMPT_V1
