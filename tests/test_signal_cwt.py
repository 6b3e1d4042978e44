"""Batched FFT CWT against pywt.cwt on the same wavelet and scales."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import pywt

from rul_core.signal.cwt import (
    CwtPlan,
    WaveletLongerThanWindowWarning,
    band_frequencies,
    band_warning_message,
    coi_frequency,
    cone_of_influence,
    cwt,
    frequencies_to_scales,
    scalogram,
    wavelet_name,
)

FS = 25600.0


def pywt_batch(x: np.ndarray, scales: np.ndarray, method: str = "fft") -> np.ndarray:
    coef, _ = pywt.cwt(x, scales, "cmor2.0-0.81", sampling_period=1 / FS, method=method, axis=-1)
    return np.moveaxis(coef, 0, 1)  # (n, scales, N)


def test_band_and_scales_follow_the_spec() -> None:
    f = band_frequencies(2100.0)
    assert f.shape == (100,)
    assert f[0] == pytest.approx(35.0 / 3) and f[-1] == pytest.approx(105.0)
    assert np.allclose(np.diff(np.log(f)), np.log(9) / 99)
    a = frequencies_to_scales(f, FS)
    assert a[0] == pytest.approx(0.81 * FS / (35.0 / 3))
    assert wavelet_name() == "cmor2.0-0.81"
    # pywt itself reports 0.8125 * fs / a: 0.3 % above our nominal frequencies
    _, pf = pywt.cwt(np.zeros(8), a[:2], "cmor2.0-0.81", sampling_period=1 / FS)
    assert np.allclose(pf / f[:2], 0.8125 / 0.81)
    with pytest.raises(ValueError, match="rpm"):
        band_frequencies(0.0)


def test_band_and_scale_limits_by_hand() -> None:
    """f_min alone keeps f_max = 3 f_o; a shaft below 1 rpm is valid; explicit bounds need
    no rpm, may lie below 1 Hz and one scale is f_min; empty, zero-based or infinite bands
    and fractional or zero scale counts are refused. Scales a = 0.81 fs / f accept fs and f
    below 1 Hz and f up to (not including) fs / 2."""
    # rpm 600: f_o = 10 Hz, f_max = 30; log-spaced 5, sqrt(5 * 30), 30
    np.testing.assert_allclose(band_frequencies(600.0, n_scales=3, f_min=5.0),
                               [5.0, np.sqrt(150.0), 30.0])
    np.testing.assert_allclose(band_frequencies(0.6, n_scales=2), [0.01 / 3, 0.03])
    np.testing.assert_allclose(band_frequencies(0.0, n_scales=3, f_min=0.5, f_max=2.0),
                               [0.5, 1.0, 2.0])
    np.testing.assert_allclose(band_frequencies(0.0, n_scales=1, f_min=2.0, f_max=8.0), [2.0])
    for f_min, f_max in ((0.0, 10.0), (5.0, 5.0), (1.0, np.inf)):
        with pytest.raises(ValueError, match="band"):
            band_frequencies(0.0, f_min=f_min, f_max=f_max)
    for n in (0, 2.5):
        with pytest.raises(ValueError, match="n_scales"):
            band_frequencies(2100.0, n_scales=n)  # type: ignore[arg-type]
    np.testing.assert_allclose(frequencies_to_scales(np.array([0.1]), 0.5), [4.05])
    np.testing.assert_allclose(frequencies_to_scales(np.array([40.0]), 100.0), [2.025])
    for fs in (0.0, np.inf):
        with pytest.raises(ValueError, match="fs: expected"):
            frequencies_to_scales(np.array([1.0]), fs)
    for f in ([0.0, 10.0], [10.0, 50.0]):
        with pytest.raises(ValueError, match="frequencies"):
            frequencies_to_scales(np.array(f), 100.0)


def test_tiny_scales_and_windows_match_pywt() -> None:
    """Scales below one sample down to pywt's two-tap limit (0.1) and a two-sample window
    match pywt; a one-tap scale (0.05, pywt: "too small") and a zero or negative scale
    among valid ones are refused, as is a window of the wrong length for energies."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 16))
    for scales, data in ((np.array([0.1, 0.5]), x), (np.array([1.0, 3.0]), x[:, :2])):
        ref = pywt_batch(data, scales, "conv")
        assert np.abs(cwt(data, scales) - ref).max() <= 1e-10 * np.abs(ref).max()
    with pytest.raises(ValueError, match="too small"):
        CwtPlan(16, np.array([0.05]))
    for bad in ([0.0, 5.0], [-1.0, 5.0]):
        with pytest.raises(ValueError, match="positive"):
            CwtPlan(16, np.array(bad))
    with pytest.raises(ValueError, match="x: expected"):
        CwtPlan(10, np.array([5.0])).energies(np.zeros((2, 11)))


