"""Resumable state is resumed only by the run that wrote it: a partial file or a training state
written with other settings (model, mode, inputs) is set aside, never merged."""

import json

import pytest

from akb.io import PartialJsonl, read_jsonl
from akb.probe.run import probe


def test_a_partial_of_another_run_is_set_aside_with_the_fields_that_differ(tmp_path, caplog):
    out = tmp_path / "rows.jsonl"
    first = PartialJsonl(out, {"model": "a", "mode": "generate", "items": "d1"})
    first.append([{"id": "x", "v": 1}])
    again = PartialJsonl(out, {"model": "a", "mode": "generate", "items": "d1"})
    assert again.done("x")  # the same run: resumed

    other = PartialJsonl(out, {"model": "a", "mode": "loglik", "items": "d2"})
    assert not other.done("x")
    assert "written with other items, mode" in caplog.text and "rows.jsonl.partial.stale" in caplog.text
    assert read_jsonl(tmp_path / "rows.jsonl.partial.stale") == [{"id": "x", "v": 1}]
    other.append([{"id": "x", "v": 2}])
    other.publish(["x"])
    assert read_jsonl(out) == [{"id": "x", "v": 2}]
    assert not (tmp_path / "rows.jsonl.partial").exists()
    assert not (tmp_path / "rows.jsonl.partial.fingerprint.json").exists()


def test_a_partial_without_fingerprint_is_not_resumed(tmp_path, caplog):
    out = tmp_path / "rows.jsonl"
    (tmp_path / "rows.jsonl.partial").write_text(json.dumps({"id": "x", "v": 1}) + "\n")
    partial = PartialJsonl(out, {"model": "a"})
    assert not partial.done("x") and "has no fingerprint" in caplog.text
    assert json.loads((tmp_path / "rows.jsonl.partial.fingerprint.json").read_text()) == {"model": "a"}


@pytest.mark.parametrize("change", [{"max_new_tokens": 8}, {"style": "desta"}, {"descriptions": "other"},
                                    {"items": "fewer"}])
def test_a_probe_rerun_with_other_settings_starts_afresh(tmp_path, tiny_qwen3, items, change):
    """Rows of a stopped probe are only merged into a rerun with the same settings and inputs."""
    settings = {"mode": "generate", "batch_size": 4, "max_new_tokens": 4}
    descriptions = {it.id: "a quiet hum" for it in items}
    out = tmp_path / "akb.jsonl"
    probe(tiny_qwen3, items, out, descriptions=descriptions, **settings)
    reference = out.read_text()
    # As a stopped run leaves it: all rows in the partial file, not yet published.
    out.rename(tmp_path / "akb.jsonl.partial")
    from akb.io import write_json
    from akb.probe.run import probe_fingerprint

    write_json(tmp_path / "akb.jsonl.partial.fingerprint.json",
               probe_fingerprint(tiny_qwen3, items, "generate", 4, descriptions, None, "lettered"))
    rerun = dict(settings, max_new_tokens=change.get("max_new_tokens", 4))
    kept = items[:-1] if "items" in change else items
    described = {k: change["descriptions"] for k in descriptions} if "descriptions" in change else descriptions
    probe(tiny_qwen3, kept, out, descriptions=described, style=change.get("style", "lettered"), **rerun)
    assert (tmp_path / "akb.jsonl.partial.stale").read_text() == reference  # set aside whole, not merged
    fresh = tmp_path / "fresh.jsonl"
    probe(tiny_qwen3, kept, fresh, descriptions=described, style=change.get("style", "lettered"), **rerun)
    assert out.read_text() == fresh.read_text()


from test_grounded import _train, rows, suite  # noqa: E402,F401 - the tiny training set and its runner


def _interrupted_training(tmp_path, whisper_dir, rows, monkeypatch, **train):
    """A run stopped during its third step, after the step-2 checkpoint."""
    from akb.lalm.model import LALM

    real_loss, calls = LALM.loss, {"n": 0}

    def failing_loss(self, items):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_loss(self, items)

    with monkeypatch.context() as m:
        m.setattr(LALM, "loss", failing_loss)
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path, whisper_dir, rows, "run", checkpoint_every=1, max_steps=4, **train)
    assert (tmp_path / "run-state" / "train_state.pt").is_file()


def test_a_training_state_of_other_settings_is_set_aside(tmp_path, tiny_whisper_dir, rows, monkeypatch, caplog):
    _interrupted_training(tmp_path, tiny_whisper_dir, rows, monkeypatch)
    _, summary = _train(tmp_path, tiny_whisper_dir, rows, "run", checkpoint_every=1, max_steps=4, lr=5e-4)
    assert summary["resumed_from_step"] == 0 and "written with other settings" in caplog.text
    assert (tmp_path / "run-state" / "train_state.pt.stale").is_file()


def test_a_training_state_resumes_when_only_the_checkpoint_interval_changes(tmp_path, tiny_whisper_dir, rows,
                                                                           monkeypatch):
    _interrupted_training(tmp_path, tiny_whisper_dir, rows, monkeypatch)
    _, summary = _train(tmp_path, tiny_whisper_dir, rows, "run", checkpoint_every=3, max_steps=4)
    assert summary["resumed_from_step"] == 2
