"""Shared helpers of the bankgen tests: reviewed-sheet records and a scripted generator model."""

from __future__ import annotations

import json

from akb.models.base import Continuation, LanguageModel, ModelSpec


def record(ident, question, options, answer, generator="gen-a", subcategory="tempo_dynamics", category="Music",
           flags=()):
    """A candidate as the review sheet holds it (what `bankgen-report` writes)."""
    return {"id": ident, "category": category, "subcategory": subcategory, "question": question,
            "options": list(options), "answer": answer, "rationale": f"Because {options['ABCD'.index(answer)]}.",
            "provenance": {"generator": generator, "prompt_version": "v1", "request": f"{generator}/{subcategory}/r0",
                           "candidate_id": f"{generator}/{subcategory}/{ident}", "original_answer": "A",
                           "option_order": [0, 1, 2, 3], "checks_passed": ["format", "near_duplicate"],
                           "flags": list(flags), "crosscheck": {}}}


def review_records() -> list[dict]:
    """Five candidates; once the second is rejected and the third edited (answer C), the four left
    pass `akb validate-bank` without a warning: letters A-D once each, the answer strictly the
    longest option in one item and strictly the shortest in one."""
    return [
        record("gen-1", "Which Italian marking asks for a gradual increase in loudness?",
               ["crescendo, growing louder", "diminuendo", "ritardando", "fermata"], "A"),
        record("gen-2", "Which marking is rejected in review?", ["one", "two", "three", "four"], "C",
               flags=["generator_wrong"]),
        record("gen-3", "What does the marking 'pianissimo' ask for?",
               ["very loudly", "very softly", "moderately", "suddenly"], "B", subcategory="tempo_dynamics"),
        record("gen-4", "What does 'accelerando' ask a performer to do?",
               ["slow down gradually", "speed up", "hold the note longer", "play more softly"], "B"),
        record("gen-5", "Which noise colour has equal power per octave?",
               ["white noise", "brown noise", "blue noise", "pink noise"], "D", subcategory="noise_types",
               category="Audio Quality"),
    ]


class ScriptedModel(LanguageModel):
    """A generator whose reply to a prompt is `reply(prompt)`; counts the prompts it was asked."""

    def __init__(self, reply, name="scripted"):
        self.spec = ModelSpec.from_config({"name": name, "backend": "tiny", "source": "llama"})
        self.reply = reply
        self.asked: list[str] = []

    def prompt(self, user_text: str) -> str:
        return f"<user>{user_text}</user>"

    def continuation(self, text: str) -> str:
        return " " + text

    def token_length(self, text: str) -> int:
        return len(text.split())

    def loglikelihood(self, requests):
        return [Continuation(-1.0, 1, 1) for _ in requests]

    def generate(self, prompts, max_new_tokens):
        self.asked += prompts
        return [self.reply(p) for p in prompts]


def question_line(question, options, answer, rationale="A short reason."):
    return json.dumps({"question": question, "options": options, "answer": answer, "rationale": rationale})
