"""Benchmark items: one normalised multiple-choice item type and the loaders that produce it."""

from akb.data.items import LETTERS, MCQItem

__all__ = ["LETTERS", "MCQItem"]
