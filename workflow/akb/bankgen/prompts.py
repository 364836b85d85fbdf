"""Versioned prompt files for question generation and the requests built from them."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path


from akb import DATA_DIR
from akb.bankgen.taxonomy import Subcategory
from akb.data.items import MCQItem
from akb.io import read_yaml

PROMPT_DIR = DATA_DIR / "bankgen" / "prompts"
FIELDS = ("n", "category", "subcategory", "subcategory_id", "scope", "focus", "examples")


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    request: str
    prefill: str
    system: str | None = None
    path: str = ""


def resolve_prompt(name: str) -> Path:
    """A version shipped in workflow/data/bankgen/prompts/ (e.g. `v1`) or a path to a YAML file."""
    shipped = PROMPT_DIR / f"{name}.yaml"
    return shipped if shipped.is_file() else Path(name)


def load_prompt(name: str) -> PromptTemplate:
    path = resolve_prompt(name)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no prompt file (neither {PROMPT_DIR}/{name}.yaml nor a file)")
    data = read_yaml(path)
    for key in ("version", "request"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValueError(f"{path}: missing or empty {key!r}")
    try:
        data["request"].format(**dict.fromkeys(FIELDS, ""))
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"{path}: request template uses an unknown field or bad braces ({e}); "
                         f"known fields: {', '.join(FIELDS)}") from None
    return PromptTemplate(str(data["version"]), data["request"], data.get("prefill") or "", data.get("system"),
                          str(path))


@dataclass(frozen=True)
class Request:
    """One call to a generator: `n` questions for one subcategory, with one focus."""

    generator: str
    subcategory: Subcategory
    index: int  # 0-based request number within the subcategory
    n: int
    focus: str
    text: str  # the user message
    prompt_version: str

    @property
    def key(self) -> str:
        return f"{self.generator}/{self.subcategory.id}/{self.prompt_version}-n{self.n}-r{self.index}"


def example_line(item: MCQItem) -> str:
    return json.dumps({"question": item.question, "options": list(item.choices), "answer": item.answer_letter,
                       "rationale": str(item.extra.get("rationale", ""))}, ensure_ascii=False)


def build_requests(
    generator: str,
    subcategories: list[Subcategory],
    template: PromptTemplate,
    n_per_subcategory: int,
    per_request: int | None,
    examples: list[MCQItem],
    n_examples: int,
    seed: int,
) -> list[Request]:
    """ceil(n / per_request) requests per subcategory (all n in one request when per_request is None);
    request r focuses on the r-th aspect of the scope (the whole scope for a single request) and shows
    `n_examples` items of the existing bank from other subcategories, chosen by a seeded draw."""
    per = per_request or n_per_subcategory
    requests = []
    for sub in subcategories:
        n_requests = math.ceil(n_per_subcategory / per)
        others = [it for it in examples if it.subcategory != sub.id]
        for r in range(n_requests):
            n = min(per, n_per_subcategory - r * per)
            focus = sub.scope if n_requests == 1 else sub.aspects[r % len(sub.aspects)]
            shown = random.Random(f"{seed}/{sub.id}/{r}").sample(others, min(n_examples, len(others)))
            text = template.request.format(
                n=n, category=sub.category, subcategory=sub.name, subcategory_id=sub.id, scope=sub.scope,
                focus=focus, examples="\n".join(example_line(it) for it in shown),
            )
            requests.append(Request(generator, sub, r, n, focus, text.strip(), template.version))
    return requests