@pytest.mark.parametrize("method", ["fft", "conv"])
def test_double_precision_matches_pywt(method: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((3, 1000))
    scales = frequencies_to_scales(band_frequencies(2100.0, n_scales=12), FS)
    ref = pywt_batch(x, scales, method)
    ours = CwtPlan(1000, scales, dtype=np.complex128).coefficients(x)
    assert ours.shape == ref.shape == (3, 12, 1000)
    assert np.abs(ours - ref).max() <= 1e-10 * np.abs(ref).max()


def test_single_precision_and_energies_match_pywt() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.random((4, 1000)), np.cumsum(rng.normal(size=(2, 1000)), 1)])
    scales = frequencies_to_scales(band_frequencies(1800.0), FS)
    ref = pywt_batch(x, scales)
    plan = CwtPlan(1000, scales)  # complex64, the feature path
    assert np.abs(plan.coefficients(x) - ref).max() <= 2e-5 * np.abs(ref).max()
    e_ref = (np.abs(ref) ** 2).sum(-1)
    e = plan.energies(x, chunk=4)
    np.testing.assert_allclose(e, e_ref, rtol=1e-5)


def test_small_scales_short_filters_and_other_lengths() -> None:
    rng = np.random.default_rng(2)
    for n in (17, 300):
        x = rng.normal(size=(2, n))
        scales = np.array([1.5, 3.0, 10.0, 40.0, 400.0])
        ref = pywt_batch(x, scales, "conv")
        ours = cwt(x, scales)
        assert np.abs(ours - ref).max() <= 1e-10 * np.abs(ref).max()
    one = cwt(x[0], scales)
    assert one.shape == (5, 300)


