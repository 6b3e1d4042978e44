"""TF features: vectorised batch against a direct per-window computation with pywt/scipy."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import scipy.stats

from rul_core.signal.cwt import band_frequencies, frequencies_to_scales
from rul_core.signal.features import (
    FEATURE_NAMES,
    histogram_entropy,
    moment_features,
    tf_features,
)

FS = 25600.0


def direct_features(w: np.ndarray, freqs: np.ndarray, bins: int = 3) -> np.ndarray:
    """The authors' per-window recipe, written plainly with pywt, numpy and scipy."""
    scales = 0.81 * FS / freqs
    coef, _ = pywt.cwt(w, scales, "cmor2.0-0.81", sampling_period=1 / FS, method="fft")
    energy_per_scale = (np.abs(coef) ** 2).sum(axis=1)
    counts, _ = np.histogram(w, bins=bins)
    p = counts[counts > 0] / w.size
    return np.array([
        np.log(energy_per_scale.sum()),
        freqs[np.argmax(energy_per_scale)],
        -(p * np.log(p)).sum(),
        scipy.stats.kurtosis(w, fisher=False),
        scipy.stats.skew(w),
        w.mean(),
        w.std(),
    ])


def test_features_match_direct_per_window_computation() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(1000) / FS
    windows = np.stack([
        rng.random(1000),
        np.clip(0.5 + 0.3 * np.sin(2 * np.pi * 90 * t) + rng.normal(0, 0.05, 1000), 0, 1),
        np.clip(0.5 + np.cumsum(rng.normal(0, 0.01, 1000)), 0, 1),
        0.4 + 0.2 * (rng.random(1000) < 0.05),  # sparse impulses: high kurtosis
        rng.beta(0.5, 3, 1000),  # skewed
    ]).astype(np.float32)
    freqs = band_frequencies(2100.0)
    ours = tf_features(windows, FS, freqs, chunk=2)
    assert ours.shape == (5, len(FEATURE_NAMES))
    for i, w in enumerate(windows.astype(np.float64)):
        ref = direct_features(w, freqs)
        np.testing.assert_allclose(ours[i, [0]], ref[[0]], rtol=1e-6, err_msg=f"logE {i}")
        assert ours[i, 1] == ref[1], f"f_d {i}"
        np.testing.assert_allclose(ours[i, 2:], ref[2:], rtol=1e-9, atol=1e-12)


def test_dominant_frequency_finds_a_tone_in_the_band() -> None:
    t = np.arange(1000) / FS
    tone = np.sin(2 * np.pi * 600.0 * t)  # band 200..1800 Hz via explicit f_min/f_max
    freqs = band_frequencies(0.0, n_scales=50, f_min=200.0, f_max=1800.0)
    feats = tf_features(tone[None], FS, freqs)
    scales = frequencies_to_scales(freqs, FS)
    coef, _ = pywt.cwt(tone, scales, "cmor2.0-0.81")
    assert feats[0, 1] == freqs[np.argmax((np.abs(coef) ** 2).sum(1))]
    assert abs(np.log(feats[0, 1] / 600.0)) < np.log(1.1)


def test_hand_computed_entropy_and_moments() -> None:
    # values 0,0,1,1 with 3 bins: two in the first bin, two in the last -> ln 2
    assert histogram_entropy(np.array([[0.0, 0.0, 1.0, 1.0]]))[0] == pytest.approx(np.log(2))
    # 0, 0.5, 1 -> one per bin -> ln 3
    assert histogram_entropy(np.array([[0.0, 0.5, 1.0]]))[0] == pytest.approx(np.log(3))
    assert histogram_entropy(np.array([[0.2, 0.2, 0.2]]))[0] == 0.0
    k, sk, mean, std = moment_features(np.array([[1.0, 2.0, 3.0, 4.0]]))[0]
    # central moments of 1..4: m2 = 1.25, m4 = 2.5625 -> K = 1.64; symmetric -> sk = 0
    assert (k, sk, mean, std) == pytest.approx((1.64, 0.0, 2.5, np.sqrt(1.25)))
    k, sk, _, std = moment_features(np.full((1, 5), 0.3))[0]
    assert (k, sk, std) == (0.0, 0.0, 0.0)  # documented sentinels for a constant window


def test_entropy_matches_numpy_histogram_on_bin_edges() -> None:
    rng = np.random.default_rng(5)
    levels = rng.integers(0, 7, size=(400, 30)) / 6.0  # many values exactly on edges
    for bins in (1, 3, 4, 10):
        ours = histogram_entropy(levels, bins)
        for w, h in zip(levels, ours, strict=True):
            c, _ = np.histogram(w, bins=bins)
            p = c[c > 0] / w.size
            assert h == pytest.approx(-(p * np.log(p)).sum(), abs=1e-12)


def test_entropy_bins_where_the_float_edge_decides() -> None:
    """numpy.histogram bins by its float edges, not by floor((x - min) / (max - min) * bins):
    0.7 lies below linspace(0, 2.1, 4)[1] = 0.7000000000000001 (first bin, where the floor
    says second); 0.3 lies on linspace(0, 1.5, 6)[1] = 0.3 (second bin, where the floor of
    0.3 / 1.5 * 5 = 0.9999999999999999 says first)."""
    below = np.array([0.0, 2.1, 0.7, 1.5])
    assert np.histogram(below, bins=3)[0].tolist() == [2, 0, 2]
    assert histogram_entropy(below[None], 3)[0] == pytest.approx(np.log(2))
    on_edge = np.array([0.0, 1.5, 0.3, 0.75])
    assert np.histogram(on_edge, bins=5)[0].tolist() == [1, 1, 1, 0, 1]
    assert histogram_entropy(on_edge[None], 5)[0] == pytest.approx(np.log(4))


def test_window_shapes_and_the_shortest_window() -> None:
    """Windows are (n, length >= 2): two samples 0, 2 give K = 1, sk = 0, mean 1, std 1;
    one sample or a 3-D array is refused, and so is one NaN among finite values."""
    assert moment_features(np.array([[0.0, 2.0]]))[0] == pytest.approx([1.0, 0.0, 1.0, 1.0])
    for bad in (np.zeros((3, 1)), np.zeros((2, 3, 4))):
        with pytest.raises(ValueError, match="windows: expected"):
            moment_features(bad)
    x = np.full((1, 100), 0.5)
    x[0, 7] = np.nan
    with pytest.raises(ValueError, match="finite"):
        tf_features(x, FS, band_frequencies(1800.0, n_scales=4))


def test_zero_window_and_inputs_untouched() -> None:
    freqs = band_frequencies(1800.0, n_scales=10)
    x = np.zeros((2, 1000), dtype=np.float32)
    x[1] = np.linspace(0, 1, 1000)
    before = x.copy()
    feats = tf_features(x, FS, freqs)
    assert np.isfinite(feats).all()
    assert feats[0, 0] == pytest.approx(np.log(1e-12))
    np.testing.assert_array_equal(x, before)
    with pytest.raises(ValueError, match="finite"):
        tf_features(np.full((1, 100), np.nan), FS, freqs)
    with pytest.raises(ValueError, match="bins"):
        histogram_entropy(x, 0)
