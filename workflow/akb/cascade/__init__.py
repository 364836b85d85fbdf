"""Stage 2: a captioner describes each clip; a text LLM answers the audio question from the caption."""
