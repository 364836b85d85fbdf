"""Audio benchmark formats: the keys in which benchmark files differ, one module per format in this
package, each registering its `BenchmarkFormat` under the config's `audio_benchmarks[].kind` with
`register("kind", BenchmarkFormat(...))`. Every module here is imported on the first lookup of a kind,
so adding a format is adding one file. Loading and checking items: akb.data.audio_bench; grading by
the official rule: akb.scoring.audio."""

from __future__ import annotations

from dataclasses import dataclass

from akb.registry import Registry


@dataclass(frozen=True)
class BenchmarkFormat:
    """The keys in which the benchmarks' files differ."""

    audio_key: str  # the clip's path, relative to the benchmark file
    domain_key: str  # the top-level group of the official per-domain scores
    prediction_key: str  # where the official scoring script reads a model's answer
    subcategory_key: str = "sub-category"
    clip_list: bool = False  # the clip key holds a list of paths (MMAU-Pro)
    # (category, what it is) pairs its official scorer does not score as multiple choice; a format
    # with some also leaves out items with fewer than two choices, as that scorer does (MMAU-Pro).
    not_mcq: tuple[tuple[str, str], ...] = ()


FORMATS: Registry[BenchmarkFormat] = Registry("audio", "benchmark kind", "akb.data.formats")


def register(kind: str, fmt: BenchmarkFormat) -> BenchmarkFormat:
    """Make `fmt` the format of benchmark kind `kind` (a second format for a kind is an error)."""
    return FORMATS.add(kind, fmt)


def detect_kind(record: dict) -> str | None:
    """The kind whose clip key `record` holds (raw records and `item.extra` both hold it), the most
    telling key first: a list under a clip-list format's key (MMAU-Pro's `audio_path`), then a key
    only one format uses (MMAU's `audio_id`), then one formats share (MMAR's `audio_path`)."""

    def rank(kind_fmt: tuple[str, BenchmarkFormat]) -> tuple[bool, int]:
        fmt = kind_fmt[1]
        return not fmt.clip_list, sum(other.audio_key == fmt.audio_key for other in FORMATS.values())

    for kind, fmt in sorted(FORMATS.items(), key=rank):  # stable: ties in registration order
        if isinstance(record.get(fmt.audio_key), list) if fmt.clip_list else fmt.audio_key in record:
            return kind
    return None


__all__ = ["FORMATS", "BenchmarkFormat", "detect_kind", "register"]
