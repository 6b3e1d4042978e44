"""Side-by-side comparison: normalisation, AUC, faithfulness curves, agreement, frames."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers as L  # noqa: N812
from tiny_models import TINY_RC_LSTM

from rul_core.explain.common import WindowInputs
from rul_core.explain.compare import (
    CompareSettings,
    FeatureSpace,
    auc,
    compare_window,
    compare_windows,
    faithfulness_curves,
    normalise,
    ranking,
)

H, W, F = 4, 20, 7


def _linear_tf_model(w: np.ndarray) -> keras.Model:
    tf_in = keras.Input((F, 1), name="tf")
    dense = L.Dense(1, use_bias=False)
    model = keras.Model(tf_in, dense(L.Flatten()(tf_in)))
    dense.set_weights([w.reshape(-1, 1).astype(np.float32)])
    return model


def _tiny_multimodal() -> keras.Model:
    keras.utils.set_random_seed(0)
    img = keras.Input((H, W, 1), name="image")
    tf_in = keras.Input((F, 1), name="tf")
    a = L.MaxPooling2D(2)(L.Conv2D(2, 3, padding="same", activation="relu")(img))
    a = L.Reshape((-1, 4))(L.Conv2D(4, 1)(a))
    t = L.Conv1D(4, 2, padding="same", activation="relu")(tf_in)
    h = L.LSTM(4, return_sequences=True)(L.Concatenate(axis=1)([a, t]))
    return keras.Model([img, tf_in], L.Dense(1)(L.GlobalMaxPooling1D()(h)))


def test_normalise_and_auc_known_values() -> None:
    np.testing.assert_allclose(normalise(np.array([1.0, -3.0])), [0.25, -0.75])
    np.testing.assert_array_equal(normalise(np.zeros(3)), np.zeros(3))
    assert auc(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert auc(np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)
    assert auc(np.array([1.0, 0.0, 0.0])) == pytest.approx(0.25)


def test_true_attribution_beats_random_on_deletion_and_insertion() -> None:
    w = np.array([5.0, 0.1, 0.0, 2.0, -0.5, 0.0, 1.0])
    model = _linear_tf_model(w)
    x = np.ones((1, F, 1), dtype=np.float32)
    bg = [np.zeros((4, F, 1), dtype=np.float32)]
    space = FeatureSpace.for_model(model, bg)
    window = WindowInputs.from_list(model, [x])
    truth = w * 1.0  # exact contributions w_f (x_f − 0)
    curves = faithfulness_curves(model, space, window, ranking(truth, 1.0))
    dele, ins = curves["deletion"], curves["insertion"]
    fx, fb = curves["deletion_pred"][0], curves["insertion_pred"][0]
    assert fx == pytest.approx(w.sum(), rel=1e-6) and fb == pytest.approx(0.0, abs=1e-6)
    # hand-computed deletion after removing 5, 2, 1, 0.1, 0, 0, -0.5 (sum 7.6)
    want = np.array([7.6, 2.6, 0.6, -0.4, -0.5, -0.5, -0.5, 0.0]) / 7.6
    np.testing.assert_allclose(dele, want, atol=1e-6)
    np.testing.assert_allclose(ins, 1.0 - want, atol=1e-6)
    rng = np.random.default_rng(0)
    rand = np.mean([auc(faithfulness_curves(model, space, window, rng.permutation(F))["deletion"])
                    for _ in range(20)])
    assert auc(dele) < rand
    worst = auc(faithfulness_curves(model, space, window, ranking(-truth, 1.0))["deletion"])
    assert worst > rand


def test_ill_conditioned_window_keeps_raw_curves_but_reports_no_areas() -> None:
    # contributions 0.3, -0.2, -0.095 (sum 0.005): removing every feature barely moves f
    w = np.array([0.3, -0.2, -0.095, 0.0, 0.0, 0.0, 0.0])
    model = _linear_tf_model(w)
    xs = np.ones((2, F, 1), dtype=np.float32)
    xs[1, 1] = 0.0  # window 1: contributions 0.3, 0, -0.095 (sum 0.205)
    background = [np.zeros((4, F, 1), dtype=np.float32)]  # the TF baseline is 0
    settings = CompareSettings(methods=("lrp", "shap"), shap_samples=20, shap_background=4,
                               n_random=3, rules="conservative")
    cmp = compare_window(model, [xs], 0, background, settings)
    assert cmp.contrast == pytest.approx(0.005, abs=1e-6) and not cmp.conditioned
    # by hand, SHAP's exact ranking 0.3 | 0 0 0 0 | -0.095 | -0.2 (stable among the zeros)
    shap_curves = cmp.curves["shap"]
    np.testing.assert_allclose(shap_curves["deletion_pred"],
                               [0.005, -0.295, -0.295, -0.295, -0.295, -0.295, -0.2, 0.0],
                               atol=1e-6)
    np.testing.assert_allclose(shap_curves["insertion_pred"],
                               [0.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.205, 0.005], atol=1e-6)
    assert np.abs(shap_curves["deletion"]).max() > 50  # what dividing by 0.005 does
    faith = cmp.faithfulness_frame()
    assert faith[["deletion_auc", "insertion_auc"]].isna().all().all()
    assert "+0.005" in cmp.faithfulness_note()
    summary = json.loads(json.dumps(cmp.to_json(), allow_nan=False))  # strict JSON: null
    assert summary["contrast"] == pytest.approx(0.005, abs=1e-6)
    assert all(r["deletion_auc"] is None for r in summary["faithfulness"])
    # the same window is ranked when the threshold allows it
    loose = compare_window(model, [xs], 0, background,
                           CompareSettings(**{**settings.__dict__, "min_contrast": 0.001}))
    assert loose.conditioned and np.isfinite(loose.faithfulness_frame()["deletion_auc"]).all()
    # over a set, only windows with areas count; none -> no "most faithful"
    good = compare_window(model, [xs], 1, background, settings)
    assert good.conditioned and good.faithfulness_note() == ""
    both = compare_windows(model, [xs], [0, 1], background, settings).faithfulness_frame()
    assert (both["windows"] == 1).all()
    np.testing.assert_allclose(both["deletion_auc"],
                               good.faithfulness_frame()["deletion_auc"], rtol=1e-9)
    assert compare_windows(model, [xs], [0], background, settings).most_faithful() is None
    assert compare_windows(model, [xs], [0, 1], background, settings).n_conditioned == 1


def test_compare_window_on_a_tiny_multimodal_model() -> None:
    model = _tiny_multimodal()
    rng = np.random.default_rng(1)
    xs = [rng.random((12, H, W, 1), dtype=np.float32),
          rng.standard_normal((12, F, 1)).astype(np.float32)]
    settings = CompareSettings(n_bands=5, lime_samples=60, lime_seeds=(0, 1), shap_samples=10,
                               shap_background=4, n_random=3)
    cmp = compare_window(model, xs, 2, xs, settings)
    assert cmp.feature_names[:F] == ["ch0:log_E", "ch0:f_d", "ch0:h", "ch0:K", "ch0:sk",
                                     "ch0:mean", "ch0:std"]
    assert cmp.modality.count("image") == 5
    for m in ("lrp", "lime", "shap"):
        assert np.abs(cmp.normalised[m]).sum() == pytest.approx(1.0)
        assert cmp.seconds[m] > 0
    shares = cmp.modality_frame()
    for _, grp in shares.groupby("method"):
        assert grp["abs_share"].sum() == pytest.approx(1.0)
    agree = cmp.agreement_frame()
    assert set(agree["scope"]) == {"all", "tf", "image"}
    assert agree[["spearman", "kendall"]].abs().max().max() <= 1.0 + 1e-9
    faith = cmp.faithfulness_frame()
    assert list(faith["method"]) == ["lrp", "lime", "shap", "random"]
    for c in cmp.curves.values():
        assert c["deletion"][0] == pytest.approx(1.0) and c["deletion"][-1] == pytest.approx(0.0)
        assert c["insertion"][0] == pytest.approx(0.0)
    assert "lime" in cmp.spread and cmp.spread["lime"].shape == (F + 5,)
    json.dumps(cmp.to_json(), allow_nan=False)
    both = compare_windows(model, xs, [0, 1], xs, settings)
    assert len(both.faithfulness_frame()) == 4
    assert both.most_faithful() in ("lrp", "lime", "shap")
    assert both.global_importance().shape == (F + 5, 5)


def test_signal_segments_and_sums_by_hand() -> None:
    from rul_core.explain.common import masked_signal, signal_segments, signal_sums

    # 2 steps x 5 samples = 10 samples in sequence order, 5 segments of 2
    np.testing.assert_array_equal(signal_segments((2, 5), 5), [[0, 0, 1, 1, 2], [2, 3, 3, 4, 4]])
    attr = np.arange(20, dtype=np.float64).reshape(1, 2, 5, 1, 2)  # two channels summed
    per_sample = (attr[..., 0, 0] + attr[..., 0, 1]).reshape(-1)  # 1, 5, 9, ... 37
    np.testing.assert_allclose(signal_sums(attr, 5)[0], per_sample.reshape(5, 2).sum(axis=1))
    x = np.ones((1, 2, 5, 1, 2), np.float32)
    out = masked_signal(x, np.array([[1, 0, 1, 1, 1]]), np.zeros((2, 5, 1, 2), np.float32))
    np.testing.assert_array_equal(out[0, 0, :, 0, 0], [1, 1, 0, 0, 1])  # segment 1 dropped


def test_signal_view_draws_the_explainers_segments_over_the_sequence() -> None:
    from rul_core.explain.compare import WindowComparison
    from rul_core.plots import signal_attribution_figure
    from rul_core.views import signal_view

    # 3 steps x 5 samples = 15 in sequence order; 4 segments: floor(i * 4 / 15) -> 4, 4, 4, 3
    x = np.arange(30, dtype=np.float32).reshape(3, 5, 1, 2)
    lrp, shap = np.array([0.5, -0.2, 0.1, 0.2]), np.array([0.1, 0.1, -0.4, 0.4])
    cmp = WindowComparison(0, [f"segment{i}" for i in range(4)], ["signal"] * 4, 1.0, 0.0, {},
                           {"lrp": lrp, "shap": shap}, {}, {}, {})
    view = signal_view(cmp, x)
    np.testing.assert_array_equal(view.edges, [0, 4, 8, 12, 15])
    assert view.steps == 3 and view.samples.shape == (15, 2)
    np.testing.assert_array_equal(view.samples[:, 1], np.arange(1, 30, 2))  # channel 1, in order
    np.testing.assert_array_equal(view.segment_maps["shap"], shap)
    fig = signal_attribution_figure(view.samples, view.steps, view.edges, view.segment_maps)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert [t.name for t in heat] == ["LRP", "SHAP"]
    np.testing.assert_array_equal(heat[0].x, view.edges)
    np.testing.assert_array_equal(heat[1].z[0], shap)
    assert heat[0].zmax == pytest.approx(0.5) and heat[1].zmin == pytest.approx(-0.5)  # shared
    assert sum(t.type == "scatter" for t in fig.data) == 2 * 2  # two channels per method
    assert list(fig.layout.xaxis.ticktext) == ["t−2", "t−1", "t"]
    named = signal_attribution_figure(view.samples, view.steps, view.edges, view.segment_maps,
                                      channel_names=["horizontal", "vertical"])
    assert [t.name for t in named.data if t.type == "scatter" and t.showlegend] == [
        "horizontal", "vertical"]
    assert named.layout.legend.y < 0  # under the plot, clear of the title


def test_feature_names_name_the_runs_channels() -> None:
    from rul_core.explain.common import readable_feature_names, tf_feature_names

    multimodal = tf_feature_names(7)  # the vertical channel only (tf_channels [1])
    assert multimodal[0] == "ch0:log_E"
    shown = readable_feature_names(multimodal, [1], ["horizontal", "vertical"])
    assert shown[:2] == ["vertical: log E", "vertical: f_d"]
    carle = readable_feature_names(tf_feature_names(14), [0, 1], ["horizontal", "vertical"])
    assert carle[0] == "horizontal: log E" and carle[7] == "vertical: log E"
    # no channel list, a channel the run lacks, or not a TF feature: unchanged
    assert readable_feature_names(multimodal, None, ["x"]) == multimodal
    assert readable_feature_names(["ch0:K"], [3], ["a", "b"]) == ["ch0:K"]
    assert readable_feature_names(["band3", "segment0"], [0], ["a"]) == ["band3", "segment0"]


def test_layer_relevance_bars_are_horizontal_output_first() -> None:
    from rul_core.plots import layer_relevance_figure

    fig = layer_relevance_figure(["dense_out", "attention", "conv2d_1"], [1.0, 0.9, 0.7], 1.0)
    bar = fig.data[0]
    assert bar.orientation == "h" and list(bar.y) == ["dense_out", "attention", "conv2d_1"]
    assert fig.layout.yaxis.autorange == "reversed"  # output at the top


def test_linear_signal_model_gets_its_exact_contributions_from_every_method() -> None:
    """RC-LSTM's input kind (T, L, 1, C): on y = w . x every method should recover each
    segment's contribution w . (x - baseline) (LIME up to its ridge's shrinkage)."""
    shape = (2, 5, 1, 2)
    w = np.random.default_rng(3).standard_normal(int(np.prod(shape)))
    inp = keras.Input(shape, name="signal")
    dense = L.Dense(1, use_bias=False)
    model = keras.Model(inp, dense(L.Flatten()(inp)))
    dense.set_weights([w.reshape(-1, 1).astype(np.float32)])
    x = np.full((1, *shape), 2.0, np.float32)
    background = [np.zeros((4, *shape), np.float32)]  # baseline: a flat zero signal
    truth = (w * 2.0).reshape(2, 5, 2).sum(axis=2).reshape(-1).reshape(5, 2).sum(axis=1)
    settings = CompareSettings(n_bands=5, lime_samples=500, lime_seeds=(0,), shap_samples=50,
                               shap_background=4, n_random=2, rules="conservative")
    cmp = compare_window(model, [x], 0, background, settings)
    assert cmp.modality == ["signal"] * 5
    assert cmp.prediction == pytest.approx(truth.sum(), rel=1e-5)
    assert cmp.baseline_prediction == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(cmp.raw["lrp"], truth, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cmp.raw["shap"], truth, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cmp.raw["lime"], truth, rtol=0.05, atol=0.05)
    # deletion along the true ranking ends at the baseline and beats the random order
    faith = cmp.faithfulness_frame().set_index("method")
    assert faith.loc["lrp", "deletion_auc"] <= faith.loc["random", "deletion_auc"]


def test_identical_methods_agree_perfectly() -> None:
    from rul_core.explain.compare import WindowComparison

    v = np.array([0.1, -0.4, 0.3, 0.2])
    cmp = WindowComparison(0, list("abcd"), ["tf"] * 4, 1.0, 0.0, {}, {"x": v, "y": 2 * v},
                           {}, {}, {})
    row = cmp.agreement_frame().iloc[0]
    assert row["spearman"] == pytest.approx(1.0) and row["kendall"] == pytest.approx(1.0)


@pytest.mark.slow
def test_cli_explain_writes_one_file_per_method(tmp_path) -> None:
    from rul_core.bundle import save_bundle
    from rul_core.cli import main
    from rul_core.data import load_dataset
    from rul_core.data.synthetic import write_dataset
    from rul_core.models import ModelConfig
    from rul_core.training import train

    data = write_dataset(tmp_path / "data", "femto", n_bearings=1, n_snapshots=4, seed=0)
    runs = load_dataset(data).runs
    cfg = ModelConfig("multimodal", preset="quick", hparams={"image_filters": [2, 2, 4, 4],
                      "tf_filters": [2, 2, 4, 4], "lstm_units": [4, 4, 4],
                      "attention_heads": 1, "attention_key_dim": 4, "dense_units": [4, 4]})
    trained = train(cfg, runs, epochs=1, batch_size=16)
    bundle = save_bundle(trained, tmp_path / "bundle")
    out = tmp_path / "out"
    rc = main(["explain", "--model", str(bundle), "--run", str(data), "--window", "1",
               "--methods", "lrp,lime,shap", "--out", str(out), "--n-bands", "5",
               "--lime-samples", "40", "--shap-samples", "8", "--rules", "conservative"])
    assert rc == 0
    for m in ("lrp", "lime", "shap"):
        assert (out / f"{m}.npz").stat().st_size > 0 and (out / f"{m}.png").stat().st_size > 0
    summary = json.loads((out / "compare.json").read_text())
    assert summary["rules"] == "conservative" and len(summary["features"]) == 7 + 5
    with np.load(out / "lrp.npz") as z:
        assert z["relevance_image"].shape == (1, 64, 500, 1)
        assert z["relevance_tf"].shape == (1, 7, 1)
        # the per-layer table starts with the prediction at the output layer
        assert z["layer_relevance_in"][0] == pytest.approx(float(z["prediction"][0]), abs=1e-6)
        assert np.isfinite(z["relevance_image"]).all()
    rc = main(["explain", "--model", str(bundle), "--run", str(data), "--window", "10000",
               "--methods", "lrp", "--out", str(out)])
    assert rc == 2  # bad window index: one-line error, exit code 2


@pytest.mark.slow
def test_cli_explains_rc_lstm_with_conservative_rules_by_default(tmp_path) -> None:
    from rul_core.bundle import save_bundle
    from rul_core.cli import main
    from rul_core.data import load_dataset
    from rul_core.data.synthetic import write_dataset
    from rul_core.models import ModelConfig
    from rul_core.training import train

    data = write_dataset(tmp_path / "data", "femto", n_bearings=1, n_snapshots=10, seed=0)
    cfg = ModelConfig("rc_lstm", dataset_kind="femto", hparams=dict(TINY_RC_LSTM))
    bundle = save_bundle(train(cfg, load_dataset(data).runs, epochs=1), tmp_path / "bundle")
    out = tmp_path / "out"
    rc = main(["explain", "--model", str(bundle), "--run", str(data), "--window", "2",
               "--methods", "lrp,shap", "--out", str(out), "--n-bands", "6",
               "--shap-samples", "8"])
    assert rc == 0
    summary = json.loads((out / "compare.json").read_text())
    assert summary["rules"] == "conservative"  # the paper's rules keep only the last step
    assert summary["features"] == [f"segment{i}" for i in range(6)]
    assert (out / "lrp.png").read_bytes()[:4] == b"\x89PNG"
    with np.load(out / "lrp.npz") as z:  # conservative rules: the input keeps the relevance
        total = float(z["relevance_signal"].sum())
        assert total == pytest.approx(float(z["prediction"].reshape(-1)[0]), rel=0.05)
