"""Whisper transcripts of clips, computed once and shared by every backbone (DeSTA2.5 puts them
after the audio vectors).

A transcript depends only on the Whisper checkpoint and the audio it hears (the clip, or the piece
of it a diagnostic condition keeps), never on the backbone, so the workflow writes one file for the
training clips and one per (benchmark, condition), and `akb train` / `akb evaluate` read them.
The file has one row per clip id, {"id", "transcript"}, in input order; a clip the condition cannot
use (too short to cut, unreadable) gets {"id", "transcript": null, "error"} instead, the same error
`akb evaluate` records for its item. Rows are appended batch by batch to a partial file, so an
interrupted job (a 48 h limit on hundreds of hours of audio) resumes where it stopped, and the
final file only appears once every clip has its row.

Two DeSTA2.5 details are options: training clips whose seed row carries the dataset's own
transcript keep it ({"id", "transcript", "source": "seeds"}) and only the others go to Whisper;
and a voice-activity detector may gate Whisper, so a clip in which it finds no speech gets ""
({"id", "transcript": "", "speech": false}) instead of what Whisper imagines in music or noise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from akb.audio import AudioError, audio_duration, load_audio
from akb.diagnostics.conditions import BACKBONE, FULL, MIN_FRAGMENT_SAMPLES, NONE, condition_audio
from akb.io import PartialJsonl, digest, read_jsonl
from akb.probe.run import length_sorted_batches

log = logging.getLogger(__name__)

# Clips are ordered by length within fixed windows of the input (not over the whole set, whose
# lengths would all have to be read before the first batch), so batches hold clips of similar
# length and a resumed run redoes exactly the batches an uninterrupted one would.
SORT_WINDOW_BATCHES = 32


def _duration(path: str) -> float:
    try:
        return audio_duration(path)
    except AudioError:
        return 0.0  # loading it fails the same way and is recorded as that clip's error


def write_transcripts(asr, audio_of: dict[str, str], out_path: str | Path, batch_size: int = 16,
                      condition: str = FULL, min_samples: int = MIN_FRAGMENT_SAMPLES,
                      given: dict[str, str] | None = None,
                      has_speech: Callable[[np.ndarray], bool] | None = None, asr_name: str | None = None) -> None:
    """Transcribe the clip of every id in `audio_of` (id -> audio file) under `condition` with `asr`
    (a WhisperCaptioner) into `out_path`, resuming from its partial file. Ids sharing a file are
    transcribed once; batches are sorted by length, longest first.

    given: id -> transcript already known (a seed row's own text, DeSTA2.5's first choice): written
    as is, without loading the clip; only for the whole clip (condition `full`).
    has_speech: a voice-activity test (see akb.lalm.vad); a clip it finds no speech in gets "" and
    never reaches Whisper, as DeSTA2.5 runs Whisper only where its VAD finds speech.
    asr_name: the Whisper checkpoint, for the partial file's fingerprint (akb.io.PartialJsonl)."""
    if condition in (NONE, BACKBONE):
        raise ValueError(f"condition {condition!r} has no audio: there is nothing to transcribe")
    given = {k: v for k, v in (given or {}).items() if k in audio_of}
    if given and condition != FULL:
        raise ValueError(f"given transcripts are of whole clips; condition {condition!r} hears part of one")
    partial = PartialJsonl(out_path, {"asr": asr_name, "condition": condition, "min_samples": min_samples,
                                      "vad": has_speech is not None, "audio": digest(audio_of), "given": digest(given)})
    partial.append({"id": k, "transcript": text, "source": "seeds"} for k, text in given.items()
                   if not partial.done(k))
    if given:
        log.info("%d of %d clips keep their seed transcript; Whisper hears the other %d",
                 len(given), len(audio_of), len(audio_of) - len(given))
    ids_of: dict[str, list[str]] = {}  # file -> ids that use it, files in first-seen order
    for key, path in audio_of.items():
        if key not in given:
            ids_of.setdefault(str(path), []).append(key)
    files = list(ids_of)
    done = sum(all(partial.done(i) for i in ids_of[f]) for f in files)
    window = batch_size * SORT_WINDOW_BATCHES
    silent = 0
    with tqdm(total=len(files), initial=done, desc=f"transcribe ({condition})", unit="clip") as bar:
        for start in range(0, len(files), window):
            chunk = files[start : start + window]
            if all(partial.done(i) for f in chunk for i in ids_of[f]):
                continue
            for batch in length_sorted_batches(chunk, [_duration(f) for f in chunk], batch_size):
                batch = [chunk[b] for b in batch]
                if all(partial.done(i) for f in batch for i in ids_of[f]):
                    continue
                audios, rows = {}, {}  # rows: file -> its row's fields after the id
                for f in batch:
                    try:
                        audios[f] = condition_audio(load_audio(f), condition, min_samples=min_samples)
                    except ValueError as e:  # as `akb evaluate` records it: that item's error, never padded
                        rows[f] = {"transcript": None, "error": str(e)}
                if has_speech is not None:
                    for f in [f for f in audios if not has_speech(audios[f])]:
                        rows[f] = {"transcript": "", "speech": False}
                        del audios[f]
                        silent += 1
                texts = dict(zip(audios, asr.transcribe(list(audios.values())))) if audios else {}
                rows.update({f: {"transcript": text} for f, text in texts.items()})
                new = sum(not all(partial.done(i) for i in ids_of[f]) for f in batch)
                partial.append({"id": i, **rows[f]} for f in batch for i in ids_of[f])
                bar.update(new)
    if has_speech is not None:
        log.info("voice activity: no speech in %d clips heard this run (no transcript for them)", silent)
    failed = [r["id"] for r in partial.rows.values() if r.get("error")]
    if failed:
        log.warning("%d of %d clips have no transcript under condition %s (their items are errors in "
                    "`akb evaluate`), e.g. %s", len(failed), len(audio_of), condition, failed[:3])
    partial.publish(list(audio_of))


