"""An LLM judge for answers the rules cannot read, as "All That Glitters Is Not Audio" scores.

Each prediction is first read by the rules (`akb.scoring.answers.extract_choice`: a letter, or the text of
exactly one option). Only outputs the rules cannot read are sent to the judge, an `api` model entry
(the paper: Claude Haiku 4.5 at temperature 0), with a versioned prompt
(workflow/data/judge/prompts/<version>.txt) that shows the question, the lettered options and the
response, never the correct answer, and asks for one line, `Selected: <letter>` or
`Selected: NONE` (no option, several, hedged, refused). The reply is read strictly: anything else
is asked again (the reply and the prompt's retry note added to the conversation), at most `retries`
times, then counted unparseable. NONE and unparseable score as wrong.

Requests go through `akb.models.api.ChatClient`: cached by content (a rerun sends nothing), retried
with backoff. The judged rows are written through `akb.io.PartialJsonl`, batch by batch, with a
fingerprint of the judge, the prompt and the predictions, so a killed run resumes.

`score_judged` scores the items by the letters (rules' or judge's) and reports how far that agrees
with the official string-match scoring (akb.data.audio_bench) of the same predictions.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from akb import DATA_DIR
from akb.scoring.audio import grade_predictions, outputs_by_id, summarise_graded
from akb.data.items import MCQItem
from akb.io import PartialJsonl, digest
from akb.models.api import CACHE_ROOT, APISettings, ChatClient, ChatRequest
from akb.models.base import ModelSpec
from akb.scoring.answers import extract_choice, strip_reasoning

log = logging.getLogger(__name__)

PROMPT_DIR = DATA_DIR / "judge" / "prompts"
DEFAULT_PROMPT_VERSION = "v1"
RETRY_MARKER = "---- retry ----"  # separates a prompt file's request from its note for a malformed reply
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
JUDGE_CACHE_ROOT = CACHE_ROOT / "judge"  # apart from the text models' resources/api_cache/<model>
DEFAULT_MAX_NEW_TOKENS = 16  # "Selected: NONE" is a few tokens; room for a stray space or newline
DEFAULT_RETRIES = 2
DEFAULT_BATCH_SIZE = 64  # requests per step of the partial file (sent max_concurrency at a time)
# The whole reply, nothing around it but whitespace: "Selected: B" or "Selected: NONE".
SELECTED = re.compile(r"\s*Selected:[ \t]*([A-Z]|NONE)\s*")


@dataclass(frozen=True)
class JudgePrompt:
    version: str
    request: str  # with {question}, {options}, {response} and {letters}
    retry: str  # with {letters}
    path: Path

    def render(self, item: MCQItem, response: str) -> str:
        options = "\n".join(f"{letter}: {choice}" for letter, choice in zip(item.letters, item.choices))
        return self.request.format(question=item.question, options=options, response=response,
                                   letters=", ".join(item.letters))

    def note(self, item: MCQItem) -> str:
        return self.retry.format(letters=", ".join(item.letters))


def load_judge_prompt(version: str = DEFAULT_PROMPT_VERSION) -> JudgePrompt:
    """A prompt shipped in workflow/data/judge/prompts/<version>.txt: the request, a line
    RETRY_MARKER, then the note sent after a reply in the wrong format."""
    if not VERSION_NAME.match(version):
        raise ValueError(f"judge prompt version {version!r} is not a version name such as v1")
    path = PROMPT_DIR / f"{version}.txt"
    if not path.is_file():
        shipped = sorted(p.stem for p in PROMPT_DIR.glob("*.txt"))
        raise FileNotFoundError(f"no judge prompt {version!r} ({path}); shipped versions: {shipped}")
    request, marker, retry = path.read_text(encoding="utf-8").partition(f"\n{RETRY_MARKER}\n")
    if not marker or not request.strip() or not retry.strip():
        raise ValueError(f"{path}: expected the request, a line {RETRY_MARKER!r}, then the retry note")
    for field in ("{question}", "{options}", "{response}"):
        if field not in request:
            raise ValueError(f"{path}: the request has no {field} field")
    return JudgePrompt(version, request.strip(), retry.strip(), path)


def parse_selection(reply: str, letters: str) -> tuple[str | None, str]:
    """(letter, "selected"), (None, "none") or (None, "unparseable"): only a reply that is exactly
    'Selected: <letter of this item>' or 'Selected: NONE' counts."""
    match = SELECTED.fullmatch(reply)
    if match is None:
        return None, "unparseable"
    if match[1] == "NONE":
        return None, "none"
    return (match[1], "selected") if match[1] in letters else (None, "unparseable")


class Judge:
    """An `api` model entry used as a judge (its cache: api.cache_dir, else resources/api_cache/judge/<name>)."""

    def __init__(self, entry: dict[str, Any], prompt: JudgePrompt, retries: int = DEFAULT_RETRIES):
        spec = ModelSpec.from_config(entry)
        if spec.backend != "api":
            raise ValueError(f"judge {spec.name}: backend must be 'api' (an OpenAI-compatible endpoint), "
                             f"not {spec.backend!r}")
        if retries < 0:
            raise ValueError(f"judge {spec.name}: retries must be at least 0, not {retries}")
        settings = APISettings.from_spec(spec)
        cache_dir = Path(settings.cache_dir) if settings.cache_dir else JUDGE_CACHE_ROOT / spec.name
        self.spec = spec
        self.client = ChatClient("judge", spec.name, settings, cache_dir)
        self.prompt = prompt
        self.retries = retries
        self.max_new_tokens = int(spec.extra.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)

    def fingerprint(self) -> dict[str, Any]:
        """What the judge's replies depend on: not where the cache lives, nor how fast it is asked."""
        s = self.client.settings
        return {"model": self.spec.source, "url": self.client.url, "temperature": s.temperature,
                "max_tokens_param": s.max_tokens_param, "extra_body": s.extra_body,
                "max_new_tokens": self.max_new_tokens, "retries": self.retries,
                "prompt_version": self.prompt.version, "prompt": digest([self.prompt.request, self.prompt.retry])}

    def select(self, asked: list[tuple[MCQItem, str]]) -> list[dict[str, Any]]:
        """For each (item, response): {letter, judge_status, judge_replies}, asking again (up to
        `retries` times) while the reply is in the wrong format."""
        conversations = [[{"role": "user", "content": self.prompt.render(item, response)}] for item, response in asked]
        results: list[dict[str, Any]] = [{"letter": None, "judge_status": "unparseable", "judge_replies": []}
                                         for _ in asked]
        pending = list(range(len(asked)))
        for attempt in range(self.retries + 1):
            if not pending:
                break
            replies = self.client.answer([self._request(asked[i][0], conversations[i], attempt) for i in pending])
            still = []
            for i, reply in zip(pending, replies):
                item = asked[i][0]
                letter, status = parse_selection(reply, item.letters)
                results[i] = {"letter": letter, "judge_status": status,
                              "judge_replies": [*results[i]["judge_replies"], reply]}
                if status == "unparseable":
                    conversations[i] = [*conversations[i], {"role": "assistant", "content": reply},
                                        {"role": "user", "content": self.prompt.note(item)}]
                    still.append(i)
            pending = still
        for i in pending:
            log.warning("judge %s: item %s: no 'Selected: ...' reply after %d attempt(s) (last: %r); counted "
                        "unparseable", self.spec.name, asked[i][0].id, self.retries + 1,
                        results[i]["judge_replies"][-1][:80])
        return results

    def _request(self, item: MCQItem, messages: list[dict[str, str]], attempt: int) -> ChatRequest:
        body = self.client.body(self.spec.source, messages, self.max_new_tokens)
        key = self.client.key(body)
        return ChatRequest(body, key, f"request {key[:12]} (item {item.id}, attempt {attempt + 1})")


