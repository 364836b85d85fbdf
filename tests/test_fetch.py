"""`akb fetch-benchmark` against a loopback server that answers as the Hugging Face hub does.

The server emulates what huggingface_hub reads on HEAD/GET /datasets/{repo}/resolve/{revision}/{path}
(X-Repo-Commit, ETag = the LFS sha256, Content-Length, Range requests) and serves a plain URL
(the metadata's GitHub-style raw file); faults (a cut connection, 5xx, 429) are injected per path.
"""

import hashlib
import importlib
import io
import json
import logging
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from huggingface_hub import constants

from akb.cli import main
from akb.data import fetch
from akb.data.audio_bench import load_audio_benchmark
from akb.data.fetch import MANIFEST_NAME, FetchError, HubFile, OfflineError, Release, UrlFile, fetch_benchmark

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "test-org/fake-mmau"
IDS = ["clip-a", "clip-b", "clip-c"]


def wav_bytes(seed: int, seconds: float = 0.25, rate: int = 16000) -> bytes:
    # Noise, not a tone: the archive must not compress to a few bytes (the cut test needs a middle).
    audio = np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * rate)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def metadata_bytes(ids=IDS) -> bytes:
    records = [{"id": i, "audio_id": f"./test-mini-audios/{i}.wav", "question": f"What is heard in {i}?",
                "choices": ["a dog", "a car", "rain", "a violin"], "answer": "rain", "task": "sound",
                "category": "Reasoning", "sub-category": "Acoustic Source Inference"} for i in ids]
    return json.dumps(records, indent=2).encode()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def clip_members(prefix="test-mini-audios/") -> dict[str, bytes]:
    members = {f"{prefix}{i}.wav": wav_bytes(n) for n, i in enumerate(IDS)}
    members["README.txt"] = b"not a clip"  # extra members are left alone
    return members