def read_transcripts(path: str | Path, ids: Iterable[str]) -> dict[str, str]:
    """id -> transcript for `ids`, from a file `write_transcripts` wrote; a missing id (or one
    recorded without a transcript) is an error naming the file and the clip."""
    rows = {row["id"]: row for row in read_jsonl(path)}
    transcripts = {}
    for key in ids:
        row = rows.get(key)
        if row is None or row.get("transcript") is None:
            why = f" ({row['error']})" if row and row.get("error") else ""
            raise ValueError(f"{path}: no transcript for clip {key!r}{why}; the file was written for "
                             "other clips (rerun `akb transcribe` on these)")
        transcripts[key] = row["transcript"]
    return transcripts


def transcripts_for(path: str | Path | None, use_transcript: bool, ids: Iterable[str]) -> dict[str, str] | None:
    """The transcripts `akb transcribe` wrote for `ids`, or None when the recipe reads none
    (grounded.use_transcript off)."""
    ids = list(ids)
    if not use_transcript:
        return None
    if ids and path is None:
        raise ValueError("grounded.use_transcript is on: pass --transcripts (written by `akb transcribe`)")
    return read_transcripts(path, ids) if ids else {}


def training_clips(seeds_path: str | Path, audio_root: str | None, keep_seed_transcripts: bool
                   ) -> tuple[dict[str, str], dict[str, str] | None]:
    """(clip id -> audio path, clip id -> the seed row's own transcript or None) of the training
    clips `akb distill` reads; a seed row's own transcript (the dataset's text) is kept only when
    asked, and Whisper hears the rest."""
    from akb.lalm.distill import read_seeds

    seeds = read_seeds(seeds_path, audio_root, item_questions=False)
    given = {s.clip_id: s.transcript for s in seeds if s.transcript is not None} if keep_seed_transcripts else None
    return {s.clip_id: s.audio for s in seeds}, given


def transcribe_clips(whisper: str, audio_of: dict[str, str], out_path: str | Path, batch_size: int = 16,
                     condition: str = FULL, min_fragment_samples: int = MIN_FRAGMENT_SAMPLES,
                     given: dict[str, str] | None = None, vad: bool = False) -> None:
    """`write_transcripts` with the Whisper checkpoint `whisper`, gated by Silero voice activity
    when `vad` (DeSTA2.5: no transcript for a clip without speech)."""
    from akb.captioners.whisper import WhisperCaptioner

    has_speech = None
    if vad:
        from akb.lalm.vad import SpeechDetector

        has_speech = SpeechDetector()
    write_transcripts(WhisperCaptioner.from_pretrained(whisper), audio_of, out_path, batch_size, condition,
                      min_fragment_samples, given=given, has_speech=has_speech, asr_name=whisper)