def _sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()[:16]


def rule_row(item: MCQItem, output: str | None) -> dict[str, Any]:
    """The rules' reading of one output; rule_status "unparseable" (a non-empty output naming no
    single option) is what the judge is asked about."""
    row = {"id": item.id, "output_sha256": _sha(output), "letter": None, "source": "rules",
           "judge_status": None, "judge_replies": []}
    if output is None:
        return {**row, "rule_status": "missing"}
    if not strip_reasoning(output):
        return {**row, "rule_status": "empty"}  # nothing to judge: no request
    choice = extract_choice(output, item.choices, item.letters)
    letter = None if choice.index is None else item.letters[choice.index]
    return {**row, "rule_status": choice.status, "letter": letter}


def judge_predictions(items: list[MCQItem], rows: list[dict], judge: Judge, out_path: str | Path,
                      output_key: str = "raw_output", batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, int]:
    """One judged row per item in `out_path` (item order), resuming from its partial file; returns
    counts of how the items were read."""
    outputs = outputs_by_id(items, rows, output_key)
    fingerprint = {"judge": judge.fingerprint(), "output_key": output_key,
                   "items": digest([[it.id, it.question, list(it.choices)] for it in items]),
                   "predictions": digest({it.id: outputs.get(it.id) for it in items})}
    partial = PartialJsonl(out_path, fingerprint)
    todo = [rule_row(it, outputs.get(it.id)) for it in items if not partial.done(it.id)]
    partial.append(r for r in todo if r["rule_status"] != "unparseable")
    by_id = {it.id: it for it in items}
    asked = [r for r in todo if r["rule_status"] == "unparseable"]
    log.info("judge %s: %d of %d item(s) left to judge (%d already done)", judge.spec.name, len(asked),
             len(items), len(items) - len(todo))
    for start in range(0, len(asked), batch_size):
        batch = asked[start : start + batch_size]
        selections = judge.select([(by_id[r["id"]], strip_reasoning(outputs[r["id"]])) for r in batch])
        partial.append({**r, **s, "source": "judge"} for r, s in zip(batch, selections))
    counts = _counts(partial.rows.values())
    partial.publish([it.id for it in items])
    log.info("judge %s: %s; requests: %s", judge.spec.name, counts, judge.client.stats)
    return counts


