"""The AKB paper's published numbers (copies in workflow/data/paper/) as tidy frames.

They let the workflow redraw Figures 2 and 3 from the published tables and set its own results
beside them. Missing numbers are NaN, never 0, so statistics drop them instead of using them."""

from __future__ import annotations

import re

import pandas as pd

from akb import DATA_DIR

PAPER_DIR = DATA_DIR / "paper"

# Figure 2's metric names; "Text" is probing or the cascade, "Audio" the fine-tuned audio LLMs.
METRICS = ["AKB-2000 (Text)", "MMAU (Text)", "MMAR (Text)", "MMAU (Audio)", "MMAR (Audio)"]
BENCHMARKS = ["MMAU", "MMAR"]
DOMAINS = ["sound", "music", "speech"]

# Pearson r per domain printed in the legends of the published Figure 3.
FIG3_PUBLISHED_R = {
    ("MMAU", "sound"): 0.44, ("MMAU", "music"): 0.50, ("MMAU", "speech"): 0.81,
    ("MMAR", "sound"): 0.25, ("MMAR", "music"): 0.26, ("MMAR", "speech"): 0.82,
}

GROUNDED_SOURCE = "digitised (±0.3)"


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / name)


def _cascade_on_gemini_captions() -> pd.DataFrame:
    """Table 2's main setting, one row per LLM. The captioner-comparison rows are left out: they
    repeat Gemini-2.5-Pro with other captioners and would give it several values."""
    table = _read("cascade_table2.csv")
    return table[table["group"].isin(["proprietary", "open"])].set_index("llm")


def paper_metrics() -> pd.DataFrame:
    """Figure 2's five metrics for the paper's 17 LLMs (index `model`, Table 1 order); the Audio
    metrics exist only for the 8 fine-tuned backbones and are NaN for the others."""
    probing = _read("akb2000_table1.csv").set_index("model")
    cascade = _cascade_on_gemini_captions()
    grounded = _read("grounded_table3.csv")
    grounded = grounded[grounded["group"] == "finetuned"].set_index("model")
    frame = pd.DataFrame({
        "AKB-2000 (Text)": probing["avg"],
        "MMAU (Text)": cascade["mmau_avg"],
        "MMAR (Text)": cascade["mmar_avg"],
        "MMAU (Audio)": grounded["mmau_audio"],
        "MMAR (Audio)": grounded["mmar_audio"],
    }).reindex(probing.index)
    frame.index.name = "model"
    return frame.astype(float)


def paper_domain_points() -> pd.DataFrame:
    """Figure 3's points in long form: one row per (model, benchmark, domain) for the 8 fine-tuned
    models, with cascade accuracy (x, Table 2) and audio-grounded accuracy (y, digitised figure)."""
    cascade = _cascade_on_gemini_captions()
    grounded = _read("grounded_by_domain_fig3_digitized.csv").set_index("model")
    rows = [
        {"model": model, "benchmark": benchmark, "domain": domain,
         "cascade": float(cascade.loc[model, f"{benchmark.lower()}_{domain}"]),
         "grounded": float(grounded.loc[model, f"{benchmark.lower()}_{domain}"]),
         "grounded_source": GROUNDED_SOURCE}
        for benchmark in BENCHMARKS for domain in DOMAINS for model in grounded.index
    ]
    return pd.DataFrame(rows)


def published_domain_r() -> pd.DataFrame:
    """The per-domain r printed in the published Figure 3 (columns benchmark, domain, r_published)."""
    return pd.DataFrame([{"benchmark": b, "domain": d, "r_published": r} for (b, d), r in FIG3_PUBLISHED_R.items()])


# Short names keep point labels in a 3.5-inch scatter legible; only the most frequent long family
# names are abbreviated so the labels stay recognisable.
_FAMILY_ABBREVIATIONS = {"Qwen": "Q", "Llama": "L"}


def short_label(model: str) -> str:
    """Compact plot label: "Qwen3-14B" -> "Q3-14B", "Phi-4-mini-4B" -> "Phi4-mini",
    "Llama-3.1-8B" -> "L3.1-8B", "OLMo-3-7B" -> "OLMo3-7B".

    Joins the family to its version, abbreviates long family names, drops a parameter count that a
    size word (mini, small, ...) already implies, and drops chat/instruct suffixes."""
    label = re.sub(r"[-_ ](instruct|chat|it)$", "", model, flags=re.IGNORECASE)
    label = re.sub(r"^([A-Za-z]+)-(\d)", r"\1\2", label)
    label = re.sub(r"-(mini|small|tiny|nano|micro)-\d+(\.\d+)?[BM]\b", r"-\1", label, flags=re.IGNORECASE)
    family = re.match(r"[A-Za-z]+", label)
    if family and family.group() in _FAMILY_ABBREVIATIONS:
        label = _FAMILY_ABBREVIATIONS[family.group()] + label[family.end():]
    return label
