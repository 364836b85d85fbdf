"""Cross-check flags (other models, and the generator itself, answer each candidate) and the
report of every candidate: generated, rejected at parsing, removed by a check, flagged, kept."""

from __future__ import annotations

from collections import Counter
from typing import Any

ALL_OTHERS_WRONG = "all_others_wrong"  # every model other than the generator answered wrongly
GENERATOR_WRONG = "generator_wrong"  # the generator does not give its own answer
FLAGS = (ALL_OTHERS_WRONG, GENERATOR_WRONG)


def crosscheck_flags(record: dict, answers: dict[str, dict]) -> list[str]:
    """`answers`: model -> {"answer", "correct"} for this item."""
    generator = record["provenance"]["generator"]
    others = [a for m, a in answers.items() if m != generator]
    flags = []
    if others and not any(a["correct"] for a in others):
        flags.append(ALL_OTHERS_WRONG)
    if generator in answers and not answers[generator]["correct"]:
        flags.append(GENERATOR_WRONG)
    return flags


def apply_crosscheck(
    records: list[dict], predictions: dict[str, list[dict]], drop: list[str]
) -> tuple[list[dict], list[dict]]:
    """Each record with `provenance.crosscheck` (model -> answer) and `provenance.flags`; records
    with a flag listed in `drop` are removed (and reported) instead of going to review."""
    by_model = {m: {row["id"]: row for row in rows} for m, rows in predictions.items()}
    for model, rows in by_model.items():
        missing = [r["id"] for r in records if r["id"] not in rows]
        if missing:
            raise ValueError(f"cross-check by {model}: no answer for {len(missing)} item(s), e.g. {missing[:3]}")
    kept, removed = [], []
    for record in records:
        answers = {m: {"answer": rows[record["id"]]["parsed_answer"], "correct": bool(rows[record["id"]]["correct"])}
                   for m, rows in by_model.items()}
        flags = crosscheck_flags(record, answers)
        checks = list(record["provenance"]["checks_passed"]) + (["crosscheck"] if predictions and not flags else [])
        record = {**record, "provenance": {**record["provenance"], "crosscheck": answers, "flags": flags,
                                           "checks_passed": checks}}
        dropped = [f for f in flags if f in drop]
        if dropped:
            removed.append({"candidate_id": record["provenance"]["candidate_id"],
                            "generator": record["provenance"]["generator"], "subcategory": record["subcategory"],
                            "question": record["question"], "check": "crosscheck",
                            "reason": f"flagged {', '.join(dropped)} (bankgen.crosscheck.drop)"})
        else:
            kept.append(record)
    return kept, removed


def build_report(
    candidates: dict[str, list[dict]], rejects: dict[str, list[dict]], removed: list[dict], kept: list[dict],
    predictions: dict[str, list[dict]],
) -> dict[str, Any]:
    """Counts per generator and subcategory, reasons, letters and cross-check accuracy."""
    per_generator = {}
    for g in candidates:
        per_generator[g] = {
            "requests": len({c["request"] for c in candidates[g]} | {r["request"] for r in rejects.get(g, [])}),
            "candidates": len(candidates[g]),
            "rejected_at_parsing": len(rejects.get(g, [])),
            "removed_by_checks": sum(r["generator"] == g for r in removed),
            "to_review": sum(k["provenance"]["generator"] == g for k in kept),
        }
    subcategories = sorted({c["subcategory"] for cs in candidates.values() for c in cs}
                           | {r["subcategory"] for rs in rejects.values() for r in rs})
    per_subcategory = {s: {"candidates": sum(c["subcategory"] == s for cs in candidates.values() for c in cs),
                           "to_review": sum(k["subcategory"] == s for k in kept)} for s in subcategories}
    all_rejects = [r for rs in rejects.values() for r in rs]
    return {
        "candidates": sum(len(c) for c in candidates.values()),
        "rejected_at_parsing": len(all_rejects),
        "removed": len(removed),
        "to_review": len(kept),
        "reject_reasons": dict(Counter(_reason_kind(r["reason"]) for r in all_rejects).most_common()),
        "removed_by_check": dict(Counter(r["check"] for r in removed).most_common()),
        "flags": dict(Counter(f for k in kept for f in k["provenance"].get("flags", [])).most_common()),
        "answer_letters_generated": dict(sorted(Counter(k["provenance"]["original_answer"] for k in kept).items())),
        "answer_letters_after_rebalancing": dict(sorted(Counter(k["answer"] for k in kept).items())),
        "crosscheck_accuracy": {m: round(100 * sum(bool(r["correct"]) for r in rows) / len(rows), 2) if rows else None
                                for m, rows in predictions.items()},
        "per_generator": per_generator,
        "per_subcategory": per_subcategory,
        "removed_items": removed,
    }


def _reason_kind(reason: str) -> str:
    """A reject reason without its item-specific details, for counting."""
    return reason.split(" (")[0].split(" [")[0]


def report_markdown(report: dict[str, Any]) -> str:
    lines = ["# Candidate questions: automatic checks", "",
             f"- candidates parsed: {report['candidates']}",
             f"- generations rejected at parsing: {report['rejected_at_parsing']}",
             f"- removed by checks: {report['removed']}",
             f"- sent to human review: {report['to_review']}", ""]

    def table(title, mapping, header):
        lines.extend([f"## {title}", "", f"| {header} | count |", "|---|---:|"])
        lines.extend(f"| {k} | {v} |" for k, v in mapping.items())
        lines.append("")

    table("Rejected at parsing, by reason", report["reject_reasons"], "reason")
    table("Removed, by check", report["removed_by_check"], "check")
    table("Cross-check flags (kept, shown to reviewers)", report["flags"], "flag")
    table("Answer letters as generated", report["answer_letters_generated"], "letter")
    table("Answer letters after rebalancing", report["answer_letters_after_rebalancing"], "letter")
    lines.extend(["## Cross-check accuracy", "", "| model | accuracy (%) |", "|---|---:|"])
    lines.extend(f"| {m} | {a} |" for m, a in report["crosscheck_accuracy"].items())
    lines.extend(["", "## Per generator", "",
                  "| generator | requests | candidates | rejected at parsing | removed | to review |",
                  "|---|---:|---:|---:|---:|---:|"])
    lines.extend(f"| {g} | {s['requests']} | {s['candidates']} | {s['rejected_at_parsing']} | "
                 f"{s['removed_by_checks']} | {s['to_review']} |" for g, s in report["per_generator"].items())
    lines.extend(["", "## Removed items", "", "| candidate | check | reason |", "|---|---|---|"])
    lines.extend(f"| {r['candidate_id']} | {r['check']} | {r['reason']} |" for r in report["removed_items"])
    return "\n".join(lines) + "\n"