def test_reproduces_pywt_discretisation_not_an_idealised_morlet() -> None:
    """A sampled analytic Morlet differs from pywt by >5 % of max|coef|; we match pywt."""
    rng = np.random.default_rng(3)
    x = rng.random(1000)
    for a in (200.0, 1700.0):
        ref = pywt_batch(x[None], np.array([a]))[0, 0]
        t = np.arange(-8 * a, 8 * a + 1) / a
        psi = np.exp(-(t**2) / 2) * np.exp(2j * np.pi * 0.81 * t) / np.sqrt(2 * np.pi)
        full = np.convolve(x, np.conj(psi)[::-1]) / np.sqrt(a)
        clean = full[(psi.size - 1) // 2 : (psi.size - 1) // 2 + 1000]
        assert np.abs(clean - ref).max() > 0.05 * np.abs(ref).max()
        assert np.abs(cwt(x, np.array([a]))[0] - ref).max() < 1e-10 * np.abs(ref).max()


def test_cone_of_influence_and_window_warning() -> None:
    scales = np.array([2.0, 100.0])
    coi = cone_of_influence(1000, scales)
    assert coi[0, :3].all() and not coi[0, 3] and not coi[0, 500]
    assert coi[1, 141] and not coi[1, 142] and coi[1, 1000 - 1 - 141]  # sqrt(2)*100 = 141.4
    msg = band_warning_message(1000, FS, 35.0 / 3)
    assert msg is not None and "1000 samples" in msg and "cone of influence" in msg
    assert band_warning_message(1000, FS, 2000.0) is None  # 2*sqrt(2)*10.4 < 1000
    with pytest.warns(WaveletLongerThanWindowWarning):
        sg = scalogram(np.random.default_rng(0).random(1000), FS, band_frequencies(2100.0, 20))
    assert sg.magnitude.shape == (20, 1000) and sg.warning == msg
    assert sg.coi_mask[0].all()  # lowest frequency (11.7 Hz): every coefficient edge-affected
    assert not sg.coi_mask[-1, 500]  # 105 Hz: sqrt(2) * 197 = 279 samples < 500
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short = scalogram(np.random.default_rng(0).random(4000), FS, np.array([2000.0, 4000.0]))
    assert short.warning is None and not short.coi_mask[:, 2000].any()


def test_cone_of_influence_edges_by_hand() -> None:
    """The cone is dist < sqrt(2) a with dist = min(t, N - 1 - t) samples, strict at both
    edges (a = 10 / sqrt(2): exactly 10 samples); its lowest trustworthy frequency is
    0.81 fs sqrt(2) / dist, inf on the edge samples."""
    coi = cone_of_influence(100, np.array([10 / np.sqrt(2)]))[0]
    assert coi[9] and not coi[10] and not coi[89] and coi[90]
    assert coi.sum() == 20
    # N = 6, fs = 100: dist 0, 1, 2, 2, 1, 0 -> 0.81 * 100 * sqrt(2) / dist
    c = 0.81 * 100 * np.sqrt(2)
    np.testing.assert_allclose(coi_frequency(6, 100.0), [np.inf, c, c / 2, c / 2, c, np.inf])
    assert coi_frequency(6, 100.0)[2] == pytest.approx(57.27565, abs=1e-5)


def test_band_warning_boundary_and_shortest_scalogram() -> None:
    """A wavelet spanning exactly the window (2 sqrt(2) 0.81 fs / f_min = 2560 samples at
    f_min = 22.9 Hz) already warns; a two-sample signal has a scalogram equal to pywt's;
    a 2-D or one-sample signal is refused."""
    f_exact = 2 * np.sqrt(2) * 0.81 * FS / 2560
    assert band_warning_message(2560, FS, f_exact) is not None
    assert band_warning_message(2560, FS, f_exact * 1.001) is None
    x = np.array([0.0, 1.0])
    with pytest.warns(WaveletLongerThanWindowWarning):
        sg = scalogram(x, FS, np.array([5000.0]))
    ref = np.abs(pywt_batch(x[None], frequencies_to_scales(np.array([5000.0]), FS))[0])
    assert np.abs(sg.magnitude - ref).max() <= 1e-10 * ref.max()
    for bad in (np.zeros((2, 3)), np.zeros(1)):
        with pytest.raises(ValueError, match="signal"):
            scalogram(bad, FS, np.array([5000.0]))


def test_scalogram_of_a_whole_snapshot_matches_pywt() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=2560)
    f = band_frequencies(1800.0, n_scales=5)
    with pytest.warns(WaveletLongerThanWindowWarning):
        sg = scalogram(x, FS, f)
    ref = np.abs(pywt_batch(x[None], frequencies_to_scales(f, FS))[0])
    assert np.abs(sg.magnitude - ref).max() <= 1e-10 * ref.max()
    np.testing.assert_allclose(sg.times[1], 1 / FS)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="n_samples"):
        CwtPlan(1, np.array([10.0]))
    with pytest.raises(ValueError, match="scales"):
        CwtPlan(10, np.array([-1.0]))
    with pytest.raises(ValueError, match="x: expected"):
        CwtPlan(10, np.array([5.0])).coefficients(np.zeros((2, 11)))
    with pytest.raises(ValueError, match="frequencies"):
        frequencies_to_scales(np.array([20000.0]), FS)
