"""DeSTA2.5-style audio LLMs: a frozen Whisper encoder, a Q-Former connector and a frozen chat LLM.

config: the recipe (LALMConfig, default_taps); encoder: Whisper loading, window cutting, features;
connector: the Q-Former; processor: prompts, labels and batches for any chat template;
vad: Silero voice activity, which may gate the Whisper transcripts (akb.lalm.transcripts);
model: the LALM module, its training loss, greedy generation and trainable-only checkpoints;
distill, train, transcripts, evaluate: the jobs of the workflow (`akb distill`, `train`, `transcribe`,
`evaluate`). Importing the package itself loads nothing (the command line lists its commands
without torch); import the module you need."""