class FakeHub:
    """Files by URL path; `faults[path]` (`head_faults[path]`) lists what the next GET (HEAD) requests
    of a path get: "cut" (half the body, then the connection drops) or an HTTP status."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = {}  # for GET requests
        self.head_faults: dict[str, list] = {}
        self.requests: list[tuple[str, str, dict]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, body: bool):
                hub.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                path = self.path.split("?")[0]
                faults = (hub.faults if body else hub.head_faults).get(path)
                fault = faults.pop(0) if faults else None
                if isinstance(fault, int):
                    self.send_response(fault)
                    if fault == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = hub.files.get(path)
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and body:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                if "/resolve/" in path:
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if not body:
                    return
                if fault == "cut":  # half the body, then the connection drops
                    self.wfile.write(data[start: start + (len(data) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def gets(self, name: str):
        return [r for r in self.requests if r[0] == "GET" and r[1].endswith(name)]


@pytest.fixture
def hub(monkeypatch):
    server = FakeHub()
    # huggingface_hub reads its settings at import: set them, then reload its constants (and again
    # after the test, so that the other tests see conftest's HF_HUB_OFFLINE=1 again).
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "3")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    importlib.reload(constants)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)  # a cut body leaves whole chunks on disk
    monkeypatch.setattr(fetch, "RETRY_WAITS", (0.05, 0.05))
    yield server
    server.server.shutdown()
    monkeypatch.undo()
    importlib.reload(constants)


def fake_release(hub: FakeHub, archive: bytes, *, fmt="tar", filename="test-mini-audios.tar.gz",
                 meta: bytes | None = None, **audio) -> Release:
    meta = metadata_bytes() if meta is None else meta
    hub.files["/raw/mmau-test-mini.json"] = meta
    hub.files[f"/datasets/{REPO}/resolve/main/{filename}"] = archive
    return Release(
        name="fake-mmau", kind="mmau",
        metadata=UrlFile(f"{hub.url}/raw/mmau-test-mini.json", sha256=hashlib.sha256(meta).hexdigest()),
        metadata_name="mmau-test-mini.json",
        audio=HubFile(REPO, filename, revision="main", **audio), audio_format=fmt, audio_dir="test-mini-audios",
        parquet_columns={"audio": "context", "attributes": "other_attributes", "id": "id"},
    )


def assert_nothing_complete(out: Path):
    assert not (out / "mmau-test-mini.json").exists()
    assert not (out / "test-mini-audios").exists()
    assert not (out / MANIFEST_NAME).exists()


def test_fetch_gives_what_the_loader_loads_and_a_rerun_downloads_nothing(hub, tmp_path):
    archive = tar_bytes(clip_members("./test-mini-audios/"))
    release = fake_release(hub, archive)
    out = tmp_path / "mmau"
    manifest = fetch_benchmark(release, out, timeout=30)

    items, problems = load_audio_benchmark(out / "mmau-test-mini.json", "mmau")
    assert [it.id for it in items] == IDS and not problems
    assert (out / "test-mini-audios/clip-a.wav").read_bytes() == wav_bytes(0)
    assert not (out / "README.txt").exists() and not (out / "test-mini-audios/README.txt").exists()
    assert manifest["audio"]["archive"]["sha256"] == hashlib.sha256(archive).hexdigest()
    assert manifest["audio"]["archive"]["source"]["commit"] == COMMIT
    assert json.loads((out / MANIFEST_NAME).read_text()) == manifest
    assert not (out / ".downloads").exists()  # the archive is not kept by default
    heads = [r for r in hub.requests if r[0] == "HEAD"]
    assert heads and heads[0][2].get("authorization") == "Bearer hf_test_token"  # HF_TOKEN honoured

    n = len(hub.requests)
    assert fetch_benchmark(release, out, timeout=30) == manifest
    assert len(hub.requests) == n  # nothing asked of the hub


def test_mmau_hub_parquet_layout_becomes_clip_files(hub, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "instruction": [f"q {i}" for i in IDS],
        "context": [{"bytes": wav_bytes(n), "path": None} for n, _ in enumerate(IDS)],
        "other_attributes": [json.dumps({"id": i, "task": "sound"}) for i in IDS],
    })
    buf = io.BytesIO()
    pq.write_table(table, buf)
    release = fake_release(hub, buf.getvalue(), fmt="parquet", filename="test_mini.parquet")
    out = tmp_path / "mmau"
    fetch_benchmark(release, out, timeout=30)
    items, _ = load_audio_benchmark(out / "mmau-test-mini.json", "mmau")
    assert len(items) == 3 and (out / "test-mini-audios/clip-c.wav").read_bytes() == wav_bytes(2)


def test_interrupted_download_resumes_on_rerun_with_a_range_request(hub, tmp_path):
    archive = tar_bytes(clip_members())
    path = f"/datasets/{REPO}/resolve/main/test-mini-audios.tar.gz"
    release = fake_release(hub, archive)
    # The connection drops mid-file, then the server fails every retry: this run gives up.
    hub.faults[path] = ["cut"] + [500] * 20
    out = tmp_path / "mmau"
    with pytest.raises(FetchError, match="HTTP 500"):
        fetch_benchmark(release, out, timeout=30)
    assert_nothing_complete(out)
    parts = list((out / ".downloads").glob("*.part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < len(archive)

    hub.faults.clear()
    resumed_at = parts[0].stat().st_size
    n_gets = len(hub.gets("test-mini-audios.tar.gz"))
    fetch_benchmark(release, out, timeout=30)
    rerun = hub.gets("test-mini-audios.tar.gz")[n_gets:]
    assert [r[2].get("range") for r in rerun] == [f"bytes={resumed_at}-"]  # only the missing bytes
    assert len(load_audio_benchmark(out / "mmau-test-mini.json", "mmau")[0]) == 3


def test_archive_with_wrong_sha256_is_refused_and_nothing_looks_complete(hub, tmp_path):
    release = fake_release(hub, tar_bytes(clip_members()), sha256="0" * 64)
    out = tmp_path / "mmau"
    with pytest.raises(FetchError, match="sha256 .* does not match the expected 0000"):
        fetch_benchmark(release, out, timeout=30)
    assert_nothing_complete(out)
    assert not list((out / ".downloads").glob("test-mini-audios*"))  # a rerun downloads it afresh


def test_a_file_that_is_not_an_archive_is_refused(hub, tmp_path):
    release = fake_release(hub, b"<html>Sign in to continue</html>" * 50)
    out = tmp_path / "mmau"
    with pytest.raises(FetchError, match="not a readable tar archive"):
        fetch_benchmark(release, out, timeout=30)
    assert_nothing_complete(out)
    assert not [p for p in out.iterdir() if p.name.startswith(".fetch-")]  # no staging left behind


def test_archive_missing_a_clip_or_with_unsafe_paths_is_refused(hub, tmp_path):
    members = clip_members()
    del members["test-mini-audios/clip-b.wav"]
    with pytest.raises(FetchError, match=r"lacks 1 of the 3 clips .*clip-b"):
        fetch_benchmark(fake_release(hub, tar_bytes(members)), tmp_path / "a", timeout=30)
    assert_nothing_complete(tmp_path / "a")

    members = clip_members() | {"../../escaped.wav": wav_bytes(9)}
    with pytest.raises(FetchError, match="unsafe member path '../../escaped.wav'"):
        fetch_benchmark(fake_release(hub, tar_bytes(members)), tmp_path / "b", timeout=30)
    assert_nothing_complete(tmp_path / "b")
    assert not list(tmp_path.rglob("escaped.wav"))


def test_rate_limits_and_server_errors_are_retried_then_reported(hub, tmp_path):
    release = fake_release(hub, tar_bytes(clip_members()))
    path = f"/datasets/{REPO}/resolve/main/test-mini-audios.tar.gz"
    hub.head_faults[path] = [429]  # rate-limited once (Retry-After: 0)
    hub.faults[path] = [503]
    fetch_benchmark(release, tmp_path / "ok", timeout=30)
    assert (tmp_path / "ok" / MANIFEST_NAME).is_file()

    hub.faults[path] = [502] * 10
    with pytest.raises(FetchError, match=r"answered HTTP 502 after 2 retries"):
        fetch_benchmark(release, tmp_path / "down", timeout=30)
    assert_nothing_complete(tmp_path / "down")


def test_offline_says_what_to_download_and_where(hub, tmp_path, monkeypatch, caplog):
    release = fake_release(hub, tar_bytes(clip_members()))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "mmau"
    with pytest.raises(OfflineError) as error:
        fetch_benchmark(release, out, timeout=30)
    message = str(error.value)
    assert "HF_HUB_OFFLINE" in message
    assert f"{hub.url}/raw/mmau-test-mini.json" in message and f"-> {out / 'mmau-test-mini.json'}" in message
    assert f"/datasets/{REPO}/resolve/main/test-mini-audios.tar.gz" in message
    assert f"each clip is {out / 'test-mini-audios'}/<id>.wav" in message
    assert not hub.requests

    # A copy placed by hand as told is checked and adopted, still offline.
    out.mkdir()
    (out / "mmau-test-mini.json").write_bytes(metadata_bytes())
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(clip_members()))) as tar:
        tar.extractall(out, filter="data")
    assert fetch_benchmark(release, out, timeout=30)["metadata"]["source"] == "found in place"

    # The CLI: one clear error, exit 2, no traceback.
    monkeypatch.setitem(fetch.RELEASES, "fake-mmau", release)
    caplog.set_level(logging.ERROR)
    assert main(["fetch-benchmark", "--name", "fake-mmau", "--out-dir", str(tmp_path / "other")]) == 2
    assert "Download these yourself" in caplog.text and "Traceback" not in caplog.text


def test_no_connection_is_reported_like_offline(hub, tmp_path, monkeypatch):
    release = fake_release(hub, tar_bytes(clip_members()))
    hub.server.shutdown()
    hub.server.server_close()
    # huggingface_hub waits 1 s between its own 5 reconnection tries; the outcome is the same without.
    monkeypatch.setattr("huggingface_hub.file_download.time.sleep", lambda s: None)
    with pytest.raises(OfflineError, match="no connection"):
        fetch_benchmark(release, tmp_path / "mmau", timeout=30)
    assert_nothing_complete(tmp_path / "mmau")


def test_cli_fetches_end_to_end(hub, tmp_path, monkeypatch):
    archive = tar_bytes(clip_members())
    release = fake_release(hub, archive)
    monkeypatch.setitem(fetch.RELEASES, "fake-mmau", release)
    out = tmp_path / "resources" / "mmau"
    sha = hashlib.sha256(archive).hexdigest()
    assert main(["fetch-benchmark", "--name", "fake-mmau", "--out-dir", str(out), "--audio-sha256", sha,
                 "--keep-downloads"]) == 0
    assert len(load_audio_benchmark(out / "mmau-test-mini.json")[0]) == 3
    assert (out / ".downloads" / "test-mini-audios.tar.gz").read_bytes() == archive
    assert main(["fetch-benchmark", "--name", "nope", "--out-dir", str(out)]) == 2


def test_config_fetch_key_is_validated():
    from akb.config import ConfigError, validate_config

    def config(**entry):
        return {"models": [{"name": "m", "backend": "tiny", "source": "llama"}],
                "audio_benchmarks": [{"name": "mmau", **entry}]}

    ok = validate_config(config(source="resources/mmau/mmau-test-mini.json", fetch="mmau-test-mini"))
    assert ok["audio_benchmarks"][0]["fetch_revision"] is None
    assert validate_config(config(source="x.json"))["audio_benchmarks"][0]["fetch"] is None
    with pytest.raises(ConfigError, match=r"audio_benchmarks\[0\] \(mmau\): fetch 'mmar' writes MMAR-meta.jsonl; "
                                          r"set source to resources/mmar/MMAR-meta.jsonl"):
        validate_config(config(source="resources/mmar/MMAR-meta.json", fetch="mmar"))
    with pytest.raises(ConfigError, match="is an mmau benchmark, not kind 'mmar'"):
        validate_config(config(source="r/mmau-test-mini.json", fetch="mmau-test-mini", kind="mmar"))
    with pytest.raises(ConfigError, match="fetch"):
        validate_config(config(source="r/mmau-test-mini.json", fetch="mmau-test"))
    with pytest.raises(ConfigError, match="fetch_sha256"):
        validate_config(config(source="r/mmau-test-mini.json", fetch="mmau-test-mini", fetch_sha256="abc"))


def test_the_workflow_plans_the_fetch_jobs_and_downloads_nothing(tmp_path):
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parent.parent
    config = yaml.safe_load((root / "config/config.yaml").read_text())
    config["audio_benchmarks"] = [
        {"name": "mmau", "source": "resources/mmau/mmau-test-mini.json", "fetch": "mmau-test-mini"},
        {"name": "mmar", "source": "resources/mmar/MMAR-meta.jsonl", "fetch": "mmar", "fetch_revision": "main"},
    ]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(root / "Snakefile"),
         "--configfile", str(tmp_path / "config.yaml"), "--directory", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    plan = result.stdout + result.stderr
    assert "fetch-benchmark --name mmau-test-mini --out-dir resources/mmau >" in plan
    assert "fetch-benchmark --name mmar --out-dir resources/mmar --revision main >" in plan
    # The benchmark's jobs wait for the fetch: its outputs are their inputs.
    assert "output: resources/mmar/MMAR-meta.jsonl, resources/mmar/audio" in plan
    assert "input: resources/mmar/MMAR-meta.jsonl, resources/mmar/audio" in plan
    assert not (tmp_path / "resources").exists()


def test_the_real_releases_pin_the_published_metadata_and_its_clip_layout():
    from akb.data.bank import read_records
    from akb.data.fetch import RELEASES, clip_targets
    from akb.io import sha256_file

    mmau = RELEASES["mmau-test-mini"]
    published = Path(__file__).parent / "data/mmau/mmau-test-mini.json"  # the MMAU repository's file
    assert sha256_file(published) == mmau.metadata.sha256
    targets = clip_targets(read_records(str(published)), mmau.kind, mmau.audio_dir, str(published))
    assert len(targets) == 1000 and all(t.startswith("test-mini-audios/") for t in targets.values())

    mmar = RELEASES["mmar"]
    reference = Path("/work/shared/benchmarks/MMAR-meta.jsonl")  # not redistributable: only where present
    if reference.is_file():
        assert sha256_file(reference) == mmar.metadata.sha256
        assert len(clip_targets(read_records(str(reference)), mmar.kind, mmar.audio_dir, "MMAR")) == 1000
