"""Filters, normaliser, windows, noise and the pipeline contract."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from rul_core.data.run import Condition, Run
from rul_core.errors import Cancelled
from rul_core.progress import CancelToken, ProgressEvent
from rul_core.signal import noise
from rul_core.signal.filters import gaussian_filter
from rul_core.signal.normalise import Normaliser
from rul_core.signal.pipeline import (
    PipelineConfig,
    WindowSet,
    extract_windows,
    fit_normaliser,
    window_signals,
)
from rul_core.signal.raster import imr_pair_counts
from rul_core.signal.windows import make_windows, window_positions, windows_per_snapshot

FEMTO_NPZ = Path(__file__).resolve().parents[1] / "../shared/data/real/femto_npz"


def small_run(n_snap: int = 4, samples: int = 2560, seed: int = 0, name: str = "B") -> Run:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 25600.0
    sig = np.sin(2 * np.pi * 90 * t)[None, :, None] * np.linspace(1, 3, n_snap)[:, None, None]
    x = sig + rng.normal(0, 0.3, (n_snap, samples, 2))
    return Run(name, x.astype(np.float32), 25600.0, ["horizontal", "vertical"],
               Condition(1800.0, 4000.0))


# --- filters -----------------------------------------------------------------------------
def test_gaussian_filter_is_scipys_along_samples_only() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 200, 2)).astype(np.float32)
    before = x.copy()
    y = gaussian_filter(x, 1.1, axis=1)
    np.testing.assert_allclose(y, gaussian_filter1d(x, 1.1, axis=1), rtol=1e-6)
    np.testing.assert_array_equal(x, before)
    # an impulse in snapshot 0 does not leak into snapshot 1
    imp = np.zeros((2, 50, 1), np.float32)
    imp[0, 49, 0] = 1
    assert gaussian_filter(imp, 2.0, axis=1)[1].sum() == 0
    np.testing.assert_array_equal(gaussian_filter(x, None), x)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_filter(x, -1.0)


def test_gaussian_filter_defaults_and_small_sigmas() -> None:
    """The default axis -2 is the sample axis of (snapshots, samples, channels) and of
    (samples, channels); sigmas 0.5 and 1 smooth like scipy; 0 returns a float32 copy; a 1-D
    signal filters along axis 0; a scalar and an infinite sigma are refused."""
    x = np.random.default_rng(1).normal(size=(2, 40, 3)).astype(np.float32)
    for sigma in (0.5, 1.0):
        np.testing.assert_allclose(gaussian_filter(x, sigma), gaussian_filter1d(x, sigma, axis=1),
                                   rtol=1e-6)
    np.testing.assert_allclose(gaussian_filter(x[0], 1.0), gaussian_filter1d(x[0], 1.0, axis=0),
                               rtol=1e-6)
    same = gaussian_filter(x.astype(np.float64), 0)
    assert same.dtype == np.float32
    np.testing.assert_array_equal(same, x)
    line = np.array([0.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(gaussian_filter(line, 1.0, axis=0), gaussian_filter1d(line, 1.0),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="scalar"):
        gaussian_filter(np.float32(1.0), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_filter(x, np.inf)


# --- normaliser --------------------------------------------------------------------------
def test_normaliser_fit_transform_clip_and_round_trip() -> None:
    a = np.array([[[0.0, 10.0], [2.0, 10.0]]])
    b = np.array([[[4.0, 10.0], [1.0, 10.0]]])
    norm = Normaliser.fit([a, b], ["h", "v"])
    assert norm.minimum == (0.0, 10.0) and norm.maximum == (4.0, 10.0)
    x = np.array([[-2.0, 10.0], [1.0, 99.0], [8.0, -5.0]])
    before = x.copy()
    y = norm.transform(x)
    np.testing.assert_allclose(y, [[0.0, 0.5], [0.25, 0.5], [1.0, 0.5]])  # constant -> 0.5
    np.testing.assert_array_equal(x, before)
    assert y.dtype == np.float32
    again = Normaliser.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm
    with pytest.raises(ValueError, match="channels"):
        norm.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        Normaliser.fit([np.array([[np.nan, 1.0]])])
    with pytest.raises(ValueError, match="minimum"):
        Normaliser.from_dict({"maximum": [1.0]})


# --- windows -----------------------------------------------------------------------------
def test_windows_within_snapshots_with_positions() -> None:
    x = np.arange(2 * 10 * 1, dtype=np.float32).reshape(2, 10, 1)
    w, snap, off = make_windows(x, 4, 3)
    assert w.shape == (6, 4, 1)
    assert snap.tolist() == [0, 0, 0, 1, 1, 1] and off.tolist() == [0, 3, 6, 0, 3, 6]
    np.testing.assert_array_equal(w[4, :, 0], [13, 14, 15, 16])  # never crosses snapshots
    one, _, _ = make_windows(x[0], 4, 3)
    assert np.shares_memory(one, x)  # a strided view, no copy
    assert windows_per_snapshot(32768) == 64 and windows_per_snapshot(2560) == 4
    assert windows_per_snapshot(999) == 0
    snap, o = window_positions(2, 2560)
    assert snap.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert o.tolist() == [0, 500, 1000, 1500] * 2
    with pytest.raises(ValueError, match="stride"):
        make_windows(x, 4, 0)


def test_windows_of_length_and_stride_one_and_an_exact_fit() -> None:
    """Length 1 and stride 1 are valid; a snapshot exactly one window long holds one
    window; a length or stride that is not a whole number >= 1 is refused."""
    assert windows_per_snapshot(3, 1, 1) == 3
    assert windows_per_snapshot(1000) == 1 and windows_per_snapshot(1000, 1000, 1) == 1
    for length, stride, name in ((0, 1, "length"), (1.5, 1, "length"), (4, 0, "stride"),
                                 (4, 0.5, "stride")):
        with pytest.raises(ValueError, match=name):
            windows_per_snapshot(10, length, stride)  # type: ignore[arg-type]


# --- noise -------------------------------------------------------------------------------
@pytest.mark.parametrize("func", [noise.uniform_noise, noise.gaussian_noise,
                                  noise.salt_and_pepper])
def test_noise_is_pure_seeded_and_scaled(func) -> None:
    x = np.random.default_rng(0).random((50, 400)).astype(np.float32)
    before = x.copy()
    a = func(x, 1.0, 7)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(a, func(x, 1.0, 7))
    assert not np.array_equal(a, func(x, 1.0, 8))
    np.testing.assert_array_equal(func(x, 0.0, 7), x)
    assert a.dtype == x.dtype and a.shape == x.shape


def test_noise_statistics_follow_the_papers() -> None:
    x = np.full(200_000, 0.5)
    d = noise.uniform_noise(x, 1.0, 0) - x
    assert d.min() >= -0.003 and d.max() <= 0.05 and abs(d.mean() - 0.0235) < 5e-4
    d2 = noise.uniform_noise(x, 2.0, 0) - x
    np.testing.assert_allclose(d2, 2 * d)  # severity multiplies the amplitude
    g = noise.gaussian_noise(x, 1.0, 0) - x
    assert abs(g.std() - 0.03) < 5e-4 and abs(g.mean()) < 5e-4
    g2 = noise.gaussian_noise(x, 1.0, 0, sigma=noise.CARLE_GAUSSIAN_SIGMA) - x
    assert abs(g2.std() - 0.1) < 1e-3
    y = np.linspace(0.2, 0.8, 200_000)
    sp = noise.salt_and_pepper(y, 1.0, 0)
    assert abs(np.mean(sp == 0.8) - 0.10) < 0.005 and abs(np.mean(sp == 0.2) - 0.20) < 0.005
    sp2 = noise.salt_and_pepper(y, 2.0, 0)
    assert abs(np.mean(sp2 == 0.8) - 0.20) < 0.005 and abs(np.mean(sp2 == 0.2) - 0.40) < 0.005
    with pytest.raises(ValueError, match="severity"):
        noise.gaussian_noise(x, -1.0)


def test_noise_model_is_independent_of_chunking() -> None:
    model = noise.NoiseModel("gaussian", severity=1.0, seed=3)
    x = np.random.default_rng(1).random((6, 100, 2)).astype(np.float32)
    whole = model(x, np.arange(6))
    parts = np.concatenate([model(x[:2], np.arange(2)), model(x[2:], np.arange(2, 6))])
    np.testing.assert_array_equal(whole, parts)
    with pytest.raises(ValueError, match="kind"):
        noise.NoiseModel("pink")


def test_noise_by_hand_with_the_generator() -> None:
    """Each kind at the default severity 1 is the signal plus the documented draw from
    numpy's default_rng(seed): sign, scale and mean cannot drift. sigma 0 is a pure shift
    by mean * severity; one sample is a valid signal, none is not; low must be < high."""
    x = np.linspace(0.0, 1.0, 50)
    u = np.random.default_rng(3).uniform(-0.003, 0.05, 50)
    np.testing.assert_array_equal(noise.uniform_noise(x, seed=3), x + u)
    g = np.random.default_rng(3).normal(0.0, 0.03, 50)
    np.testing.assert_array_equal(noise.gaussian_noise(x, seed=3), x + g)
    np.testing.assert_allclose(noise.gaussian_noise(x, 2.0, 0, sigma=0.0, mean=0.1), x + 0.2)
    r = np.random.default_rng(3).random(50)  # salt below 0.1, pepper in [0.1, 0.3)
    expected = np.where(r < 0.1, 1.0, np.where(r < 0.3, 0.0, x))
    np.testing.assert_array_equal(noise.salt_and_pepper(x, seed=3), expected)
    np.testing.assert_array_equal(noise.uniform_noise(np.array([0.5]), 0.0), [0.5])
    with pytest.raises(ValueError, match="non-empty"):
        noise.uniform_noise(np.array([]))
    with pytest.raises(ValueError, match="low/high"):
        noise.uniform_noise(x, low=0.1, high=0.1)


def test_salt_and_pepper_fractions_at_their_limits() -> None:
    """Fractions 0 and 1 are valid; salt + pepper = 1 replaces every sample; above 1 the
    fractions are scaled to sum to 1 (severity 5: 0.5 + 1.0 -> 1/3 salt, 2/3 pepper)."""
    x = np.linspace(0.0, 1.0, 50)
    r = np.random.default_rng(4).random(50)
    np.testing.assert_array_equal(noise.salt_and_pepper(x, 1.0, 4, salt=0.0, pepper=1.0),
                                  np.zeros(50))
    np.testing.assert_array_equal(noise.salt_and_pepper(x, 1.0, 4, salt=1.0, pepper=0.0),
                                  np.ones(50))
    np.testing.assert_array_equal(noise.salt_and_pepper(x, 1.0, 4, salt=0.4, pepper=0.6),
                                  np.where(r < 0.4, 1.0, 0.0))
    np.testing.assert_array_equal(noise.salt_and_pepper(x, 5.0, 4), np.where(r < 1 / 3, 1.0, 0.0))
    for salt, pepper in ((-0.1, 0.1), (1.1, 0.0), (0.1, -0.1), (0.0, 1.1)):
        with pytest.raises(ValueError, match="salt/pepper"):
            noise.salt_and_pepper(x, 1.0, 4, salt=salt, pepper=pepper)


def test_noise_model_defaults_seed_each_snapshot_and_channel() -> None:
    """Defaults severity 1 and seed 0; without snapshot_index the snapshots are numbered
    0, 1, ...; each (snapshot, channel) draws from default_rng([seed, snapshot, channel])."""
    x = np.random.default_rng(1).random((3, 20, 2)).astype(np.float32)
    out = noise.NoiseModel("uniform")(x)
    for snap in range(3):
        for ch in range(2):
            rng = np.random.default_rng([0, snap, ch])
            np.testing.assert_array_equal(out[snap, :, ch],
                                          noise.uniform_noise(x[snap, :, ch], 1.0, rng))


def test_noise_augmentation_defaults_seeds_and_description() -> None:
    """Defaults severity 1 and one copy; a severity below 1 is valid, 0, inf and copies 0 or
    1.5 are not; the training seed counts modulo 2**32; describe() names one copy in words."""
    aug = noise.NoiseAugmentation("gaussian")
    assert (aug.severity, aug.copies) == (1.0, 1)
    assert noise.NoiseAugmentation("uniform", 0.5).severity == 0.5
    for kwargs in ({"kind": "pink"}, {"severity": 0.0}, {"severity": np.inf}, {"copies": 0},
                   {"copies": 1.5}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            noise.NoiseAugmentation(**{"kind": "gaussian", **kwargs})
    model = aug.noise_model(-1, 1, "Bearing1_1")
    assert (model.kind, model.severity) == ("gaussian", 1.0)
    assert model.seed == aug.noise_model(2**32 - 1, 1, "Bearing1_1").seed
    assert model.seed != aug.noise_model(0, 1, "Bearing1_1").seed
    assert noise.NoiseAugmentation.from_dict({"kind": "uniform"}) == noise.NoiseAugmentation(
        "uniform", 1.0, 1)
    assert aug.describe() == "one noisy copy of each training run with gaussian noise at severity 1"


# --- pipeline ----------------------------------------------------------------------------
def test_config_round_trip_and_hash() -> None:
    cfg = PipelineConfig(gaussian_sigma=1.1)
    assert PipelineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.hash() != PipelineConfig().hash() and cfg.image_columns == 500
    with pytest.raises(ValueError, match="unknown"):
        PipelineConfig.from_dict({"window": 3})
    with pytest.raises(ValueError, match="stride"):
        PipelineConfig(stride=0)


def test_extract_windows_contract_and_consistency() -> None:
    run = small_run()
    cfg = PipelineConfig(gaussian_sigma=1.1, n_scales=20)
    norm = fit_normaliser([run], cfg)
    events: list[ProgressEvent] = []
    with pytest.warns(UserWarning, match="cone of influence"):
        ws = extract_windows(run, norm, cfg, progress=events.append)
    n = 4 * 4
    assert ws.images.shape == (n, 64, 500) and ws.images.dtype == np.uint8
    assert ws.tf.shape == (n, 2, 7) and ws.tf.dtype == np.float32
    assert ws.snapshot_index.tolist() == np.repeat(np.arange(4), 4).tolist()
    assert ws.offset.tolist() == [0, 500, 1000, 1500] * 4
    assert events[-1].done == events[-1].total == n
    sig = window_signals(run, norm, cfg)
    assert sig.shape == (n, 1000, 2) and sig.dtype == np.float32
    assert sig.min() >= 0.0 and sig.max() <= 1.0
    np.testing.assert_array_equal(ws.images, imr_pair_counts(sig[:, :, 0]))
    from rul_core.signal.features import tf_features

    ref = tf_features(sig[:, :, 1], run.fs, cfg.frequencies(1800.0))
    np.testing.assert_allclose(ws.tf[:, 1], ref.astype(np.float32), rtol=1e-6)
    # window k of snapshot 2 is exactly the filtered, normalised samples
    filt = norm.transform(gaussian_filter(run.snapshots, 1.1, axis=1))
    np.testing.assert_array_equal(sig[2 * 4 + 1], filt[2, 500:1500])
    sub = window_signals(run, norm, cfg, snapshot_idx=[2])
    np.testing.assert_array_equal(sub, sig[8:12])
    # a negative index is the same snapshot, with the same noise
    salt = noise.NoiseModel("salt_and_pepper", seed=3)
    np.testing.assert_array_equal(window_signals(run, norm, cfg, snapshot_idx=[-1], noise=salt),
                                  window_signals(run, norm, cfg, snapshot_idx=[3], noise=salt))
    with pytest.raises(ValueError, match=r"expected indices in \[-4, 3\], got -5"):
        window_signals(run, norm, cfg, snapshot_idx=[-5])
    # model inputs
    assert ws.image_input([0, 3]).shape == (2, 64, 500, 1)
    np.testing.assert_allclose(ws.image_input([0])[0, :, :, 0], ws.images[0] / 2)
    tfi = ws.tf_input(["vertical", "horizontal"], [5])
    assert tfi.shape == (1, 14, 1)
    np.testing.assert_array_equal(tfi[0, :7, 0], ws.tf[5, 1])
    np.testing.assert_array_equal(tfi[0, 7:, 0], ws.tf[5, 0])
    assert ws.tf_input([1]).shape == (n, 7, 1)


def test_extract_windows_limited_to_a_models_tf_channels_is_bit_identical() -> None:
    """tf_channels=[1] (Multimodal-RUL reads the vertical channel only) computes that
    channel's features alone, its rows split between threads in blocks of 256 windows, and
    gives exactly the full extraction's numbers (baseline standardisation included); the
    other channel is NaN."""
    from rul_core.signal.pipeline import _tf_jobs

    assert _tf_jobs(512, [1], 2) == [(1, 0, 256), (1, 256, 512)]
    assert _tf_jobs(300, [1], 2) == [(1, 0, 256), (1, 256, 300)]
    assert _tf_jobs(88, [1], 2) == [(1, 0, 88)]
    assert _tf_jobs(512, [0, 1], 2) == [(0, 0, 512), (1, 0, 512)]
    assert _tf_jobs(512, [0], 1) == [(0, 0, 512)]
    run = small_run(n_snap=150)  # 600 windows: a chunk of 512 (two row blocks), one of 88
    cfg = PipelineConfig(n_scales=8, baseline_snapshots=3)
    norm = fit_normaliser([run], cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = extract_windows(run, norm, cfg)
        one = extract_windows(run, norm, cfg, tf_channels=[1])
        with pytest.raises(ValueError, match="tf_channels"):
            extract_windows(run, norm, cfg, tf_channels=[2])
    assert np.isfinite(full.tf).all() and np.isnan(one.tf[:, 0]).all()
    np.testing.assert_array_equal(one.tf[:, 1], full.tf[:, 1])
    np.testing.assert_array_equal(one.images, full.images)
    np.testing.assert_array_equal(one.snapshot_index, full.snapshot_index)


def test_extract_windows_noise_cancel_save_and_errors(tmp_path: Path) -> None:
    run = small_run(n_snap=3)
    cfg = PipelineConfig(n_scales=10)
    norm = fit_normaliser([run], cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = extract_windows(run, norm, cfg)
        noisy = extract_windows(run, norm, cfg, noise=noise.NoiseModel("gaussian", 1.0, 0))
        token = CancelToken()
        token.cancel()
        with pytest.raises(Cancelled):
            extract_windows(run, norm, cfg, cancel=token)
    assert not np.array_equal(clean.tf, noisy.tf)
    np.testing.assert_allclose(noisy.tf[:, :, 6], clean.tf[:, :, 6], atol=0.02)
    clean.save(tmp_path / "r.npz", config=cfg.to_dict())
    back, meta = WindowSet.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.images, clean.images)
    np.testing.assert_array_equal(back.tf, clean.tf)
    assert meta["config"] == cfg.to_dict() and back.channel_names == ("horizontal", "vertical")
    with pytest.raises(ValueError, match="channels"):
        extract_windows(run, Normaliser((0.0,), (1.0,)), cfg)
    with pytest.raises(ValueError, match="window_length"):
        extract_windows(run, norm, PipelineConfig(window_length=5000))


@pytest.mark.skipif(not (FEMTO_NPZ / "Learning_set__Bearing3_1.npz").exists(),
                    reason="real FEMTO data (../shared/data/real) not available")
def test_real_femto_bearing_first_snapshots() -> None:
    with np.load(FEMTO_NPZ / "Learning_set__Bearing3_1.npz") as data:
        acc = data["acc"][:6].astype(np.float32) / 1000.0
    run = Run("Bearing3_1", acc, 25600.0, ["horizontal", "vertical"],
              Condition(1500.0, 5000.0))
    cfg = PipelineConfig(gaussian_sigma=1.1)
    norm = fit_normaliser([run], cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ws = extract_windows(run, norm, cfg)
    assert ws.images.shape == (24, 64, 500) and np.isfinite(ws.tf).all()
    # every column pair holds at least one lit pixel (the polyline is connected)
    assert (ws.images.sum(axis=1) >= 1).all()
    assert (ws.tf[:, :, 1] >= 25 / 3 - 1e-3).all() and (ws.tf[:, :, 1] <= 75 + 1e-3).all()


def test_features_cli_writes_and_resumes(tmp_path: Path, monkeypatch, capsys) -> None:
    import argparse

    from rul_core.cli import features_cmd
    from rul_core.data.synthetic import write_dataset

    monkeypatch.setenv("RUL_WORKSPACE", str(tmp_path / "ws"))
    src = write_dataset(tmp_path / "data", "femto", n_bearings=1, n_snapshots=3, samples=2560,
                        seed=0)
    parser = argparse.ArgumentParser()
    features_cmd.register(parser.add_subparsers())
    argv = ["features", str(src), "--out", str(tmp_path / "out"), "--scales", "8"]
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert args.func(args) == 0
        manifest = json.loads((tmp_path / "out" / "features.json").read_text())
        (name,) = manifest["runs"]
        ws, meta = WindowSet.load(tmp_path / "out" / manifest["runs"][name]["file"])
        assert ws.images.shape == (12, 64, 500) and ws.tf.shape == (12, 2, 7)
        assert meta["config"]["n_scales"] == 8
        assert capsys.readouterr().err.count("written") == 1
        args = parser.parse_args(argv)
        assert args.func(args) == 0
        assert "skipped (up to date)" in capsys.readouterr().err
        bad = parser.parse_args([*argv, "--runs", "nope"])
        assert bad.func(bad) == 2
