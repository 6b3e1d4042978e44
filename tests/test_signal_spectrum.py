"""Amplitude and envelope spectra, the spectrum over life and the fault frequencies, against
known answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rul_core.data.synthetic import synth_run
from rul_core.errors import Cancelled, InputError
from rul_core.progress import CancelToken
from rul_core.signal import spectrum as sp

FS = 25600.0


def _t(n: int) -> np.ndarray:
    return np.arange(n) / FS


# --------------------------------------------------------------------------- amplitude


def test_a_sine_on_a_bin_reads_its_amplitude_at_its_frequency():
    # 2560 samples at 25.6 kHz: 10 Hz bins; 1230 Hz is bin 123. DC 0.5 reads 0.5 (not doubled).
    x = 0.5 + 1.7 * np.sin(2 * np.pi * 1230.0 * _t(2560) + 0.3)
    spec = sp.amplitude_spectrum(x, FS)
    assert spec.resolution == 10.0 and spec.freqs.size == 1281 and spec.unit == "g (peak)"
    peak = int(np.argmax(spec.values[1:])) + 1
    assert peak == 123 and spec.freqs[peak] == 1230.0
    assert spec.values[peak] == pytest.approx(1.7, rel=1e-12)
    assert spec.values[0] == pytest.approx(0.5, rel=1e-12)
    # Hann: the neighbours hold half the amplitude each, the rest is leakage-free
    assert spec.values[peak - 1] == pytest.approx(0.85, rel=1e-9)
    assert spec.values[peak + 1] == pytest.approx(0.85, rel=1e-9)
    far = np.delete(spec.values, [0, 1, peak - 1, peak, peak + 1])
    assert far.max() < 1e-12


def test_nyquist_bin_is_not_doubled_and_rows_are_independent():
    n = 256
    alternating = 0.8 * np.cos(np.pi * np.arange(n))  # a cosine at fs/2
    stack = np.stack([alternating, 2.0 * np.sin(2 * np.pi * 1000.0 * np.arange(n) / 16000.0)])
    spec = sp.amplitude_spectrum(stack, 16000.0)
    assert spec.values.shape == (2, n // 2 + 1)
    assert spec.values[0, -1] == pytest.approx(0.8, rel=1e-12)
    assert spec.freqs[np.argmax(spec.values[1])] == 1000.0
    assert spec.values[1].max() == pytest.approx(2.0, rel=1e-12)


def test_a_sine_between_bins_reads_at_most_hann_scalloping_low():
    # half a bin off: Hann's worst case reads 0.8488 A (−1.42 dB), never more than A
    x = 1.0 * np.sin(2 * np.pi * 1235.0 * _t(2560))
    top = sp.amplitude_spectrum(x, FS).values.max()
    assert top == pytest.approx(8 / (3 * np.pi), rel=2e-3)  # 0.8488
    assert top < 1.0


# --------------------------------------------------------------------------- envelope


def _am(n: int = 25600, depth: float = 0.5) -> np.ndarray:
    """Carrier 5 kHz, amplitude 1, modulated at 107 Hz with ``depth``: its envelope is
    1 + depth cos(2 pi 107 t)."""
    t = _t(n)
    return (1.0 + depth * np.cos(2 * np.pi * 107.0 * t)) * np.cos(2 * np.pi * 5000.0 * t)


@pytest.mark.parametrize("band", [(4000.0, 6000.0), None])
def test_envelope_spectrum_of_an_am_carrier_peaks_at_the_modulation(band):
    # a DC offset of 3 g (a sensor bias) must not change it: removed before the envelope
    spec = sp.envelope_spectrum(_am() + 3.0, FS, band)
    assert spec.kind == "envelope" and spec.resolution == 1.0  # 1 s: 1 Hz bins
    assert spec.band == band
    peak = sp.top_peaks(spec, 1, min_hz=1.0)[0]
    assert peak.frequency == 107.0
    assert peak.value == pytest.approx(0.5, rel=0.02)  # the modulation depth
    assert spec.values[0] < 1e-3 * peak.value  # mean removed: no DC line


def test_the_amplitude_spectrum_of_that_carrier_has_sidebands_not_the_modulation():
    spec = sp.amplitude_spectrum(_am(), FS)
    at = {f: spec.values[int(f)] for f in (107.0, 4893.0, 5000.0, 5107.0)}
    assert at[107.0] < 1e-9
    assert at[5000.0] == pytest.approx(1.0, rel=1e-9)
    assert at[4893.0] == pytest.approx(0.25, rel=1e-9)
    assert at[5107.0] == pytest.approx(0.25, rel=1e-9)


@pytest.mark.parametrize("rpm", [1500.0, 1650.0, 1800.0, 2100.0, 2250.0, 2400.0])
def test_synthetic_outer_race_fault_shows_at_bpfo_in_the_envelope_spectrum(rpm):
    """The generator's impacts come at BPFO (3.08 f_r: 77.08 Hz at 1500 rpm ... 123.3 Hz at
    2400 rpm) and ring at 3 kHz (horizontal) and 4.2 kHz (vertical). On 1 s snapshots (1 Hz
    bins), at failure, the horizontal envelope spectrum's largest peak below 500 Hz lies within
    one bin of BPFO. The vertical resonance rings shorter, so the impacts' harmonics are about
    as strong as BPFO there, and where BPFO falls half a bin off (1800 rpm: 92.49 Hz) Hann's
    −15 % scalloping lets 2 x BPFO win; a snapshot earlier the same can happen horizontally.
    There the largest peak is within one bin of a BPFO harmonic and BPFO is among the top 3."""
    run = synth_run(n_snapshots=8, samples=25600, rpm=rpm, seed=int(rpm))
    bpfo = sp.LDK_UER204.bpfo(rpm / 60.0)
    for k in (-2, -1):
        for c in range(run.n_channels):
            spec = sp.envelope_spectrum(run.snapshots[k, :, c], run.fs, sp.default_band(run.fs))
            assert spec.resolution == 1.0
            peaks = sp.top_peaks(spec, 3, min_hz=spec.resolution, max_hz=500.0)
            if k == -1 and c == 0:
                assert abs(peaks[0].frequency - bpfo) <= spec.resolution, peaks
            assert min(abs(peaks[0].frequency - h * bpfo) for h in (1, 2, 3)) <= 1.0, peaks
            assert any(abs(p.frequency - bpfo) <= spec.resolution for p in peaks), peaks
    healthy = sp.envelope_spectrum(run.snapshots[0, :, 0], run.fs, sp.default_band(run.fs))
    failed = sp.envelope_spectrum(run.snapshots[-1, :, 0], run.fs, sp.default_band(run.fs))
    line = round(bpfo)
    assert failed.values[line - 1:line + 2].max() > 20 * healthy.values[line - 1:line + 2].max()


def test_band_validation_names_the_field_and_the_limit():
    with pytest.raises(InputError, match=r"band: the upper edge 13000 Hz must be below the "
                                         r"Nyquist frequency 12800 Hz"):
        sp.validate_band((2000, 13000), FS)
    with pytest.raises(InputError, match=r"band: the upper edge 12800 Hz"):
        sp.envelope_spectrum(_am(2560), FS, (2000.0, 12800.0))  # through the spectrum
    with pytest.raises(InputError, match=r"band: the lower edge 6000 Hz must be below the "
                                         r"upper edge 4000 Hz"):
        sp.validate_band((6000, 4000), FS)
    with pytest.raises(InputError, match=r"band: the lower edge must be above 0 Hz, got 0 Hz"):
        sp.validate_band((0, 4000), FS)
    with pytest.raises(InputError, match=r"band: expected two frequencies"):
        sp.validate_band((1000,), FS)
    assert sp.validate_band((2000, 12799.9), FS) == (2000.0, 12799.9)


def test_default_band_and_max_frequency_follow_the_sampling_rate():
    assert sp.default_band(25600.0) == (2000.0, 10000.0)
    assert sp.default_band(5000.0) == (500.0, 2000.0)  # 80 % of Nyquist, a quarter of that
    assert sp.default_max_hz("envelope", 25600.0) == 1000.0
    assert sp.default_max_hz("amplitude", 25600.0) == 12800.0
    assert sp.default_max_hz("envelope", 1000.0) == 500.0
    for fs in (1000.0, 5000.0, 25600.0, 51200.0):
        sp.validate_band(sp.default_band(fs), fs)  # always valid


def test_bandpass_keeps_the_band_and_removes_the_rest():
    t = _t(25600)
    inside, outside = np.sin(2 * np.pi * 5000 * t), np.sin(2 * np.pi * 300 * t)
    out = sp.bandpass(inside + outside, FS, (4000.0, 6000.0))
    spec = sp.amplitude_spectrum(out[2560:-2560], FS)  # away from the edges
    assert spec.values[np.argmin(abs(spec.freqs - 5000))] == pytest.approx(1.0, rel=0.01)
    assert spec.values[np.argmin(abs(spec.freqs - 300))] < 1e-4
    with pytest.raises(InputError, match="order"):
        sp.bandpass(inside, FS, (4000.0, 6000.0), order=0)


def test_top_peaks_in_order_within_the_range():
    t = _t(2560)
    x = 2.0 * np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 3000 * t)
    spec = sp.amplitude_spectrum(x, FS)
    peaks = sp.top_peaks(spec, 2)
    assert [p.frequency for p in peaks] == [1000.0, 3000.0]
    assert [round(p.value, 9) for p in peaks] == [2.0, 1.0]
    assert sp.top_peaks(spec, 5, min_hz=2000.0)[0].frequency == 3000.0
    assert sp.top_peaks(spec, 3, min_hz=20000.0) == []
    with pytest.raises(InputError, match="one row"):
        sp.top_peaks(sp.amplitude_spectrum(np.ones((2, 8)), FS))


# --------------------------------------------------------------------------- fault frequencies


def test_uer204_fault_frequencies_at_35_hz_by_hand():
    # d/D = 7.92 / 34.55 = 0.2292330 (cos 0 = 1), f_r = 35 Hz (XJTU-SY 2100 rpm):
    #   FTF  = 35/2 x (1 - 0.2292330)             = 17.5 x 0.7707670        = 13.48842 Hz
    #   BPFO = 8 x 35/2 x (1 - 0.2292330)         = 140 x 0.7707670         = 107.9074 Hz
    #   BPFI = 8 x 35/2 x (1 + 0.2292330)         = 140 x 1.2292330         = 172.0926 Hz
    #   BSF  = 34.55/(2 x 7.92) x 35 x (1 - 0.2292330^2)
    #        = 2.1811869 x 35 x (1 - 0.0525478)   = 76.341540 x 0.9474522   = 72.32996 Hz
    # (the XJTU-SY documentation's 13.49, 107.91, 172.09 and 72.33 Hz)
    f = sp.LDK_UER204.frequencies(35.0)
    assert f["FTF"] == pytest.approx(13.48842, abs=1e-4)
    assert f["BPFO"] == pytest.approx(107.9074, abs=1e-4)
    assert f["BPFI"] == pytest.approx(172.0926, abs=1e-4)
    assert f["BSF"] == pytest.approx(72.32996, abs=1e-4)
    assert f["BPFO"] + f["BPFI"] == pytest.approx(8 * 35.0, rel=1e-12)  # n f_r
    tilted = replace(sp.LDK_UER204, contact_angle_deg=60.0)  # cos 60 = 1/2 halves d/D
    assert tilted.bpfo(35.0) == pytest.approx(140 * (1 - 0.2292330 / 2), abs=1e-4)


def test_geometry_validation_names_the_field():
    for kwargs, field in (({"n_balls": 0}, "n_balls"), ({"n_balls": 8.5}, "n_balls"),
                          ({"ball_diameter_mm": 0.0}, "ball_diameter_mm"),
                          ({"pitch_diameter_mm": 7.0}, "pitch_diameter_mm"),
                          ({"contact_angle_deg": 90.0}, "contact_angle_deg"),
                          ({"contact_angle_deg": -1.0}, "contact_angle_deg")):
        with pytest.raises(InputError, match=f"^{field}:"):
            replace(sp.LDK_UER204, **kwargs)
    assert sp.BearingGeometry(8.0, 7.92, 34.55).n_balls == 8  # a float count from a form


def test_presets_only_where_published():
    assert list(sp.GEOMETRY_PRESETS) == [sp.UER204_PRESET]
    assert sp.GEOMETRY_PRESETS[sp.UER204_PRESET].geometry == sp.BearingGeometry(8, 7.92, 34.55,
                                                                                 0.0)
    assert "IEEE Trans. Reliability" in sp.GEOMETRY_PRESETS[sp.UER204_PRESET].source
    assert sp.default_preset("xjtu") == sp.UER204_PRESET
    for layout in ("femto", "generic", "synthetic", ""):
        assert sp.default_preset(layout) is None


def test_fault_markers_harmonics_limits_and_shaft_only():
    shaft = sp.fault_markers(30.0, None, harmonics=3)
    assert [(m.label, m.frequency) for m in shaft] == [("f_r", 30.0), ("2×f_r", 60.0),
                                                      ("3×f_r", 90.0)]
    full = sp.fault_markers(35.0, sp.LDK_UER204, harmonics=2, max_hz=300.0)
    labels = [m.label for m in full]
    assert labels == ["f_r", "2×f_r", "FTF", "2×FTF", "BPFO", "2×BPFO", "BPFI", "BSF", "2×BSF"]
    assert all(m.frequency <= 300.0 for m in full)  # 2 x BPFI = 344 Hz is left out
    assert sp.fault_markers(0.0, sp.LDK_UER204) == []  # no shaft speed, nothing to mark
    assert sp.nearest_marker(110.0, full).label == "BPFO"
    assert sp.nearest_marker(110.0, []) is None
    with pytest.raises(InputError, match="harmonics"):
        sp.fault_markers(30.0, None, harmonics=0)


def test_describe_peaks_names_the_nearest_fault_frequency():
    run = synth_run(n_snapshots=6, samples=2560, rpm=2100.0, seed=11)
    spec = sp.compute_spectrum(run.snapshots[-1, :, 0], run.fs,
                               sp.SpectrumSettings(band=sp.default_band(run.fs), max_hz=500.0))
    markers = sp.fault_markers(35.0, sp.LDK_UER204, 3, 500.0)
    top = sp.describe_peaks(spec, markers, 3)[0]
    assert top["nearest"] == "BPFO" and top["nearest_hz"] == pytest.approx(107.9074, abs=1e-4)
    assert abs(top["offset_bins"]) <= 1.0
    assert top["offset_hz"] == pytest.approx(top["frequency_hz"] - 107.9074, abs=1e-4)
    assert top["within_bin"] == "BPFO, 3×f_r"  # 10 Hz bins: 3 x f_r = 105 Hz is one too
    bare = sp.describe_peaks(spec, [], 2)
    assert len(bare) == 2 and bare[0]["nearest"] is None and bare[0]["offset_bins"] is None
    assert bare[0]["within_bin"] == ""
    # at 1800 rpm and 10 Hz bins a 90 Hz line is 3 x f_r (90) and BPFO (92.49) alike
    line = sp.amplitude_spectrum(np.sin(2 * np.pi * 90.0 * _t(2560)), FS)
    row = sp.describe_peaks(line, sp.fault_markers(30.0, sp.LDK_UER204), 1)[0]
    assert (row["nearest"], row["within_bin"]) == ("3×f_r", "3×f_r, BPFO")


# --------------------------------------------------------------------------- over life


@pytest.fixture(scope="module")
def run():
    return synth_run(n_snapshots=10, samples=2048, seed=3)


@pytest.mark.parametrize("settings", [
    sp.SpectrumSettings("amplitude"),
    sp.SpectrumSettings("envelope", (2000.0, 8000.0), 600.0),
    sp.SpectrumSettings("envelope", None, 1000.0),
])
def test_over_life_equals_per_snapshot_calls(run, settings, monkeypatch):
    monkeypatch.setattr(sp, "CHUNK_SAMPLES", 3 * 2048)  # chunks of 3 snapshots: 4 chunks
    events = []
    life = sp.run_spectrum_over_life(run, 1, settings, max_rows=None, max_bins=None,
                                     progress=events.append)
    assert life.values.shape[0] == 10 and life.channel == "vertical"
    np.testing.assert_array_equal(life.snapshots, np.arange(10))
    for i in range(10):
        one = sp.compute_spectrum(run.snapshots[i, :, 1], run.fs, settings)
        np.testing.assert_allclose(life.values[i], one.values, rtol=1e-10, atol=1e-14)
        np.testing.assert_array_equal(life.freqs, one.freqs)
    assert [e.done for e in events] == [0, 3, 6, 9, 10] and events[-1].total == 10
    assert life.freqs.max() <= (settings.max_hz or run.fs / 2)
    assert life.notes == []


def test_over_life_decimates_rows_keeps_the_ends_and_converts_to_db(run):
    settings = sp.SpectrumSettings("envelope", (2000.0, 8000.0), 600.0)
    lin = sp.run_spectrum_over_life(run, 0, settings, max_rows=4)
    np.testing.assert_array_equal(lin.snapshots, [0, 3, 6, 9])
    np.testing.assert_array_equal(lin.times_s, run.timestamps[[0, 3, 6, 9]])
    assert lin.total_snapshots == 10 and "4 of 10 snapshots" in lin.notes[0]
    for row, i in enumerate([0, 3, 6, 9]):
        one = sp.compute_spectrum(run.snapshots[i, :, 0], run.fs, settings)
        np.testing.assert_allclose(lin.values[row], one.values, rtol=1e-10, atol=1e-14)
    db = sp.run_spectrum_over_life(run, "horizontal", settings, max_rows=4, db=True)
    assert db.unit == "dB re 1 g" and lin.unit == "g (envelope, peak)"
    np.testing.assert_allclose(db.values, 20 * np.log10(np.maximum(lin.values, sp.DB_FLOOR)))
    assert sp.life_rows(3, 300).tolist() == [0, 1, 2]
    assert sp.life_rows(101, 5).tolist() == [0, 25, 50, 75, 100]


def test_pooling_keeps_each_groups_maximum_at_its_mean_frequency(run):
    f = np.arange(10.0)
    v = np.array([[0, 5, 1, 2, 9, 3, 4, 4, 7, 1.0]])
    pf, pv, g = sp.pool_bins(f, v, 4)
    assert g == 3
    np.testing.assert_array_equal(pv, [[5, 9, 7, 1]])
    np.testing.assert_array_equal(pf, [1.0, 4.0, 7.0, 9.0])
    assert sp.pool_bins(f, v, 10)[2] == 1 and sp.pool_bins(f, v, None)[2] == 1
    life = sp.run_spectrum_over_life(run, 0, sp.SpectrumSettings("amplitude"), max_bins=100)
    assert life.pooled == 11 and life.values.shape[1] <= 100  # 1025 bins in groups of 11
    assert "maximum of 11 adjacent bins" in life.notes[0]
    full = sp.run_spectrum_over_life(run, 0, sp.SpectrumSettings("amplitude"), max_bins=None)
    np.testing.assert_allclose(life.values.max(axis=1), full.values.max(axis=1))


def test_over_life_cancels_between_chunks_and_checks_its_input(run, monkeypatch):
    monkeypatch.setattr(sp, "CHUNK_SAMPLES", 2048)
    token = CancelToken()

    def cancel_after_first(event):
        if event.done >= 1:
            token.cancel()

    with pytest.raises(Cancelled):
        sp.run_spectrum_over_life(run, 0, sp.SpectrumSettings(), progress=cancel_after_first,
                                  cancel=token)
    with pytest.raises(InputError, match="snapshots: expected"):
        sp.spectrum_over_life(run.snapshots, run.fs, sp.SpectrumSettings())
    with pytest.raises(InputError, match="max_hz"):
        sp.SpectrumSettings(max_hz=0.0)
    with pytest.raises(InputError, match="kind"):
        sp.SpectrumSettings("cepstrum")


def test_over_life_uses_the_compute_it_is_given(run):
    """The app passes a cached compute; the core hands it each chunk's snapshots and their
    indices and builds the matrix from what it returns."""
    seen = []

    def compute(stack, rows, fs, settings):
        seen.append(rows.tolist())
        return sp.compute_spectrum(stack, fs, settings)

    life = sp.run_spectrum_over_life(run, 0, sp.SpectrumSettings(), max_rows=5, compute=compute)
    assert seen == [life.snapshots.tolist()] == [[0, 2, 4, 7, 9]]


# --------------------------------------------------------------------------- edges and defaults


def test_bandpass_is_scipys_order_4_filtfilt_and_handles_short_snapshots():
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [2000.0, 8000.0], "bandpass", fs=FS, output="sos")
    rng = np.random.default_rng(1)
    x = rng.normal(size=3000)
    np.testing.assert_allclose(sp.bandpass(x, FS, (2000.0, 8000.0)), sosfiltfilt(sos, x),
                               rtol=1e-12, atol=1e-12)  # default order 4, scipy's padding
    assert not np.allclose(sp.bandpass(x, FS, (2000.0, 8000.0), order=2), sosfiltfilt(sos, x))
    np.testing.assert_array_equal(sp.envelope(x, FS, (2000.0, 8000.0)),
                                  sp.envelope(x, FS, (2000.0, 8000.0), order=4))
    np.testing.assert_allclose(sp.envelope_spectrum(x, FS, (2000.0, 8000.0)).values,
                               sp.envelope_spectrum(x, FS, (2000.0, 8000.0), order=4).values)
    np.testing.assert_array_equal(
        sp.compute_spectrum(x, FS, sp.SpectrumSettings(band=(2000.0, 8000.0))).values,
        sp.envelope_spectrum(x, FS, (2000.0, 8000.0), order=4).values)
    # 4 sections: scipy pads 3 (2 * 4 + 1) = 27 samples at each end and needs more than that;
    # a snapshot of 27 samples or fewer is padded with all but one of its samples instead
    for n in (2, 10, 27):
        np.testing.assert_allclose(sp.bandpass(x[:n], FS, (2000.0, 8000.0)),
                                   sosfiltfilt(sos, x[:n], padlen=n - 1), rtol=1e-12)
    np.testing.assert_allclose(sp.bandpass(x[:28], FS, (2000.0, 8000.0)),
                               sosfiltfilt(sos, x[:28]), rtol=1e-12)
    assert sp.bandpass(x, FS, (2000.0, 8000.0), order=1).shape == x.shape  # order 1 is fine


def test_inputs_at_their_limits():
    assert sp.amplitude_spectrum(np.array([1.0, -1.0]), FS).values.shape == (2,)
    for bad in (np.array([1.0]), np.float64(1.0)):
        with pytest.raises(InputError, match="signal: expected at least 2 samples"):
            sp.amplitude_spectrum(bad, FS)
    for fs in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="fs: expected a sampling rate > 0 Hz"):
            sp.amplitude_spectrum(np.ones(8), fs)
    assert sp.amplitude_spectrum(np.ones(8), 0.5).resolution == 0.0625
    assert sp.validate_band((0.5, 1000.0), FS) == (0.5, 1000.0)
    with pytest.raises(InputError, match="band: the lower edge 1000 Hz must be below the upper"):
        sp.validate_band((1000.0, 1000.0), FS)
    assert sp.SpectrumSettings(max_hz=0.5).max_hz == 0.5
    with pytest.raises(InputError, match="order"):
        sp.bandpass(np.ones(64), FS, (2000.0, 8000.0), order=2.5)


def test_geometry_and_markers_at_their_limits():
    assert sp.BearingGeometry(8, 7.92, 34.55) == sp.LDK_UER204  # contact angle 0 by default
    assert sp.BearingGeometry(1, 0.5, 0.6).n_balls == 1
    with pytest.raises(InputError, match=r"^pitch_diameter_mm:"):
        sp.BearingGeometry(8, 7.92, 7.92)  # D must exceed d
    assert len(sp.fault_markers(30.0, sp.LDK_UER204)) == 15  # 5 frequencies x 3 harmonics
    assert [m.label for m in sp.fault_markers(0.5, None, harmonics=1)] == ["f_r"]
    assert [m.label for m in sp.fault_markers(30.0, None, harmonics=2, max_hz=60.0)] == [
        "f_r", "2×f_r"]  # a harmonic on the limit is kept
    for shaft in (-30.0, float("nan")):
        assert sp.fault_markers(shaft, sp.LDK_UER204) == []


def test_peaks_at_the_edges_of_the_range():
    x = np.sin(2 * np.pi * 1000.0 * _t(2560)) + 0.5 * np.sin(2 * np.pi * 2000.0 * _t(2560))
    spec = sp.amplitude_spectrum(x, FS)
    peaks = sp.top_peaks(spec)  # 5 by default, from 0 Hz
    assert len(peaks) == 5 and [p.frequency for p in peaks[:2]] == [1000.0, 2000.0]
    falling = sp.top_peaks(spec, 1, min_hz=1010.0, max_hz=1100.0)  # down the line's skirt
    assert [(p.frequency, round(p.value, 9)) for p in falling] == [(1010.0, 0.5)]  # first bin
    assert [p.frequency for p in sp.top_peaks(spec, 3, min_hz=1000.0, max_hz=2000.0)][:2] == [
        1000.0, 2000.0]  # both range limits inclusive
    rising = sp.top_peaks(spec, 1, min_hz=900.0, max_hz=990.0)  # up the 1 kHz line's skirt
    assert [p.frequency for p in rising] == [990.0]  # the last bin of the range counts
    assert [p.bin for p in sp.top_peaks(spec, 5, min_hz=500.0, max_hz=500.0)] == [50]
    assert sp.top_peaks(spec, 0) == []
    hand = sp.Spectrum(np.arange(4.0), np.array([5.0, 1.0, 2.0, 1.0]), "g", "amplitude", 1.0)
    assert [(p.frequency, p.value) for p in sp.top_peaks(hand)] == [(0.0, 5.0), (2.0, 2.0)]
    assert len(sp.describe_peaks(spec, [])) == 5
    cut = sp.compute_spectrum(x, FS, sp.SpectrumSettings("amplitude", max_hz=1000.0))
    assert cut.freqs[-1] == 1000.0 and cut.values[-1] == pytest.approx(1.0)  # the limit kept


def test_over_life_defaults_rows_columns_chunks_and_db_floor():
    big = np.zeros((1000, 8192), dtype=np.float32)  # 4097 bins
    events = []
    life = sp.spectrum_over_life(big, FS, sp.SpectrumSettings("amplitude"), db=True,
                                 progress=events.append)
    assert life.values.shape == (300, 1366)  # 300 rows; 4097 bins in groups of ceil(4097/2048)
    assert life.pooled == 3 and (life.values == -200.0).all()  # 20 log10(1e-10)
    np.testing.assert_array_equal(life.times_s, life.snapshots)  # no timestamps: the indices
    every = []
    sp.spectrum_over_life(big[:, :2560], FS, sp.SpectrumSettings("amplitude"), max_rows=None,
                          progress=every.append)
    assert [e.done for e in every] == [0, 819, 1000]  # 2**21 samples a chunk: 819 snapshots
    assert sp.life_rows(10, 2).tolist() == [0, 9]
    with pytest.raises(InputError, match="max_rows: expected at least 2 rows"):
        sp.life_rows(10, 1)
    one = sp.spectrum_over_life(big[:1, :64], FS, sp.SpectrumSettings("amplitude"))
    assert one.values.shape == (1, 33) and one.notes == []
    with pytest.raises(InputError, match="snapshots: the run holds no snapshot"):
        sp.spectrum_over_life(big[:0], FS, sp.SpectrumSettings())
    two = sp.spectrum_over_life(big[:2, :128], FS, sp.SpectrumSettings("amplitude"), max_bins=40)
    assert two.pooled == 2 and two.notes == ["each column is the maximum of 2 adjacent bins "
                                             "(400 Hz)"]
    f, v, g = sp.pool_bins(np.arange(6.0), np.array([1.0, 3, 2, 2, 5, 0]), 3)
    assert g == 2 and v.tolist() == [3.0, 2.0, 5.0] and f.tolist() == [0.5, 2.5, 4.5]  # 1-D
