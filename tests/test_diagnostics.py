"""Text-prior / audio-reliance diagnostics on hand-built records whose numbers are worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from akb.diagnostics import analysis as dg, conditions
from akb.report.diagnostics import (plot_decomposition, plot_retention_curves, plot_text_prior_by_domain,
                                     write_diagnostics_figures)


def item(item_id, full, none, fragments=(), errors=(), domain="sound", **extra):
    """Records of one item in every required condition: `fragments` are the fragment conditions
    answered right, `errors` the conditions whose run errored (answered wrong)."""
    outcome = {conditions.FULL: full, conditions.NONE: none, **{c: c in fragments for c in conditions.FRAGMENT_CONDITIONS}}
    return [{"id": item_id, "condition": c, "domain": domain,
             "correct": None if c in errors else ok, "error": "FragmentError: too short" if c in errors else None,
             **extra} for c, ok in outcome.items()]


def records(*items):
    return [r for rows in items for r in rows]


ALL_FRAGMENTS = conditions.FRAGMENT_CONDITIONS

# One item per class, plus the edge cases the definitions decide.
CRAFTED = {
    "ts": dict(full=True, none=True),                                   # Text-Solvable
    "ts_nofrag": dict(full=True, none=True),                            # fragments do not matter here
    "fs": dict(full=True, none=False, fragments={"fragment-3-1"}),      # one right piece is enough
    "cs": dict(full=True, none=False),                                  # wrong in all 14 pieces
    "fs_err": dict(full=True, none=False, errors={"fragment-5-4"}),     # errored piece: Fragment-Sufficient
    "ah": dict(full=False, none=True, fragments=set(ALL_FRAGMENTS)),    # Audio-Harmful whatever the pieces
    "un": dict(full=False, none=False, fragments={"fragment-2-0"}),     # Unsolvable whatever the pieces
    "un_err": dict(full=False, none=False, errors={conditions.FULL}),           # errored full run = wrong
}
EXPECTED_CLASS = {"ts": "text_solvable", "ts_nofrag": "text_solvable", "fs": "fragment_sufficient",
                  "cs": "cross_segment", "fs_err": "fragment_sufficient", "ah": "audio_harmful",
                  "un": "unsolvable", "un_err": "unsolvable"}


def crafted_records(**extra):
    return records(*(item(i, **spec, **extra) for i, spec in CRAFTED.items()))


# --------------------------------------------------------------------------------------------
# Conditions and fragments


def test_condition_names():
    assert len(conditions.FRAGMENT_CONDITIONS) == 14 and len(set(conditions.FRAGMENT_CONDITIONS)) == 14
    assert conditions.FRAGMENT_CONDITIONS[:3] == ("fragment-2-0", "fragment-2-1", "fragment-3-0")
    assert conditions.FRAGMENT_CONDITIONS[-1] == "fragment-5-4"
    assert set(conditions.PROTOCOL_CONDITIONS) == {"full", "none", "backbone", *conditions.FRAGMENT_CONDITIONS}
    assert not set(conditions.EXTRA_CONDITIONS) & set(conditions.PROTOCOL_CONDITIONS)
    assert conditions.parse_fragment_condition("fragment-3-1") == (3, 1)
    assert conditions.parse_fragment_condition("full") is None


def test_fragment_boundaries_last_piece_takes_remainder():
    clip = np.arange(10_007, dtype=np.float32)  # 10007 = 3 * 3335 + 2
    pieces = [conditions.fragment(clip, 3, k, min_samples=1) for k in range(3)]
    assert [p.size for p in pieces] == [3335, 3335, 3337]
    assert pieces[1][0] == 3335 and pieces[2][0] == 6670
    for n in conditions.FRAGMENT_NS:
        assert np.array_equal(np.concatenate([conditions.fragment(clip, n, k, min_samples=1) for k in range(n)]), clip)


def test_fragment_too_short_raises_and_never_pads():
    clip = np.zeros(5 * 1600 - 1)  # 5 pieces of 1599 samples: one short of the 0.1 s floor
    assert conditions.fragment(clip, 4, 3).size == len(clip) - 3 * (len(clip) // 4)
    with pytest.raises(conditions.FragmentError, match="too short"):
        conditions.fragment(clip, 5, 0)
    with pytest.raises(conditions.FragmentError):
        conditions.fragment(np.zeros(1), 2, 0, min_samples=1)  # an empty piece is never a fragment
    with pytest.raises(ValueError):
        conditions.fragment(clip, 3, 3)


def test_condition_audio_and_extras():
    clip = np.ones(16_000, dtype=np.float32)
    assert conditions.condition_audio(clip, "none") is None and conditions.condition_audio(clip, "backbone") is None
    assert conditions.condition_audio(clip, "fragment-4-3").size == 4000
    assert not conditions.silence_like(clip).any() and conditions.silence_like(clip).size == clip.size
    noise = conditions.condition_audio(clip, "noise")
    assert noise.size == clip.size and np.array_equal(noise, conditions.noise_like(clip))  # fixed seed
    assert 20 * np.log10(np.sqrt(np.mean(noise.astype(float) ** 2))) == pytest.approx(conditions.NOISE_RMS_DBFS, abs=0.2)
    with pytest.raises(ValueError, match="unknown condition"):
        conditions.condition_audio(clip, "fragment-x")


# --------------------------------------------------------------------------------------------
# One run


def test_decomposition_covers_every_class_and_the_errored_fragment_rule():
    out = dg.outcomes(crafted_records())
    assert dg.classify_items(out).to_dict() == EXPECTED_CLASS
    m = dg.run_metrics(out, n_resamples=200)
    assert (m["text_solvable"], m["fragment_sufficient"], m["cross_segment"], m["audio_harmful"],
            m["unsolvable"]) == (2, 2, 1, 1, 2)
    assert m["audio_needed"] == 3 and m["cross_segment_share"] == pytest.approx(1 / 3)
    # Full right: ts, ts_nofrag, fs, cs, fs_err = 5 of 8; none right: ts, ts_nofrag, ah = 3 of 8.
    assert m["acc_full"] == 62.5 and m["acc_none"] == 37.5 and m["text_prior"] == pytest.approx(0.6)
    # fragment-2-0 right for ah and un: 2 of 8; fragment-2-1 for ah: 1 of 8 -> (25 + 12.5) / 2 / 62.5.
    assert m["retention_2"] == pytest.approx(0.3)
    assert m["text_prior_low"] <= 0.6 <= m["text_prior_high"]  # paired item bootstrap (seed 0)
    assert m["fragment_errors"] == 1 and m["errors"] == 2 and math.isnan(m["acc_backbone"])


def test_retention_is_mean_over_pieces_over_full():
    # Full: 3 of 4 right (75%). fragment-3-k right for 2, 1, 0 items: mean 25% -> R_3 = 1/3.
    rows = records(item("a", True, False, {"fragment-3-0", "fragment-3-1"}),
                   item("b", True, False, {"fragment-3-0"}), item("c", True, False), item("d", False, False))
    out = dg.outcomes(rows)
    assert dg.retention(out, 3) == pytest.approx((50 + 25 + 0) / 3 / 75)
    assert dg.retention(out, 5) == 0.0  # no piece right: a real 0, Acc_full is not 0
    assert dg.text_prior_rate(out) == 0.0


def test_nan_rules():
    # Acc_full = 0: every ratio over it is NaN, and nobody is Audio-Needed.
    m = dg.run_metrics(dg.outcomes(records(item("a", False, True), item("b", False, False))), n_resamples=50)
    assert m["acc_full"] == 0 and m["acc_none"] == 50
    assert all(math.isnan(m[k]) for k in ("text_prior", "retention_2", "retention_5", "cross_segment_share",
                                          "text_prior_low"))
    # Acc_full > 0 but no Audio-Needed item: text prior defined, the share NaN (not 0).
    m = dg.run_metrics(dg.outcomes(records(item("a", True, True), item("b", False, False))), n_resamples=50)
    assert m["text_prior"] == 1.0 and m["audio_needed"] == 0 and math.isnan(m["cross_segment_share"])


def test_missing_records_name_model_condition_and_ids():
    rows = crafted_records(model="M1", benchmark="B")
    rows = [r for r in rows if not (r["condition"] == "fragment-4-2" and r["id"] in {"cs", "ah"})]
    rows = [r for r in rows if r["condition"] != "none"]
    with pytest.raises(dg.MissingRecordsError) as err:
        dg.diagnostics_table(rows, n_resamples=0)
    message = str(err.value)
    assert "'M1'" in message and "'B'" in message and "'fragment-4-2': 2 of 8" in message
    assert "cs, ah" in message and "'none': 8 of 8" in message
    assert err.value.missing["fragment-4-2"] == ["cs", "ah"]
    # An item of the benchmark that has no record at all is caught when the item list is given.
    with pytest.raises(dg.MissingRecordsError, match="'full': 1 of 9 items, e.g. extra"):
        dg.diagnostics_table(crafted_records(model="M1", benchmark="B"), ids={"B": [*CRAFTED, "extra"]})


def test_malformed_records_are_rejected():
    rows = crafted_records()
    with pytest.raises(ValueError, match="several records"):
        dg.outcomes(rows + rows[:1])
    bad = [dict(r) for r in rows]
    bad[0].update(error="boom", correct=True)
    with pytest.raises(ValueError, match="cannot be correct"):
        dg.outcomes(bad)
    bad = [dict(r) for r in rows]
    bad[0]["domain"] = "music"
    with pytest.raises(ValueError, match="several domains"):
        dg.outcomes(bad)


# --------------------------------------------------------------------------------------------
# Several models: ratio of means vs mean of ratios


def two_models():
    """Model A: full 4/4, none 2/4, each piece right for 1 item (25%) -> R_TP 0.5, R_N 0.25.
    Model B: full 2/4, none 2/4, each piece right for the 2 full-right items (50%) -> R_TP 1, R_N 1."""
    a = records(item("i1", True, True, ALL_FRAGMENTS, model="A", benchmark="B"),
                item("i2", True, True, model="A", benchmark="B"),
                item("i3", True, False, model="A", benchmark="B", domain="music"),
                item("i4", True, False, model="A", benchmark="B", domain="music"))
    b = records(item("i1", True, True, ALL_FRAGMENTS, model="Bm", benchmark="B"),
                item("i2", True, True, ALL_FRAGMENTS, model="Bm", benchmark="B"),
                item("i3", False, False, model="Bm", benchmark="B", domain="music"),
                item("i4", False, False, model="Bm", benchmark="B", domain="music"))
    return a + b


def test_benchmark_text_prior_is_ratio_of_means_and_retention_mean_of_ratios():
    table = dg.diagnostics_table(two_models(), n_resamples=0)
    overall = table[table.domain == "all"].set_index("model")
    assert overall.loc["A", "text_prior"] == 0.5 and overall.loc["Bm", "text_prior"] == 1.0
    assert overall.loc["A", "retention_4"] == 0.25 and overall.loc["Bm", "retention_4"] == 1.0
    summary = dg.benchmark_summary(table).set_index("domain")
    # mean(None)/mean(Full) = 50 / 75, not the mean of ratios 0.75.
    assert summary.loc["all", "text_prior"] == pytest.approx(2 / 3)
    # mean of ratios (0.25 + 1) / 2, not the ratio of means 37.5 / 75 = 0.5.
    assert summary.loc["all", "retention_4"] == pytest.approx(0.625)
    assert summary.loc["all", "n_models"] == 2 and summary.loc["all", "n_models_defined"] == 2
    # Music alone: B's Acc_full is 0 -> its ratios are NaN and left out of the mean of ratios.
    music = table[table.domain == "music"].set_index("model")
    assert math.isnan(music.loc["Bm", "retention_2"]) and math.isnan(music.loc["Bm", "text_prior"])
    assert summary.loc["music", "n_models_defined"] == 1 and summary.loc["music", "retention_2"] == 0.0
    assert summary.loc["music", "text_prior"] == 0.0  # mean none 0 over mean full 50: defined
    # Audio-Needed: A's i3, i4 (Cross-Segment); B none -> per-model share mean over A only.
    assert summary.loc["all", "cross_segment_share"] == 1.0 and summary.loc["all", "audio_needed"] == 2


def test_accuracy_table_lists_every_condition_including_extras():
    rows = two_models()
    rows += [{"model": m, "benchmark": "B", "id": i, "condition": "silence", "domain": "sound",
              "correct": m == "A", "error": None} for m in ("A", "Bm") for i in ("i1", "i2")]
    # Silence for the sound items only: an incomplete condition, extra or not.
    with pytest.raises(dg.MissingRecordsError, match="'silence': 2 of 4"):
        dg.accuracy_table(rows, n_resamples=0)
    rows += [{"model": m, "benchmark": "B", "id": i, "condition": "silence", "domain": "music",
              "correct": False, "error": None} for m in ("A", "Bm") for i in ("i3", "i4")]
    acc = dg.accuracy_table(rows, n_resamples=100).set_index(["model", "domain", "condition"])
    assert len(acc.xs("all", level="domain").loc["A"]) == 17  # full, none, 14 pieces, silence
    assert acc.loc[("A", "all", "silence"), "accuracy"] == 50.0
    assert acc.loc[("Bm", "music", "full"), "accuracy"] == 0.0


def test_tables_and_figures_written(tmp_path):
    tables = dg.write_diagnostics_tables(two_models(), tmp_path, n_resamples=50)
    for name in ("accuracy", "metrics", "benchmarks", "items"):
        for ext in ("csv", "md"):
            assert (tmp_path / f"diagnostics_{name}.{ext}").stat().st_size > 0
    assert pd.read_csv(tmp_path / "diagnostics_metrics.csv").shape[0] == 6  # 2 models x (all, sound, music)
    assert "--" in (tmp_path / "diagnostics_metrics.md").read_text()  # NaN shown as missing

    table = tables["metrics"]
    curves = plot_retention_curves(table, "B", tmp_path / "retention")
    assert list(curves.index) == ["A", "Bm", "benchmark"] and (curves[1] == 1.0).all()
    assert curves.loc["benchmark", 4] == pytest.approx(0.625) and curves.loc["benchmark", "none"] == pytest.approx(2 / 3)
    shares = plot_decomposition(table, "B", tmp_path / "decomposition")
    assert shares.loc["A", "cross_segment"] == 50.0 and np.allclose(shares.sum(axis=1), 100)
    prior = plot_text_prior_by_domain(table, "B", tmp_path / "text_prior")
    assert list(prior.columns) == ["all", "sound", "music"] and prior.loc["benchmark", "all"] == pytest.approx(2 / 3)
    plot_retention_curves(table, "absent", tmp_path / "empty")  # placeholder, not a crash
    stems = write_diagnostics_figures(table, tmp_path / "figs")
    for stem in [tmp_path / s for s in ("retention", "decomposition", "text_prior", "empty")] + stems:
        for ext in ("png", "pdf"):
            assert stem.with_name(f"{stem.name}.{ext}").stat().st_size > 0


# --------------------------------------------------------------------------------------------
# Validation against the synthetic suite's intended reliance


def test_reliance_labels_match_the_synthetic_suite():
    from akb.data.synthetic import RELIANCES

    assert set(RELIANCES) == {dg.WHOLE_CLIP, dg.ANY_PART, dg.NO_AUDIO}
    suite = [{"id": "s1", "reliance": "whole_clip"}, {"id": "s2", "reliance": "none"}]
    assert dg.suite_reliance(suite) == {"s1": "whole_clip", "s2": "none"}


def test_reliance_agreement():
    cls = {"w1": "cross_segment", "w2": "fragment_sufficient", "w4": "cross_segment", "w5": "fragment_sufficient",
           "w3": "unsolvable", "a1": "fragment_sufficient", "a2": "cross_segment", "a3": "fragment_sufficient",
           "k1": "text_solvable", "k2": "fragment_sufficient"}
    reliance = {i: {"w": "whole_clip", "a": "any_part", "k": "none"}[i[0]] for i in cls}
    classes = pd.DataFrame({"model": "M", "benchmark": "syn", "id": list(cls), "item_class": list(cls.values())})
    row = dg.reliance_agreement(classes, reliance).iloc[0]
    assert row["audio_needed"] == 8 and row["cross_segment"] == 3
    assert row["cross_segment_whole"] == pytest.approx(2 / 3)  # w1, w4 of w1, w4, a2
    assert row["whole_cross_segment"] == pytest.approx(2 / 4)  # w1, w4 of w1, w2, w4, w5 (w3 not needed)
    assert row["any_fragment_sufficient"] == pytest.approx(2 / 3)  # a1, a3 of a1, a2, a3
    assert row["no_audio_needed"] == 1  # k2
    # No Cross-Segment item: the precision is undefined, not 0.
    none_cs = dg.reliance_agreement(classes.assign(item_class="fragment_sufficient"), reliance).iloc[0]
    assert math.isnan(none_cs["cross_segment_whole"]) and none_cs["whole_cross_segment"] == 0.0
    with pytest.raises(KeyError):
        dg.reliance_agreement(classes, {})


def test_reliance_agreement_from_records():
    # End to end: records -> item_classes -> agreement.
    rows = records(item("w", True, False, model="M", benchmark="syn"),
                   item("a", True, False, {"fragment-2-1"}, model="M", benchmark="syn"))
    row = dg.reliance_agreement(dg.item_classes(rows), {"w": "whole_clip", "a": "any_part"}).iloc[0]
    assert (row["cross_segment_whole"], row["whole_cross_segment"], row["any_fragment_sufficient"]) == (1.0, 1.0, 1.0)


def test_domain_groups_with_ties_and_nothing_audio_needed():
    """Per domain: a domain where no item needs audio has a NaN Cross-Segment share while the whole
    benchmark has one; a domain whose accuracy ties with and without audio has text prior exactly 1."""
    rows = records(item("s1", True, False, domain="sound"), item("s2", True, False, fragments={"fragment-2-1"},
                                                                 domain="sound"),
                   item("m1", True, True, domain="music"), item("m2", False, False, domain="music"))
    for r in rows:
        r.update(model="m", benchmark="b")
    table = dg.diagnostics_table(rows, n_resamples=50).set_index("domain")
    assert table.index[0] == "all" and set(table.index) == {"all", "music", "sound"}
    assert table.loc["all", "cross_segment_share"] == 0.5
    assert table.loc["sound", "cross_segment_share"] == 0.5
    assert math.isnan(table.loc["music", "cross_segment_share"])
    assert table.loc["music", "text_prior"] == 1.0
