"""RUL labels: hand-computed values for every scheme."""

from __future__ import annotations

import numpy as np
import pytest

from rul_core import labels
from rul_core.data.run import Condition, Run


def test_linear_hand_computed() -> None:
    np.testing.assert_allclose(labels.linear(4), [0.75, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(labels.linear(1), [0.0])
    assert labels.linear(4).dtype == np.float32


def test_piecewise_hand_computed() -> None:
    # N = 10, first 30 % (3 snapshots) at 1, then 6/7, 5/7, ..., 0
    expected = [1, 1, 1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7, 0]
    np.testing.assert_allclose(labels.piecewise(10), expected, rtol=1e-6)
    np.testing.assert_allclose(labels.piecewise(7, 0.5), [1, 1, 1, 0.75, 0.5, 0.25, 0])
    np.testing.assert_array_equal(labels.piecewise(9, 0.0), labels.linear(9))
    # floor of the exact product: 0.29 * 100 is 28.999999999999996 in floats
    assert (labels.piecewise(100, 0.29) == 1).sum() == 29
    assert (labels.piecewise(90, 0.7) == 1).sum() == 63
    with pytest.raises(ValueError, match="knee_fraction"):
        labels.piecewise(10, 1.0)


def test_capped_and_fpt_hand_computed() -> None:
    np.testing.assert_allclose(labels.capped(5, 2), [1, 1, 1, 0.5, 0])
    np.testing.assert_allclose(labels.capped(3, 10), [0.2, 0.1, 0])
    np.testing.assert_allclose(labels.first_prediction_time(5, 1), [1, 1, 2 / 3, 1 / 3, 0],
                               rtol=1e-6)
    np.testing.assert_array_equal(labels.first_prediction_time(6, -1), labels.linear(6))
    # log scale s = 1, cap 3: log(1 + m) / log(4) for m = min(remaining, 3)
    np.testing.assert_allclose(labels.capped(5, 3, log_scale=1.0),
                               [1, 1, np.log(3) / np.log(4), 0.5, 0], rtol=1e-6)
    np.testing.assert_array_equal(labels.capped(5, 3, log_scale=0), labels.capped(5, 3))
    np.testing.assert_allclose(labels.capped_snapshots(labels.capped(9, 6, 2.5), 6, 2.5),
                               [6, 6, 6, 5, 4, 3, 2, 1, 0], atol=1e-5)  # the inverse
    np.testing.assert_allclose(labels.capped_snapshots([-0.2, 1.4], 6), [0, 6])  # clipped
    with pytest.raises(ValueError, match="log_scale"):
        labels.capped(5, 3, log_scale=-1.0)
    with pytest.raises(ValueError, match="log_scale: expected a number of snapshots, got 'x'"):
        labels.capped(5, 3, log_scale="x")
    with pytest.raises(ValueError, match="knee"):
        labels.first_prediction_time(5, 4)


def trend_run(values: np.ndarray) -> Run:
    """A run whose per-snapshot RMS equals ``values`` (a constant signal of that level)."""
    snaps = np.repeat(np.asarray(values, np.float32)[:, None, None], 8, axis=1)
    snaps = np.repeat(snaps, 2, axis=2)
    return Run("T", snaps, 100.0, ["a", "b"], Condition(600.0, 1.0))


def test_detect_knee_from_a_trend_and_a_run() -> None:
    healthy = np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.0, 1.0, 1.0])  # mu 1, sd .0548
    trend = np.concatenate([healthy, [1.0, 1.5, 1.0, 1.4, 1.5, 1.6, 2.0, 3.0]])
    # healthy band = first ceil(0.5*18)=9 values; 1.5 at 11 is a lone excursion; 13..15 run
    assert labels.detect_knee(trend, healthy_fraction=0.5, consecutive=3) == 13
    assert labels.detect_knee(trend, healthy_fraction=0.5, consecutive=1) == 11
    # the healthy stretch is ceil of the exact 7 % of 100 (7, not the float product's 8)
    step = np.r_[np.tile([0.0, 0.01], 4)[:7], np.full(93, 5.0)]
    assert labels.detect_knee(step, healthy_fraction=0.07, consecutive=1) == 7
    assert labels.detect_knee(np.ones(20)) is None
    run = trend_run(trend)
    np.testing.assert_allclose(labels.health_indicator(run, "rms"), trend, rtol=1e-6)
    assert labels.detect_knee(run, healthy_fraction=0.5) == 13
    lab = labels.label_run(run, "fpt", healthy_fraction=0.5)
    np.testing.assert_allclose(lab, labels.first_prediction_time(18, 13))


def test_kurtosis_indicator_hand_computed() -> None:
    snaps = np.array([[1, -1, 1, -1], [0, 0, 0, 4]], np.float32)[:, :, None]
    run = Run("K", snaps, 10.0, ["a"], Condition(60.0, 1.0))
    # square wave: K = 1; one spike of 4 in 4 samples: mu=1, m2=3, m4=(81+3)/4=21 -> 21/9
    np.testing.assert_allclose(labels.health_indicator(run, "kurtosis"), [1.0, 21 / 9])


def test_label_run_dispatch_and_window_labels() -> None:
    run = trend_run(np.ones(10))
    assert set(labels.SCHEMES) == {"linear", "piecewise", "capped", "fpt"}
    np.testing.assert_array_equal(labels.label_run(run), labels.linear(10))
    np.testing.assert_array_equal(labels.label_run(run, "piecewise", knee_fraction=0.3),
                                  labels.piecewise(10))
    np.testing.assert_array_equal(labels.label_run(10, "capped", max_rul=4),
                                  labels.capped(10, 4))
    np.testing.assert_array_equal(labels.label_run(10, "capped", max_rul=4, log_scale=2),
                                  labels.capped(10, 4, 2))
    np.testing.assert_array_equal(labels.label_run(10, "fpt", knee=2),
                                  labels.first_prediction_time(10, 2))
    with pytest.raises(ValueError, match="no knee"):
        labels.label_run(run, "fpt")
    with pytest.raises(ValueError, match="scheme"):
        labels.label_run(run, "exp")
    with pytest.raises(ValueError, match="unexpected"):
        labels.label_run(run, "linear", max_rul=3)
    snap_labels = labels.linear(4)
    np.testing.assert_array_equal(labels.window_labels(snap_labels, np.array([0, 0, 3, 1])),
                                  np.array([0.75, 0.75, 0.0, 0.5], np.float32))
    with pytest.raises(ValueError, match="snapshot_index"):
        labels.window_labels(snap_labels, np.array([4]))


def test_snapshots_for_a_time_cap() -> None:
    from rul_core.data.synthetic import synth_run

    run = synth_run("Bearing1_1", n_snapshots=5, seed=0)  # FEMTO-like: 10 s apart
    assert labels.snapshots_for(6000.0, [run]) == 600
    assert labels.snapshots_for(1.0, [run]) == 1  # never below one snapshot
    flat = synth_run("Bearing1_2", n_snapshots=1, seed=0)
    with pytest.raises(ValueError, match="snapshot interval"):
        labels.snapshots_for(60.0, [flat])
