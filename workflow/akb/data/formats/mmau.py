"""MMAU test-mini (the official JSON, github.com/Sakshi113/MMAU): the clip under `audio_id`, scores
per `task`, the official scorer reading `model_output`."""

from akb.data.formats import BenchmarkFormat, register

register("mmau", BenchmarkFormat(audio_key="audio_id", domain_key="task", prediction_key="model_output"))