def _counts(rows) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        name = r["rule_status"] if r["source"] == "rules" else f"judge_{r['judge_status']}"
        counts[name] = counts.get(name, 0) + 1
    return counts


def _judged_by_id(items: list[MCQItem], outputs: dict[str, str | None], judged: list[dict], where: str) -> dict:
    """The judged rows by id, checked to be exactly these items, judged from these predictions."""
    by_id = {str(r.get("id")): r for r in judged}
    ids = [it.id for it in items]
    missing = [i for i in ids if i not in by_id]
    unknown = sorted(set(by_id) - set(ids))
    if missing or unknown or len(by_id) != len(judged):
        raise ValueError(f"{where}: judged rows do not match the items: {len(missing)} missing {missing[:5]}, "
                         f"{len(unknown)} unknown {unknown[:5]}, {len(judged) - len(by_id)} repeated")
    stale = [i for i in ids if by_id[i].get("output_sha256") != _sha(outputs.get(i))]
    if stale:
        raise ValueError(f"{where}: {len(stale)} item(s) were judged from other outputs than these predictions, "
                         f"e.g. {stale[:5]}; run `akb judge` again on them")
    return by_id


def grade_judged(items: list[MCQItem], rows: list[dict], judged: list[dict], where: str = "judged rows",
                 output_key: str = "raw_output") -> list[dict]:
    """`grade_predictions`' rows with `correct` from the letters (rules', else the judge's; none:
    wrong), for every item in item order."""
    by_id = _judged_by_id(items, outputs_by_id(items, rows, output_key), judged, where)
    graded = []
    for it, string_row in zip(items, grade_predictions(items, rows, output_key)):
        row = by_id[it.id]
        letter = row.get("letter")
        status = "missing" if row["rule_status"] == "missing" else "unparseable" if letter is None else row["source"]
        # By text: an option listed twice (27 MMAU items) is right under either letter.
        correct = letter is not None and it.choices[it.letters.index(letter)] == it.answer
        graded.append({**string_row, "parse_status": status, "correct": correct})
    return graded


def score_judged(items: list[MCQItem], rows: list[dict], judged: list[dict], where: str = "judged rows",
                 output_key: str = "raw_output", n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> dict:
    """Accuracy from the letters (rules', else the judge's; none: wrong), as `score_audio_predictions`
    reports it, plus `agreement` with the official string match on the same predictions: n, both
    accuracies and the share of items scored differently."""
    by_id = _judged_by_id(items, outputs_by_id(items, rows, output_key), judged, where)
    official = grade_predictions(items, rows, output_key)
    graded = grade_judged(items, rows, judged, where, output_key)
    bootstrap = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    n = len(items)
    differ = sum(a["correct"] != b["correct"] for a, b in zip(graded, official))
    return {
        **summarise_graded(graded, **bootstrap),
        "scoring": "judge",
        "judge": _counts(by_id[it.id] for it in items),
        "agreement": {
            "n": n,
            "judge_accuracy": 100 * sum(r["correct"] for r in graded) / n,
            "string_match_accuracy": 100 * sum(r["correct"] for r in official) / n,
            "differ_share": 100 * differ / n,
        },
    }
