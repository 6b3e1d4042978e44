"""The fast kurtogram (Antoni 2007) against known answers: Gaussian noise reads 0, a tone -1,
impacts ringing a resonance pick the resonance's band, the bands tile [0, fs/2] and each
value is the kurtosis of one filtered, decimated signal, computed here by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rul_core.data.synthetic import synth_run
from rul_core.errors import InputError
from rul_core.signal import kurtogram as kgm
from rul_core.signal import spectrum as sp

FS = 25600.0


def _ringing(n: int, rate: float = 100.0, f0: float = 6000.0, zeta: float = 0.03,
             noise: float = 0.3, seed: int = 0) -> np.ndarray:
    """Unit impulses every 1/rate s, each ringing a resonance at f0 (a damped sine), plus
    Gaussian noise of standard deviation ``noise``, at 25.6 kHz."""
    rng = np.random.default_rng(seed)
    train = np.zeros(n)
    train[int(rng.integers(0, 256))::int(FS / rate)] = 1.0
    decay = zeta * 2 * np.pi * f0
    tau = np.arange(int(6 / decay * FS)) / FS
    kernel = np.exp(-decay * tau) * np.sin(2 * np.pi * f0 * math.sqrt(1 - zeta**2) * tau)
    return np.convolve(train, kernel)[:n] + noise * rng.normal(size=n)


# --------------------------------------------------------------------------- known answers


def test_gaussian_white_noise_reads_zero_in_every_band():
    """Stationary Gaussian noise has a circular complex envelope in every band: kurtosis 0,
    with a spread of about 2/sqrt(M) over M samples (``noise_std``). 2^16 samples to level 6
    (every band at least 1008 samples): over 300 seeds the largest |K| of a map was 5.3 times
    its level's noise_std and the largest level mean 3.9 times its standard error, so the
    bounds below (6 and 4.5) fail by chance far less than once in 300. A filter bank fed the
    real signal instead of its analytic signal passes both halves of the spectrum at its
    edges and reads about +0.18 at level 1 (a non-circular envelope): the level means catch
    that (bound there 0.035)."""
    x = np.random.default_rng(0).normal(size=2**16)
    kg = kgm.kurtogram(x, FS, max_level=6)
    assert kg.levels.size == 12 and kg.snapshots == 1
    for level, k, s in zip(kg.levels, kg.kurtosis, kg.noise_std, strict=True):
        assert np.abs(k).max() <= 6 * s, (level, k)
        assert abs(k.mean()) <= 4.5 * s / math.sqrt(k.size), (level, k.mean())
    assert np.abs(np.concatenate(kg.kurtosis)).max() < 0.4
    # the spread of the deepest level's 64 bands is what noise_std says (within 30 %: the
    # sample standard deviation of 64 values; 0.74-1.31 over the 300 seeds)
    assert 0.7 < kg.kurtosis[-1].std() / kg.noise_std[-1] < 1.3
    np.testing.assert_allclose(kg.noise_std[-1], 2 / math.sqrt(2**16 / 64 - 16))
    assert kg.best.kurtosis == max(k.max() for k in kg.kurtosis)


@pytest.mark.parametrize("n", [2560, 25600])
def test_impacts_ringing_a_6khz_resonance_pick_its_band(n):
    """100 impacts a second, each ringing a 6 kHz resonance (3 % damping), in Gaussian noise:
    the best band holds 6 kHz, its kurtosis stands far above a Gaussian band's spread, and the
    envelope spectrum band-passed there has its largest peak below 500 Hz at 100 Hz. The
    bands away from the resonance (below 3.2 kHz: noise only) read near 0."""
    x = _ringing(n)
    band, kg, note = kgm.suggest_band(x, FS)
    best = kg.best
    assert best.low <= 6000.0 <= best.high and band == (best.low, best.high) and note == ""
    assert best.kurtosis > 1.0 and best.kurtosis > 10 * best.noise_std
    quiet = kg.edges[kg.levels.tolist().index(2.0)]  # level 2: 3.2 kHz bands
    assert quiet[1] == 3200.0 and abs(kg.kurtosis[3][0]) < 5 * kg.noise_std[3]
    spec = sp.envelope_spectrum(x, FS, band)
    top = sp.top_peaks(spec, 1, min_hz=spec.resolution, max_hz=500.0)[0]
    assert abs(top.frequency - 100.0) <= spec.resolution
    # the same signal through the default 2-10 kHz band shows it too, but the kurtogram's
    # band holds the resonance with less noise: a larger line against the same floor
    wide = sp.envelope_spectrum(x, FS, sp.default_band(FS))
    line = round(100.0 / spec.resolution)
    assert spec.values[line] > wide.values[line]


@pytest.mark.parametrize("f0", [4000.0, 9500.0, 11500.0])
def test_the_best_band_follows_the_resonance(f0):
    """The same impacts ringing another resonance: the band follows it, up to the band at
    Nyquist (its upper edge moved inside). The kurtogram finds the most impulsive band, not
    the resonance as such: at 1.5 kHz and 3 % damping each ring lasts a third of the 10 ms
    between impacts, and a band below it, where each impact's onset is shorter, reads
    higher."""
    band, kg, note = kgm.suggest_band(_ringing(25600, f0=f0, noise=0.2, seed=1), FS)
    assert band[0] <= f0 <= band[1], kg.best
    assert ("upper edge 12800 Hz (Nyquist) moved down" in note) == (f0 == 11500.0)
    spec = sp.envelope_spectrum(_ringing(25600, f0=f0, noise=0.2, seed=1), FS, band)
    top = sp.top_peaks(spec, 1, min_hz=spec.resolution, max_hz=500.0)[0]
    assert abs(top.frequency - 100.0) <= spec.resolution


def test_a_tone_reads_minus_one_in_its_band_at_every_level():
    """A complex exponential has a constant modulus: E|c|^4 / (E|c|^2)^2 = 1, kurtosis -1; a
    tone plus circular Gaussian noise of power s2 reads -A^4 / (A^2 + s2)^2. The kurtogram of
    a 3030 Hz sine (on no band edge up to level 7) in faint noise reads -1 in the band holding
    3030 Hz at every level (which also checks that every level's bands are in frequency
    order), and the best band lies elsewhere."""
    n = np.arange(25600)
    tone = 2.5 * np.exp(2j * np.pi * 37 * n / n.size)  # whole periods: its mean is 0
    assert kgm.complex_kurtosis(tone) == pytest.approx(-1.0, abs=1e-12)
    rng = np.random.default_rng(4)
    noise = (rng.normal(size=400_000) + 1j * rng.normal(size=400_000)) / math.sqrt(2)
    tone = 1.5 * np.exp(0.1j * np.arange(400_000))
    assert kgm.complex_kurtosis(tone + noise) == pytest.approx(-1.5**4 / (1.5**2 + 1)**2,
                                                               abs=0.01)
    x = np.sin(2 * np.pi * 3030.0 * n / FS) + 0.01 * rng.normal(size=n.size)
    kg = kgm.kurtogram(x, FS)
    for level, k, edges in zip(kg.levels, kg.kurtosis, kg.edges, strict=True):
        j = int(np.searchsorted(edges, 3030.0)) - 1
        assert edges[j] < 3030.0 < edges[j + 1]
        assert k[j] == pytest.approx(-1.0, abs=0.01), (level, j)
        assert k[j] < 0
    assert not kg.best.low <= 3030.0 <= kg.best.high
    assert kg.best.kurtosis > -0.5


@pytest.mark.parametrize("samples", [2560, 25600])
@pytest.mark.parametrize("rpm", [1500.0, 1800.0, 2100.0, 2400.0])
def test_synthetic_outer_race_fault_shows_at_bpfo_through_the_suggested_band(rpm, samples):
    """The generator's failed snapshot (impacts at BPFO ringing 3 kHz horizontally, 4.2 kHz
    vertically, in noise): its kurtogram stands far above noise, far above the healthy first
    snapshot's, and the envelope spectrum through the suggested band has its largest peak
    below 500 Hz within one bin of BPFO or a harmonic, and BPFO within one bin of one of the
    three largest. A harmonic, as in test_signal_spectrum: where BPFO falls half a bin off
    (1800 rpm, 1 Hz bins: 92.49 Hz) Hann's scalloping (-15 %) lets 2 x BPFO read larger."""
    run = synth_run(n_snapshots=8, samples=samples, rpm=rpm, seed=int(rpm))
    bpfo = sp.LDK_UER204.bpfo(rpm / 60.0)
    for c in range(run.n_channels):
        band, kg, _ = kgm.suggest_band(run.snapshots[-1, :, c], run.fs)
        healthy = kgm.kurtogram(run.snapshots[0, :, c], run.fs)
        assert kg.best.kurtosis > 20 * kg.best.noise_std
        assert kg.best.kurtosis > 5 * max(healthy.best.kurtosis, healthy.best.noise_std)
        spec = sp.envelope_spectrum(run.snapshots[-1, :, c], run.fs, band)
        peaks = sp.top_peaks(spec, 3, min_hz=spec.resolution, max_hz=500.0)
        assert min(abs(peaks[0].frequency - h * bpfo) for h in (1, 2, 3)) <= spec.resolution
        assert any(abs(p.frequency - bpfo) <= spec.resolution for p in peaks), peaks


