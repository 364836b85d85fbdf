"""One module per audio LLM backend, each registering itself with akb.audio_llms.register."""
