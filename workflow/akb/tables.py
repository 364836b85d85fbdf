"""Writing a table (a DataFrame) as CSV, Markdown and LaTeX, atomically: every stage that reports
numbers writes its tables through this one function."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from akb.io import atomic_path


def write_table(
    frame: pd.DataFrame, out_stem: Path, float_format: str = "%.2f", formats: tuple[str, ...] = ("csv", "md", "tex")
) -> None:
    """Write out_stem.csv, .md and .tex (or the given `formats`), each atomically. A named index
    (e.g. `model`) is written as the first column; an unnamed one is dropped. `float_format` is
    printf-style, as in pandas."""
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    if "csv" in formats:
        with atomic_path(f"{out_stem}.csv") as tmp:
            frame.to_csv(tmp, index=False, float_format=float_format)
    if "md" in formats:
        with atomic_path(f"{out_stem}.md") as tmp:
            # tabulate prints NaN as "nan"; None is what it treats as missing.
            cells = frame.astype(object).where(frame.notna(), None)
            markdown = cells.to_markdown(index=False, floatfmt=float_format.removeprefix("%"), missingval="--")
            tmp.write_text(markdown + "\n", encoding="utf-8")
    if "tex" in formats:
        with atomic_path(f"{out_stem}.tex") as tmp:
            # escape=True: column names such as ci_low would otherwise break LaTeX. Output uses
            # booktabs rules (\toprule, \midrule, \bottomrule).
            latex = frame.to_latex(index=False, float_format=lambda v: float_format % v, na_rep="--", escape=True)
            tmp.write_text(latex, encoding="utf-8")