# --------------------------------------------------------------------------- bookkeeping


def test_levels_bands_and_edges_tile_the_spectrum():
    kg = kgm.kurtogram(np.random.default_rng(2).normal(size=2560), FS)
    assert kg.max_level == 4 == kgm.max_level_for(2560)  # floor(log2 2560) - 7
    third = math.log2(3)
    np.testing.assert_allclose(kg.levels, [0, 1, third, 2, 1 + third, 3, 2 + third, 4])
    assert [k.size for k in kg.kurtosis] == [1, 2, 3, 4, 6, 8, 12, 16]
    for level, edges, width in zip(kg.levels, kg.edges, kg.bandwidths, strict=True):
        assert edges[0] == 0.0 and edges[-1] == FS / 2  # exactly 0 to Nyquist
        np.testing.assert_allclose(np.diff(edges), width, rtol=1e-12)
        assert width == pytest.approx(FS / 2 ** (level + 1))
    np.testing.assert_allclose(kg.centres(1), [3200.0, 9600.0])
    freqs, grid = kg.grid()  # the classic display: 3 x 2^4 columns of 266.7 Hz
    assert grid.shape == (8, 48) and freqs[0] == pytest.approx(FS / 2 / 48 / 2)
    assert freqs[-1] + (freqs[1] - freqs[0]) / 2 == pytest.approx(FS / 2)
    for i, k in enumerate(kg.kurtosis):  # each band repeated over the columns it covers
        cols = np.searchsorted(kg.edges[i], freqs) - 1
        np.testing.assert_array_equal(grid[i], k[cols])
    assert [kgm.max_level_for(n) for n in (255, 256, 32768, 65536)] == [0, 1, 8, 9]


