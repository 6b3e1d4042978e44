"""The synthetic run-to-failure generator is physically plausible and deterministic."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.signal import butter, hilbert, sosfiltfilt
from scipy.stats import kurtosis

from rul_core.data.synthetic import degradation_curve, synth_run
from rul_core.signal.spectrum import LDK_UER204


def test_bpfo_of_the_default_bearing() -> None:
    # LDK UER204: 8 balls, d = 7.92 mm, D = 34.55 mm, 0 deg: BPFO = 4 f_r (1 - 0.22923)
    assert abs(LDK_UER204.bpfo(30.0) - 4 * 30 * (1 - 7.92 / 34.55)) < 1e-12
    assert abs(LDK_UER204.bpfo(30.0) - 92.4921) < 1e-3
    tilted = replace(LDK_UER204, contact_angle_deg=60)
    assert abs(tilted.bpfo(30.0) - 120 * (1 - 7.92 / 34.55 / 2)) < 1e-9


def test_degradation_curve_shape() -> None:
    h = degradation_curve(100, knee=0.6)
    assert h[0] == 0 and h[-1] == 1 and np.all(np.diff(h) >= 0)
    assert h[59] < 0.03 and h[80] < 0.2  # healthy, then exponential growth


def test_rms_and_kurtosis_rise_with_life() -> None:
    run = synth_run(n_snapshots=30, seed=3)
    x = run.snapshots[:, :, 0].astype(np.float64)
    rms = np.sqrt((x**2).mean(axis=1))
    kurt = kurtosis(x, axis=1, fisher=False)
    assert rms[-3:].mean() > 3 * rms[:10].mean()
    assert kurt[-3:].mean() > 6 and abs(kurt[:10].mean() - 3) < 0.5  # healthy ~ Gaussian


def test_envelope_spectrum_peaks_at_bpfo() -> None:
    run = synth_run(n_snapshots=10, samples=25600, seed=5)  # 1 s snapshots: 1 Hz resolution
    x = run.snapshots[-1, :, 0].astype(np.float64)
    band = sosfiltfilt(butter(4, [2000, 4000], "bandpass", fs=run.fs, output="sos"), x)
    envelope = np.abs(hilbert(band))
    spectrum = np.abs(np.fft.rfft(envelope - envelope.mean()))
    freqs = np.fft.rfftfreq(len(envelope), 1 / run.fs)
    window = (freqs > 40) & (freqs < 150)
    peak = freqs[window][np.argmax(spectrum[window])]
    assert abs(peak - LDK_UER204.bpfo(30.0)) < 2.0


def test_seeded_and_deterministic() -> None:
    a = synth_run(n_snapshots=4, samples=256, seed=7)
    b = synth_run(n_snapshots=4, samples=256, seed=7)
    c = synth_run(n_snapshots=4, samples=256, seed=8)
    np.testing.assert_array_equal(a.snapshots, b.snapshots)
    assert not np.array_equal(a.snapshots, c.snapshots)
    assert a.snapshots.dtype == np.float32 and a.snapshots.shape == (4, 256, 2)
