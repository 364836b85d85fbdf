"""MMAR (github.com/ddlBoJack/MMAR): the clip under `audio_path`, scores per `modality`, the official
scorer reading `answer_prediction`."""

from akb.data.formats import BenchmarkFormat, register

register("mmar", BenchmarkFormat(audio_key="audio_path", domain_key="modality", prediction_key="answer_prediction"))