def _analytic(x: np.ndarray) -> np.ndarray:
    """The analytic signal by hand: positive frequencies doubled, negative ones zeroed."""
    n = x.size
    spec = np.fft.fft(x - x.mean())
    weight = np.zeros(n)
    weight[0] = 1.0
    weight[1:(n + 1) // 2] = 2.0
    if n % 2 == 0:
        weight[n // 2] = 1.0
    return np.fft.ifft(spec * weight)


def _kurt(c: np.ndarray, skip: int = 16) -> float:
    c = c[skip:]  # the filter's start-up: len(h) - 1 samples (none at level 0)
    c = c - c.mean()
    return float(np.mean(np.abs(c) ** 4) / np.mean(np.abs(c) ** 2) ** 2 - 2)


def _fir(taps: int, cutoff: float) -> np.ndarray:
    """MATLAB's fir1(taps - 1, cutoff): Hamming-windowed sinc, unit gain at DC."""
    m = np.arange(taps) - (taps - 1) / 2
    h = cutoff * np.sinc(cutoff * m) * (0.54 - 0.46 * np.cos(2 * np.pi * np.arange(taps)
                                                              / (taps - 1)))
    return h / h.sum()


def test_each_value_is_the_kurtosis_of_one_filtered_decimated_band_by_hand():
    """Levels 1, 1.6 and 2 recomputed with numpy from Antoni's filter definitions: the
    quasi-analytic low-pass h (17 taps, cut-off 0.4 x Nyquist, shifted to fs/8), its mirror
    g (3 fs/8), the thirds h1, h2, h3 (25 taps, cut-off 0.8/3, at fs/12, fs/4, 5 fs/12);
    filtering, keeping every 2nd (3rd) output from the 2nd (3rd), the upper branch shifted
    back by (-1)^n (before its kurtosis too, as in Antoni's code: the mean removed is that of
    the shifted signal) and split again."""
    x = _ringing(4096, f0=4000.0, seed=3)
    fb = kgm.filter_bank()
    n17, n25 = np.arange(17), np.arange(25)
    h = _fir(17, 0.4) * np.exp(2j * np.pi * n17 / 8)
    g = h[15::-1] * (-1.0) ** (np.arange(16) + 1)
    h1 = _fir(25, 0.4 * 2 / 3) * np.exp(2j * np.pi * n25 / 12)
    thirds = [h1, h1 * np.exp(2j * np.pi * n25 / 6), h1 * np.exp(2j * np.pi * n25 / 3)]
    for mine, theirs in zip((fb.h, fb.g, fb.h1, fb.h2, fb.h3), (h, g, *thirds), strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-15)

    def filt(taps: np.ndarray, s: np.ndarray, step: int) -> np.ndarray:
        return np.convolve(s, taps)[:s.size][step - 1::step]

    def upper(s: np.ndarray) -> np.ndarray:  # the g branch, shifted back: (-1)^n from n = 1
        out = filt(g, s, 2)
        return out * (-1.0) ** np.arange(1, out.size + 1)

    z = _analytic(x)
    a, d = filt(h, z, 2), upper(z)
    kg = kgm.kurtogram(x, FS)
    np.testing.assert_allclose(kg.kurtosis[0], [_kurt(z, 0)], rtol=1e-9)
    np.testing.assert_allclose(kg.kurtosis[1], [_kurt(a), _kurt(d)], rtol=1e-9)
    np.testing.assert_allclose(kg.kurtosis[2], [_kurt(filt(t, z, 3)) for t in thirds],
                               rtol=1e-9)
    np.testing.assert_allclose(kg.kurtosis[3], [_kurt(f(s)) for s in (a, d)
                                                for f in (lambda s: filt(h, s, 2), upper)],
                               rtol=1e-9)
    # the resonance at 4 kHz: level 2's second band (3.2-6.4 kHz) reads the most there
    assert int(np.argmax(kg.kurtosis[3])) == 1


def test_several_snapshots_average_their_maps():
    stack = np.stack([_ringing(2560, seed=s) for s in range(3)])
    mean = kgm.kurtogram(stack, FS)
    ones = [kgm.kurtogram(row, FS) for row in stack]
    for i in range(mean.levels.size):
        np.testing.assert_allclose(mean.kurtosis[i],
                                   np.mean([o.kurtosis[i] for o in ones], axis=0), rtol=1e-12)
    np.testing.assert_allclose(mean.noise_std, ones[0].noise_std / math.sqrt(3))
    assert mean.snapshots == 3 and ones[0].snapshots == 1
    assert "(mean of 3 snapshots' kurtograms)" in kgm.describe(mean, (1.0, 2.0))
    assert kgm.late_snapshots(10).tolist() == [5, 6, 7, 8, 9]
    assert kgm.late_snapshots(3).tolist() == [0, 1, 2]
    assert kgm.late_snapshots(10, 2).tolist() == [8, 9]
    with pytest.raises(InputError, match="count"):
        kgm.late_snapshots(10, 0)


# --------------------------------------------------------------------------- the band


def test_a_band_at_0_hz_or_nyquist_moves_inside_and_says_so():
    def best(lo: float, hi: float) -> kgm.BestBand:
        return kgm.BestBand(4.0, 0, lo, hi, (lo + hi) / 2, hi - lo, 3.0, 0.1)

    assert kgm.envelope_band(best(0.0, 800.0), FS) == (
        (8.0, 800.0), "lower edge 0 Hz moved up to 8 Hz (a band-pass needs edges strictly "
                      "between 0 Hz and Nyquist)")
    band, note = kgm.envelope_band(best(12000.0, 12800.0), FS)
    assert band == (12000.0, 12792.0) and "upper edge 12800 Hz (Nyquist) moved down" in note
    band, note = kgm.envelope_band(best(0.0, 12800.0), FS)  # level 0: both edges
    assert band == (128.0, 12672.0) and "lower edge" in note and "upper edge" in note
    assert kgm.envelope_band(best(3200.0, 4000.0), FS) == ((3200.0, 4000.0), "")
    # broadband clicks (no resonance) are most impulsive over the whole band: level 0
    clicks = np.zeros(2560)
    clicks[::256] = 5.0
    clicks += np.random.default_rng(0).normal(size=2560) * 0.1
    band, kg, note = kgm.suggest_band(clicks, FS)
    assert kg.best.level == 0.0 and band == (128.0, 12672.0) and note
    assert sp.validate_band(band, FS) == band


@settings(max_examples=60, deadline=None)
@given(fs=st.floats(500.0, 100_000.0), n=st.integers(256, 6000), seed=st.integers(0, 2**16),
       kind=st.sampled_from(["noise", "tone", "clicks", "ringing"]))
def test_the_suggested_band_always_passes_validate_band(fs, n, seed, kind):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    if kind == "tone":
        x += 10 * np.sin(2 * np.pi * rng.uniform(0, fs / 2) * np.arange(n) / fs)
    elif kind == "clicks":
        x[::max(1, int(rng.integers(16, 512)))] += 20.0
    elif kind == "ringing":
        x += 20 * _ringing(n, seed=seed)
    band, kg, note = kgm.suggest_band(x, fs)
    assert sp.validate_band(band, fs) == band
    assert 0 < band[0] < band[1] < fs / 2
    assert kg.best.low <= band[0] < band[1] <= kg.best.high
    assert (note == "") == (kg.best.low > 0 and kg.best.high < fs / 2)
    sp.envelope_spectrum(x, fs, band)  # usable as it is


def test_min_bandwidth_picks_among_wide_enough_bands():
    x = _ringing(25600, seed=5)
    narrowest = kgm.kurtogram(x, FS, min_bandwidth_hz=0.0)
    assert narrowest.best == kgm.kurtogram(x, FS).best
    wide = kgm.kurtogram(x, FS, min_bandwidth_hz=3000.0)
    assert wide.best.bandwidth >= 3000.0 and wide.best.low <= 6000.0 <= wide.best.high
    top = max(k.max() for k, w in zip(wide.kurtosis, wide.bandwidths, strict=True)
              if w >= 3000.0)
    assert wide.best.kurtosis == top
    assert kgm.kurtogram(x, FS, min_bandwidth_hz=FS / 2).best.level == 0.0
    with pytest.raises(InputError, match="min_bandwidth_hz"):
        kgm.kurtogram(x, FS, min_bandwidth_hz=FS)


def test_inputs_are_checked():
    x = np.random.default_rng(0).normal(size=1024)
    with pytest.raises(InputError, match="at least 256 samples"):
        kgm.kurtogram(x[:255], FS)
    assert kgm.kurtogram(x[:256], FS).max_level == 1
    for bad in (0, 4, 1.5):
        with pytest.raises(InputError, match="max_level: expected a whole level from 1 to 3"):
            kgm.kurtogram(x, FS, max_level=bad)
    assert kgm.kurtogram(x, FS, max_level=2).levels.size == 4
    with pytest.raises(InputError, match="NaN"):
        kgm.kurtogram(np.where(np.arange(1024) == 7, np.nan, x), FS)
    with pytest.raises(InputError, match="shape"):
        kgm.kurtogram(x.reshape(2, 2, 256), FS)
    with pytest.raises(InputError, match="no snapshot"):
        kgm.kurtogram(np.zeros((0, 1024)), FS)
    with pytest.raises(InputError, match="fs"):
        kgm.kurtogram(x, 0.0)
    flat = kgm.kurtogram(np.zeros(1024), FS)  # nothing in any band: 0, not NaN
    assert all((k == 0).all() for k in flat.kurtosis)


def test_describe_names_the_band_its_spread_and_what_it_cannot_show():
    band, kg, note = kgm.suggest_band(_ringing(2560), FS)
    text = kgm.describe(kg, band, note, max_hz=1000.0)
    assert text.startswith(f"Largest kurtosis {kg.best.kurtosis:.3g} at level 3.6: 5333–6400 "
                           "Hz (centre 5867 Hz, 1067 Hz wide); a band of Gaussian noise at "
                           "this level reads 0 ± 0.14. Suggested band-pass 5333.33–6400 Hz.")
    assert "cannot show" not in text
    narrow = kgm.describe(kg, band, note, max_hz=2000.0)
    assert narrow.endswith("holds modulation up to about its width, 1067 Hz: lines above that "
                           "cannot show.")


def test_real_femto_bearing_is_impulsive_at_failure(real_data_dir):
    """FEMTO Learning_set Bearing1_1 (real, horizontal): the kurtogram of its failed last
    snapshot reads many times that of its first, in a band that passes validate_band."""
    acc = np.load(real_data_dir / "femto_npz" / "Learning_set__Bearing1_1.npz")["acc"]
    first = kgm.kurtogram(acc[0, :, 0] / 1000.0, FS)
    band, last, _ = kgm.suggest_band(acc[-1, :, 0] / 1000.0, FS)
    assert last.best.kurtosis > 5 * first.best.kurtosis
    assert last.best.kurtosis > 50 * last.best.noise_std
    assert sp.validate_band(band, FS) == band
