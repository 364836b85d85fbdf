"""The experiment's outputs: the dose-response figure, the tables and a generated summary that
states each slope, its interval and test, and the top dose against the control."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from akb.knowledge_dose.analysis import EVALUATIONS, GROUPS
from akb.io import atomic_path
from akb.tables import write_table

PLOTTED_GROUPS = {"train": ("-", "o"), "held_out": ("--", "s"), "other": (":", "^")}
TEST = ("paired bootstrap over items ({n} resamples; every resample draws the same items for every "
        "variant), two-sided, at the 95% level")


def dose_figure(accuracy: pd.DataFrame, out_stem: str | Path, backbone: str) -> None:
    """One panel per evaluation: accuracy against dose (seeds averaged, 95% intervals) for the
    trained, held-out and other families; the control corpus as hollow markers right of 100%."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [e for e in EVALUATIONS if e in set(accuracy["evaluation"])]
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.6), sharey=True, squeeze=False)
    for ax, evaluation in zip(axes[0], shown):
        rows = accuracy[accuracy["evaluation"] == evaluation]
        for group, (style, marker) in PLOTTED_GROUPS.items():
            part = rows[rows["group"] == group]
            if part.empty:
                continue
            doses = part[part["dose"] != "control"].groupby("dose")[["accuracy", "ci_low", "ci_high"]].mean()
            x = doses.index.astype(float)
            line = ax.errorbar(x, doses["accuracy"], yerr=[doses["accuracy"] - doses["ci_low"],
                               doses["ci_high"] - doses["accuracy"]], linestyle=style, marker=marker, capsize=3,
                               label=f"{GROUPS[group]} (n={int(part['n'].iloc[0])})")
            control = part[part["dose"] == "control"][["accuracy", "ci_low", "ci_high"]].mean()
            if not control.isna().any():
                ax.errorbar([118], [control["accuracy"]], yerr=[[control["accuracy"] - control["ci_low"]],
                            [control["ci_high"] - control["accuracy"]]], marker=marker, mfc="white", capsize=3,
                            color=line[0].get_color(), linestyle="none")
        ticks = sorted(float(d) for d in rows.loc[rows["dose"] != "control", "dose"].unique())
        ax.set_xticks([*ticks, 118], [*(f"{int(t)}%" for t in ticks), "control"])
        ax.set_title(EVALUATIONS[evaluation][0], fontsize=10)
        ax.set_xlabel("share of the training facts")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Knowledge dose: {backbone}", fontsize=11)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(f"{out_stem}.{ext}", dpi=150)
    plt.close(fig)


def _points(x: float) -> str:
    return f"{x:+.1f}"


def summary_text(effects: pd.DataFrame, backbone: str, n_resamples: int, doses: list[int], seeds: list[int]) -> str:
    """Markdown stating, per evaluation and family group, the slope and the top dose against the
    control, and whether each is distinguishable from zero by the test named."""
    top = max(doses)
    lines = [f"# Knowledge dose: {backbone}", "",
             f"Doses {', '.join(f'{d}%' for d in sorted(doses))} of the corpus's training facts; seeds {seeds}. "
             f"Slope: least-squares accuracy change per 100% of the facts, in percentage points, over the dose "
             f"levels (seeds averaged item by item). Control: the {top}% dose minus the variant trained on as many "
             f"non-auditory rows. Test: {TEST.format(n=n_resamples)}.", ""]
    for evaluation, (label, _) in EVALUATIONS.items():
        rows = effects[effects["evaluation"] == evaluation]
        if rows.empty:
            continue
        lines += [f"## {label}", ""]
        for _, r in rows.iterrows():
            verdict = "distinguishable from zero" if not r["slope_low"] <= 0 <= r["slope_high"] else "not distinguishable from zero"
            text = (f"- **{GROUPS[r['group']]}** (n = {r['n']}): {r[f'accuracy_dose{min(doses)}']:.1f}% at {min(doses)}% "
                    f"-> {r[f'accuracy_dose{top}']:.1f}% at {top}%; slope {_points(r['slope'])} points "
                    f"[{r['slope_low']:+.1f}, {r['slope_high']:+.1f}], p = {r['slope_p']:.3f}: {verdict}.")
            if "top_minus_control" in r and pd.notna(r.get("top_minus_control")):
                vs = "distinguishable" if not r["top_minus_control_low"] <= 0 <= r["top_minus_control_high"] else "not distinguishable"
                text += (f" Control {r['accuracy_control']:.1f}%; {top}% minus control {_points(r['top_minus_control'])} "
                         f"[{r['top_minus_control_low']:+.1f}, {r['top_minus_control_high']:+.1f}], "
                         f"p = {r['top_minus_control_p']:.3f}: {vs} from the control.")
            lines.append(text)
        lines.append("")
    lines += _verdict(effects)
    return "\n".join(lines) + "\n"


