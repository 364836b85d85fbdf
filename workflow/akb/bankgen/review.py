"""The human verification round-trip: a review sheet out (CSV and a self-contained HTML page), the
reviewer's decisions back in, merged into a verified bank with provenance per item.

Decisions (what the HTML page saves; a filled-in CSV sheet works too):

    {"format": "akb-review-decisions/1", "sheet": "<sheet id>", "reviewer": "...", "saved_at": "...",
     "decisions": {"<item id>": {"decision": "accept" | "reject" | "edit", "notes": "...",
                                 "edited": {"question", "options", "answer", "rationale"}}}}

The sheet id is a hash of the items as reviewed, so decisions made on another version of the
candidates are refused instead of being applied to the wrong text."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from akb import DATA_DIR
from akb.bankgen.parse import CandidateError, to_candidate
from akb.data.items import LETTERS
from akb.io import atomic_path

HTML_TEMPLATE = DATA_DIR / "bankgen" / "review.html"
DATA_MARK = "__REVIEW_DATA__"
DECISIONS_FORMAT = "akb-review-decisions/1"
DECISIONS = ("accept", "reject", "edit")
EDITABLE = ("question", "options", "answer", "rationale")
CSV_FIELDS = ["id", "category", "subcategory", "generator", "flags", "crosscheck", "question",
              *(f"option_{k}" for k in LETTERS[:4]), "answer", "rationale", "decision", "notes"]


def sheet_id(records: list[dict]) -> str:
    content = [[r["id"], r["question"], r["options"], r["answer"], r.get("rationale", "")] for r in records]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()[:16]


def _crosscheck_text(record: dict) -> str:
    answers = record.get("provenance", {}).get("crosscheck", {})
    return "; ".join(f"{m}: {a['answer'] or '?'}{'' if a['correct'] else ' (wrong)'}" for m, a in answers.items())


def write_review_csv(records: list[dict], path: str | Path) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in records:
            writer.writerow({
                "id": r["id"], "category": r["category"], "subcategory": r["subcategory"],
                "generator": r["provenance"]["generator"], "flags": " ".join(r["provenance"].get("flags", [])),
                "crosscheck": _crosscheck_text(r), "question": r["question"],
                **{f"option_{k}": o for k, o in zip(LETTERS, r["options"])}, "answer": r["answer"],
                "rationale": r.get("rationale", ""), "decision": "", "notes": "",
            })  # fmt: skip


def write_review_html(records: list[dict], path: str | Path, title: str) -> None:
    """One HTML file with its script, style and the items inline: opens offline in any browser."""
    data = {"sheet": sheet_id(records), "title": title, "format": DECISIONS_FORMAT, "items": [
        {"id": r["id"], "category": r["category"], "subcategory": r["subcategory"], "question": r["question"],
         "options": r["options"], "answer": r["answer"], "rationale": r.get("rationale", ""),
         "generator": r["provenance"]["generator"], "flags": r["provenance"].get("flags", []),
         "crosscheck": r["provenance"].get("crosscheck", {}),
         "nearest_bank_item": r["provenance"].get("nearest_bank_item"),
         "bank_similarity": r["provenance"].get("bank_similarity")} for r in records]}
    # Inside <script>, "</" could end the element early: JSON allows escaping it.
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    template = HTML_TEMPLATE.read_text(encoding="utf-8")
    if template.count(DATA_MARK) != 1:
        raise ValueError(f"{HTML_TEMPLATE}: expected one {DATA_MARK} placeholder")
    with atomic_path(path) as tmp:
        tmp.write_text(template.replace(DATA_MARK, payload).replace("__TITLE__", _html_escape(title)),
                       encoding="utf-8")


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def read_decisions(path: str | Path, records: list[dict]) -> dict[str, Any]:
    """Decisions from the HTML page's JSON or from a filled-in review CSV, checked against the
    items reviewed; in both cases {"reviewer", "decisions": {id: {decision, notes, edited?}}}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: decisions file not found")
    if path.suffix.lower() == ".csv":
        return _decisions_from_csv(path, records)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict) or data.get("format") != DECISIONS_FORMAT:
        raise ValueError(f"{path}: not a decisions file (format {DECISIONS_FORMAT!r} expected)")
    if data.get("sheet") != sheet_id(records):
        raise ValueError(f"{path}: decisions were made on review sheet {data.get('sheet')!r}, but the candidates "
                         f"now form sheet {sheet_id(records)!r}; review the current sheet")
    decisions = data.get("decisions")
    if not isinstance(decisions, dict):
        raise ValueError(f"{path}: 'decisions' must be an object keyed by item id")
    return {"reviewer": str(data.get("reviewer") or ""), "saved_at": data.get("saved_at"), "decisions": decisions}


def _decisions_from_csv(path: Path, records: list[dict]) -> dict[str, Any]:
    by_id = {r["id"]: r for r in records}
    decisions = {}
    with path.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), 2):
            if row.get("id") not in by_id:
                raise ValueError(f"{path}, line {line}: unknown item id {row.get('id')!r}")
            decision = (row.get("decision") or "").strip().lower()
            if not decision:
                continue
            record = by_id[row["id"]]
            content = {"question": row["question"], "options": [row[f"option_{k}"] for k in LETTERS[:4]],
                       "answer": row["answer"], "rationale": row["rationale"]}
            entry = {"decision": decision, "notes": row.get("notes", "")}
            if decision != "reject" and any(content[k] != record.get(k, "") for k in EDITABLE):
                entry |= {"decision": "edit", "edited": content}
            decisions[row["id"]] = entry
    return {"reviewer": "", "saved_at": None, "decisions": decisions}


def apply_decisions(records: list[dict], decided: dict[str, Any], source: str) -> tuple[list[dict], dict]:
    """The verified bank (accepted and edited items, with `provenance.review`) and a summary.
    Unknown ids, unknown decisions and edits that break the format stop with the item named."""
    decisions = decided["decisions"]
    by_id = {r["id"]: r for r in records}
    unknown = [i for i in decisions if i not in by_id]
    if unknown:
        raise ValueError(f"{source}: decisions for unknown item(s) {unknown[:5]}")
    verified, counts = [], dict.fromkeys((*DECISIONS, "undecided"), 0)
    for record in records:
        entry = decisions.get(record["id"])
        if entry is None or not entry.get("decision"):
            counts["undecided"] += 1
            continue
        decision = entry["decision"]
        if decision not in DECISIONS:
            raise ValueError(f"{source}: item {record['id']}: decision {decision!r} is not one of {DECISIONS}")
        counts[decision] += 1
        if decision == "reject":
            continue
        content = {k: record.get(k) for k in EDITABLE}
        edited_fields = []
        if decision == "edit":
            edited = entry.get("edited") or {}
            try:
                content = to_candidate({**content, **{k: edited[k] for k in EDITABLE if k in edited}})
            except CandidateError as e:
                raise ValueError(f"{source}: item {record['id']}: edited item is not valid: {e}") from None
            edited_fields = [k for k in EDITABLE if content[k] != record.get(k)]
        review = {"decision": decision, "notes": str(entry.get("notes") or ""), "reviewer": decided["reviewer"],
                  "saved_at": decided.get("saved_at"), "edited_fields": edited_fields}
        if edited_fields:
            review["original"] = {k: record.get(k) for k in edited_fields}
        verified.append({**record, **content, "provenance": {**record["provenance"], "review": review}})
    return verified, counts
