"""The paper's cascade pairings: a captioner names the LLMs its captions go to, and the main
captioner's accuracy is the headline "{benchmark} (Text)" of Figure 2."""

import json

import pytest

from akb.config import ConfigError, cascade_pairs, main_captioner, validate_config
from akb.report.study import audio_metrics, wide

MODELS = [{"name": n, "backend": "tiny", "source": "llama"} for n in ("a", "b", "c")]


def config(captioners, **cascade):
    return validate_config({"models": MODELS, "cascade": cascade, "captioners": captioners,
                            "audio_benchmarks": [{"name": "mmau", "source": "x.json"}]})


def test_each_captioner_feeds_its_own_models_or_the_cascade_ones():
    c = config([{"name": "gemini", "backend": "dsp"}, {"name": "whisper", "backend": "dsp", "models": ["c"]}],
               models=["a", "b"])
    assert cascade_pairs(c) == [("gemini", "a"), ("gemini", "b"), ("whisper", "c")]
    assert main_captioner(c) == "gemini"
    assert main_captioner(config([{"name": "g", "backend": "dsp"}, {"name": "w", "backend": "dsp"}],
                                 main_captioner="w")) == "w"
    everyone = config([{"name": "g", "backend": "dsp"}])
    assert cascade_pairs(everyone) == [("g", "a"), ("g", "b"), ("g", "c")]
    assert cascade_pairs(validate_config({"models": MODELS, "captioners": [{"name": "g", "backend": "dsp"}]})) == []


@pytest.mark.parametrize("captioners, cascade, message", [
    ([{"name": "g", "backend": "dsp", "models": ["zz"]}], {}, r"config.captioners\[0\].models \(g\): unknown model\(s\) \['zz'\]"),
    ([{"name": "g", "backend": "dsp"}], {"main_captioner": "w"}, "config.cascade.main_captioner: 'w' is not a captioner"),
])
def test_wrong_references_name_the_key(captioners, cascade, message):
    with pytest.raises(ConfigError, match=message):
        config(captioners, **cascade)


def test_main_captioner_is_the_headline_and_others_stay_out_of_figure_2(tmp_path):
    files = []
    for captioner, model, accuracy in [("gemini", "a", 70.0), ("gemini", "b", 60.0), ("whisper", "a", 55.0)]:
        path = tmp_path / f"{captioner}-{model}.json"
        path.write_text(json.dumps({"model": model, "captioner": captioner, "benchmark": "MMAU", "n": 10,
                                    "accuracy": accuracy, "ci": [1, 2], "by_domain": {
                                        "sound": {"n": 5, "accuracy": accuracy, "ci": [1, 2]}}}))
        files.append(path)
    labels = {"a": {"label": "A"}, "b": {"label": "B"}}
    long = audio_metrics(files, labels, "Text", main_captioner="gemini")
    headline = wide(long, "headline")
    assert list(headline.columns) == ["MMAU (Text)"]
    assert headline["MMAU (Text)"].to_dict() == {"A": 70.0, "B": 60.0}
    assert wide(long, "captioner").to_dict() == {"MMAU (Text, whisper)": {"A": 55.0}}
    # Figure 3 keeps every captioner's per-domain points.
    assert set(long[long.kind == "domain"].captioner) == {"gemini", "whisper"}


def test_paper_pairings_give_figure_2_exactly_the_papers_five_metrics(tmp_path):
    """As `collect-metrics` builds them for config/paper.yaml: probing on AKB-2000, the cascade from
    three captioners (Gemini the main one) and the audio LLMs: Figure 2's headline columns are the
    published figure's five metrics, in its order."""
    import pandas as pd

    from akb.report.paper import METRICS
    from akb.report.study import probe_metrics

    def score(path, **fields):
        summary = {"n": 10, "accuracy": 50.0, "ci": [40, 60]}
        path.write_text(json.dumps({**fields, **summary, "by_category": {"Sound": summary},
                                    "by_domain": {"sound": summary}}))
        return path

    labels = {m: {"label": m.upper()} for m in ("a", "b", "gemini-2.5-pro")}
    probe = [score(tmp_path / f"p-{m}.json", model=m) for m in labels]
    cascade = [score(tmp_path / f"c-{c}-{m}-{b}.json", model=m, captioner=c, benchmark=b)
               for b in ("MMAU", "MMAR") for c, models in
               [("gemini", labels), ("whisper-large-v3", ["gemini-2.5-pro"]), ("qwen3-omni-captioner", ["gemini-2.5-pro"])]
               for m in models]
    grounded = [score(tmp_path / f"g-{m}-{b}.json", model=m, captioner="audio", benchmark=b)
                for b in ("MMAU", "MMAR") for m in ("a", "b")]
    long = pd.concat([probe_metrics(probe, labels, "AKB-2000"), audio_metrics(cascade, labels, "Text", "gemini"),
                      audio_metrics(grounded, labels, "Audio")], ignore_index=True)
    assert sorted(wide(long, "headline").columns) == sorted(METRICS)
    assert set(wide(long, "captioner").columns) == {f"{b} (Text, {c})" for b in ("MMAU", "MMAR")
                                                    for c in ("whisper-large-v3", "qwen3-omni-captioner")}
