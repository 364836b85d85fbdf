"""The knowledge-dose experiment (docs/knowledge-dose.md): one backbone given more auditory knowledge
by LoRA training on a corpus of facts, and what that changes in its probe, cascade and audio LLM."""
