"""Stage 4: text prior and audio reliance: running the audio conditions (conditions) apart from analysing them (analysis)."""
