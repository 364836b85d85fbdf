"""Stage 1: text LLMs answer the question bank (answer loop, prompts, shards)."""
