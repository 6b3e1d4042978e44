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


def test_counts_knees_and_caps_at_their_limits() -> None:
    """n must be a whole count >= 1; the knee may be the second-to-last snapshot but not
    below -1; a cap of one snapshot is valid, a cap of 0 is not."""
    for n in (0, 2.5):
        with pytest.raises(ValueError, match="n: expected"):
            labels.linear(n)  # type: ignore[arg-type]
    np.testing.assert_array_equal(labels.first_prediction_time(5, 3), [1, 1, 1, 1, 0])
    with pytest.raises(ValueError, match="knee"):
        labels.first_prediction_time(5, -2)
    np.testing.assert_array_equal(labels.capped(3, 1), [1, 1, 0])
    with pytest.raises(ValueError, match="max_rul"):
        labels.capped(3, 0)


def test_kurtosis_indicator_small_variance_channels_and_constant_snapshot() -> None:
    """A variance below 1 is used as is, channels are averaged after their own kurtosis, and
    a constant snapshot gets the sentinel 0 without a division warning."""
    import warnings

    a = np.array([[0, 0, 0, 1], [2, 2, 2, 2]], np.float32)
    b = np.array([[1, -1, 1, -1], [2, 2, 2, 2]], np.float32)
    run = Run("K", np.stack([a, b], axis=2), 10.0, ["a", "b"], Condition(60.0, 1.0))
    # a: 0,0,0,1: mu = 1/4, m2 = (3/16 + 9/16)/4 = 3/16, m4 = (3/256 + 81/256)/4 = 21/256
    # -> K = (21/256) / (9/256) = 7/3; b: square wave K = 1 -> mean (7/3 + 1)/2 = 5/3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(labels.health_indicator(run, "kurtosis"), [5 / 3, 0.0])
        np.testing.assert_allclose(labels.health_indicator(run, "kurtosis", channel=0),
                                   [7 / 3, 0.0])


def test_detect_knee_defaults_and_healthy_stretch_by_hand() -> None:
    """Defaults sigma 3, consecutive 3, healthy_fraction 0.1; the healthy stretch is
    max(2, ceil(f N)) values."""
    # N = 13, f = 0.1 -> max(2, ceil(1.3)) = 2 healthy values 1.0, 1.2: mu 1.1, sd 0.1,
    # band 1.1 +- 0.3. 1.35 inside; 1.45 outside 3 sd (inside 4 sd) three times from 5;
    # 2.0 four times from 9.
    trend = [1.0, 1.2, 1.35, 1.35, 1.35, 1.45, 1.45, 1.45, 1.1, 2.0, 2.0, 2.0, 2.0]
    assert labels.detect_knee(trend) == 5
    # N = 10: f = 0.25 -> ceil(2.5) = 3 healthy values (mu 7/6, sd 0.2357, band +- 0.707),
    # so 1.5 at index 2 is healthy and the knee is the first 10; f = 0.1 -> 2 healthy
    # values (sd 0): 1.5 at index 2 is already outside
    steps = [1.0, 1.0, 1.5, 1.0, 1.0, 1.0, 10.0, 10.0, 10.0, 10.0]
    assert labels.detect_knee(steps, healthy_fraction=0.25, consecutive=1) == 6
    assert labels.detect_knee(steps, healthy_fraction=0.1, consecutive=1) == 2
    # the shortest trend: 3 values, 2 healthy
    assert labels.detect_knee([1.0, 1.0, 5.0], consecutive=1) == 2


def test_detect_knee_refuses_bad_input() -> None:
    """A 2-D or too short trend, NaN, a healthy fraction outside (0, 1) and a consecutive
    count that is not a whole number >= 1 are refused."""
    with pytest.raises(ValueError, match="data: expected a trend"):
        labels.detect_knee(np.ones((2, 3)))
    with pytest.raises(ValueError, match="data: expected a trend"):
        labels.detect_knee([1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        labels.detect_knee([1.0, 1.0, np.nan, 1.0])
    for f in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="healthy_fraction"):
            labels.detect_knee(np.ones(10), healthy_fraction=f)
    for k in (0, 2.5):
        with pytest.raises(ValueError, match="consecutive"):
            labels.detect_knee(np.ones(10), consecutive=k)  # type: ignore[arg-type]


def test_label_run_fpt_clamps_a_knee_on_the_last_snapshot() -> None:
    """A knee detected on the last snapshot becomes N - 2 (the last label is always 0)."""
    run = trend_run(np.r_[np.ones(9), 5.0])
    assert labels.detect_knee(run, consecutive=1) == 9
    np.testing.assert_array_equal(labels.label_run(run, "fpt", consecutive=1),
                                  [1, 1, 1, 1, 1, 1, 1, 1, 1, 0])


def test_window_labels_check_both_ends() -> None:
    """An index past the end or a negative one (numpy would wrap it) is refused."""
    for idx in ([0, 4], [-1, 0]):
        with pytest.raises(ValueError, match="snapshot_index"):
            labels.window_labels(labels.linear(4), np.array(idx))


def test_snapshots_for_ignores_repeated_times_and_counts_sub_second_intervals() -> None:
    """Zero gaps (repeated timestamps) are not intervals; a 0.5 s interval is."""
    snaps = np.zeros((4, 8, 1), np.float32)
    repeated = Run("R", snaps, 100.0, ["a"], Condition(600.0, 1.0),
                   timestamps=np.array([0.0, 0.0, 0.0, 10.0]))
    assert labels.snapshots_for(100.0, [repeated]) == 10  # gaps 0, 0, 10 -> median of [10]
    fast = Run("F", snaps, 100.0, ["a"], Condition(600.0, 1.0),
               timestamps=np.array([0.0, 0.5, 1.0, 1.5]))
    assert labels.snapshots_for(10.0, [fast]) == 20