def _interval_above_zero(r: pd.Series, key: str) -> bool | None:
    """Whether the 95% interval of `key` lies wholly above zero; None when it was not computed."""
    low = r.get(f"{key}_low")
    return None if low is None or pd.isna(low) else bool(low > 0)


def _effect(effects: pd.DataFrame, evaluation: str, group: str = "train") -> pd.Series | None:
    rows = effects[(effects["evaluation"] == evaluation) & (effects["group"] == group)]
    return None if rows.empty else rows.iloc[0]


def _verdict(effects: pd.DataFrame) -> list[str]:
    """The claim's test in one paragraph: did the dose add knowledge the probe can see (the
    manipulation check), and does the audio LLM get better on the dosed families, beyond the control,
    as its backbone learns more of them? A flat audio LLM means something only if the probe moved."""
    audio = _effect(effects, "audio")
    if audio is None:
        return []
    rises = _interval_above_zero(audio, "slope")
    beyond_control = _interval_above_zero(audio, "top_minus_control")
    if rises and beyond_control:
        said = ("The audio LLM's accuracy on the trained families rises with the backbone's dose of facts, "
                "and beyond the control: at this scale, more auditory knowledge in the backbone made a better audio LLM.")
    elif rises:
        said = ("The audio LLM's accuracy on the trained families rises with dose, but not distinguishably beyond the "
                "control: the gain cannot be told from the effect of fine-tuning itself.")
    else:
        said = ("The audio LLM's accuracy on the trained families does not rise distinguishably with dose: at this "
                "scale, adding these facts to the backbone did not make a better audio LLM.")
    probe = _effect(effects, "probe")
    if probe is not None and not _interval_above_zero(probe, "slope"):
        slope = f"slope {_points(probe['slope'])} points [{probe['slope_low']:+.1f}, {probe['slope_high']:+.1f}]"
        if rises:
            said += (f" But the dose did not raise the backbone's own probe accuracy on the trained subcategories "
                     f"({slope}): whatever the audio LLM gained did not come as knowledge the probe can see.")
        else:
            said += (f" Nor did the dose raise the backbone's own probe accuracy on the trained subcategories "
                     f"({slope}): the training did not measurably add the knowledge the probe asks about, so this "
                     "run does not test the claim; a flat audio LLM here is not evidence against it.")
    elif probe is not None and not rises:
        said += (" The dose did raise the backbone's probe accuracy on the trained subcategories, so the knowledge "
                 "arrived and the audio LLM did not profit from it: evidence against the claim at this scale.")
    return ["## Verdict", "", said, ""]


def write_outputs(accuracy: pd.DataFrame, effects: pd.DataFrame, per_family: pd.DataFrame, out_dir: str | Path,
                  backbone: str, n_resamples: int, doses: list[int], seeds: list[int]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(accuracy, out / "accuracy", formats=("csv", "md"))
    write_table(effects, out / "effects", "%.3f", formats=("csv", "md"))
    write_table(per_family, out / "families", formats=("csv",))
    dose_figure(accuracy, out / "dose_response", backbone)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(summary_text(effects, backbone, n_resamples, doses, seeds), encoding="utf-8")
