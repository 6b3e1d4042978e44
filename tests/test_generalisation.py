"""Cross-condition generalisation: per-run healthy-baseline standardisation of TF features
(causal, identical on partial runs, stored in the model card) and RC-LSTM's input scaling."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from tiny_models import TINY_CARLE

from rul_core.bundle import load_bundle, save_bundle
from rul_core.data.synthetic import synth_run
from rul_core.models import ModelConfig, build_model
from rul_core.signal import pipeline as pl
from rul_core.training import predict_run, train


# --- baseline_standardise: hand-computed values ----------------------------------------------
def test_baseline_standardise_hand_values() -> None:
    # one channel, feature 0 varies, feature 1 is constant (sd 0 -> relative floor)
    snap = np.array([0, 0, 1, 1, 2])
    tf = np.zeros((5, 1, 7))
    tf[:, 0, 0] = [1.0, 3.0, 5.0, 7.0, 11.0]
    tf[:, 0, 1] = 10.0
    out = pl.baseline_standardise(tf, snap, k=2)
    # snapshot 0 uses {1, 3}: mu 2, sd 1; snapshots >= 1 use {1, 3, 5, 7}: mu 4, sd sqrt(5)
    s5 = np.sqrt(5.0)
    z = np.array([-1, 1, 1 / s5, 3 / s5, 7 / s5])
    np.testing.assert_allclose(out[:, 0, 0], np.log(z + np.sqrt(z * z + 1)), rtol=1e-6)
    # constant feature: (10 - 10) / (1e-3 * 10 + 1e-6) = 0
    np.testing.assert_array_equal(out[:, 0, 1], 0.0)
    assert out.dtype == np.float32
    # a constant feature that later moves is scaled by the floor 1e-3 |mu| + 1e-6
    tf[4, 0, 1] = 10.02
    out = pl.baseline_standardise(tf, snap, k=2)
    assert out[4, 0, 1] == pytest.approx(np.arcsinh(0.02 / (1e-2 + 1e-6)), rel=1e-5)
    # large deviations are compressed logarithmically: z = 401, asinh(z) = ln(z + sqrt(z^2 + 1))
    big = np.zeros((3, 1, 7))
    big[:, 0, 0] = [-1.0, 1.0, 401.0]
    out = pl.baseline_standardise(big, np.array([0, 0, 1]), k=1)
    assert out[2, 0, 0] == pytest.approx(np.log(401 + np.sqrt(401**2 + 1)), rel=1e-6)


def test_baseline_standardise_is_causal_and_validates() -> None:
    rng = np.random.default_rng(3)
    snap = np.repeat(np.arange(6), 3)
    tf = rng.normal(size=(18, 2, 7))
    full = pl.baseline_standardise(tf, snap, k=4)
    for n in range(1, 7):
        part = pl.baseline_standardise(tf[: 3 * n], snap[: 3 * n], k=4)
        np.testing.assert_array_equal(part, full[: 3 * n])
    # after k snapshots the baseline is frozen: windows of snapshot 5 use snapshots 0..3
    base = tf[:12]
    np.testing.assert_allclose(
        full[15:], np.arcsinh((tf[15:] - base.mean(0)) / base.std(0)), rtol=1e-5
    )
    with pytest.raises(ValueError, match="snapshot order"):
        pl.baseline_standardise(tf[::-1], snap[::-1], k=2)
    with pytest.raises(ValueError, match="baseline_snapshots"):
        pl.baseline_standardise(tf, snap, k=0)


def test_pipeline_config_baseline_field() -> None:
    cfg = pl.PipelineConfig(baseline_snapshots=10)
    assert cfg.to_dict()["baseline_snapshots"] == 10
    assert pl.PipelineConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.hash() != pl.PipelineConfig().hash()
    old = pl.PipelineConfig().to_dict()
    del old["baseline_snapshots"]  # cards written before the field existed still load
    assert pl.PipelineConfig.from_dict(old).baseline_snapshots is None
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="baseline_snapshots"):
            pl.PipelineConfig(baseline_snapshots=bad)


def test_extract_windows_baseline_matches_hand_standardisation() -> None:
    run = synth_run("Bearing1_1", n_snapshots=6, seed=2)
    norm = pl.fit_normaliser([run])
    raw = pl.extract_windows(run, norm, pl.PipelineConfig())
    std = pl.extract_windows(run, norm, pl.PipelineConfig(baseline_snapshots=3))
    np.testing.assert_array_equal(std.images, raw.images)
    base = raw.tf[raw.snapshot_index < 3].astype(np.float64)
    mu, sd = base.mean(0), base.std(0)
    scale = np.maximum(sd, 1e-3 * np.abs(mu) + 1e-6)
    late = raw.snapshot_index >= 3
    np.testing.assert_allclose(
        std.tf[late], np.arcsinh((raw.tf[late] - mu) / scale), rtol=1e-4, atol=1e-4
    )
    # a prefix of the run gives the prefix of the features
    head = pl.extract_windows(run.head(4), norm, pl.PipelineConfig(baseline_snapshots=3))
    np.testing.assert_array_equal(head.tf, std.tf[: len(head)])


# --- training and inference with the baseline ------------------------------------------------
@pytest.fixture(scope="module")
def trained_baseline():
    runs = [synth_run(f"Bearing1_{i}", n_snapshots=8, seed=i) for i in (1, 2)]
    runs.append(synth_run("Bearing2_1", n_snapshots=8, rpm=1650.0, load_n=4200.0, seed=9))
    keras.utils.set_random_seed(0)
    cfg = ModelConfig("carle", hparams=dict(TINY_CARLE), mc_samples=3)
    pc = pl.PipelineConfig(baseline_snapshots=3)
    return train(cfg, runs[:2], pipeline_config=pc, epochs=1, batch_size=16), runs[2]


def test_predict_run_partial_equals_full_prefix(trained_baseline) -> None:
    trained, run = trained_baseline
    full = predict_run(trained, run)
    for n in (2, 3, 5):
        part = predict_run(trained, run, upto=n)
        pd.testing.assert_frame_equal(part, full.iloc[:n].reset_index(drop=True))


def test_baseline_stored_in_card_and_reapplied(trained_baseline, tmp_path) -> None:
    trained, run = trained_baseline
    path = save_bundle(trained, tmp_path / "bundle")
    loaded = load_bundle(path)
    assert loaded.pipeline_config.baseline_snapshots == 3
    pd.testing.assert_frame_equal(predict_run(loaded, run), predict_run(trained, run))


# --- RC-LSTM input scaling -------------------------------------------------------------------
def test_rc_lstm_input_bn_standardises_near_constant_input() -> None:
    hp = {"window_length": 64, "pool": 8, "res_units": 1, "res_filters": 2,
          "convlstm_filters": 2, "tower_units": 4}
    with_bn = build_model(ModelConfig("rc_lstm", hparams=hp))
    without = build_model(ModelConfig("rc_lstm", hparams={**hp, "input_bn": False}))
    assert "input_bn" in [layer.name for layer in with_bn.layers]
    assert "input_bn" not in [layer.name for layer in without.layers]
    # min-max normalised vibration: 0.5 +- 0.005; in training mode BN maps it to mean 0, std 1
    rng = np.random.default_rng(0)
    x = (0.5 + 0.005 * rng.standard_normal((16, 7, 8, 1, 2))).astype(np.float32)
    y = np.asarray(with_bn.get_layer("input_bn")(x, training=True))
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2, 3)), 0.0, atol=1e-3)
    np.testing.assert_allclose(y.std(axis=(0, 1, 2, 3)), 1.0, atol=2e-2)

