"""Metric functions against values computed by hand (the arithmetic is written out)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rul_core import metrics as m


def test_rmse_mae_by_hand() -> None:
    y = [1.0, 0.5, 0.0]
    p = [0.8, 0.5, 0.3]
    # errors 0.2, 0, 0.3 -> squares 0.04, 0, 0.09 -> mean 0.13/3
    assert m.rmse(y, p) == pytest.approx(math.sqrt(0.13 / 3))
    assert m.rmse(y, p) == pytest.approx(0.2081666, abs=1e-6)
    # |errors| 0.2 + 0 + 0.3 = 0.5 -> /3
    assert m.mae(y, p) == pytest.approx(0.5 / 3)


def test_score_percent_unit_by_hand() -> None:
    y = [0.5, 0.5]
    p = [0.4, 0.7]
    # d = 100*(p - y) = -10, +20
    # early: exp(10/13) - 1 = 2.1581 - 1 = 1.15811; late: exp(20/10) - 1 = 7.38906 - 1 = 6.38906
    expected = (math.exp(10 / 13) - 1) + (math.exp(2.0) - 1)
    assert m.score(y, p) == pytest.approx(expected)
    assert m.score(y, p) == pytest.approx(7.547167, abs=1e-5)


def test_score_units_differ() -> None:
    y = [10.0]
    p = [13.0]
    # native with minutes: d = 3 -> exp(0.3) - 1 = 0.349859
    assert m.score(y, p, unit="native") == pytest.approx(math.exp(0.3) - 1)
    # native with scale 10 (e.g. snapshots -> seconds): d = 30 -> exp(3) - 1
    assert m.score(y, p, unit="native", scale=10.0) == pytest.approx(math.exp(3.0) - 1)
    # fraction on normalised values: d = -0.1 -> exp(0.1/13) - 1
    assert m.score([0.3], [0.2], unit="fraction") == pytest.approx(math.exp(0.1 / 13) - 1)
    # exact prediction scores 0 (d = 0 uses the late branch: exp(0) - 1 = 0)
    assert m.score([0.3, 0.6], [0.3, 0.6]) == 0.0
    with pytest.raises(ValueError, match="unit"):
        m.score(y, p, unit="hours")  # type: ignore[arg-type]


def test_phm2012_score_by_hand() -> None:
    act = [100.0, 100.0, 50.0]
    pred = [110.0, 80.0, 50.0]
    # Er = 100*(act - pred)/act = -10, +20, 0
    # A1 = exp(-ln0.5 * -10 / 5) = exp(2 ln 0.5) = 0.25
    # A2 = exp(+ln0.5 * 20 / 20) = 0.5
    # A3 = exp(0) = 1
    acc = m.phm2012_accuracy(act, pred)
    np.testing.assert_allclose(acc, [0.25, 0.5, 1.0])
    assert m.phm2012_score(act, pred) == pytest.approx((0.25 + 0.5 + 1.0) / 3)
    with pytest.raises(ValueError, match="actual RUL"):
        m.phm2012_score([0.0], [1.0])


def test_alpha_lambda_by_hand() -> None:
    y = [1.0, 0.8, 0.6, 0.4, 0.2]
    p = [1.0, 0.9, 0.5, 0.6, 0.25]
    # t_lambda index = ceil(0.5 * 4) = 2
    # i=2: bounds [0.42, 0.78], 0.5 inside; i=3: [0.28, 0.52], 0.6 outside;
    # i=4: [0.14, 0.26], 0.25 inside -> fraction 2/3, point (i=2) -> 1
    assert m.alpha_lambda_accuracy(y, p) == pytest.approx(2 / 3)
    assert m.alpha_lambda_accuracy(y, p, mode="point") == 1.0
    # lam = 0.75 -> index ceil(3) = 3 -> outside
    assert m.alpha_lambda_accuracy(y, p, lam=0.75, mode="point") == 0.0
    # alpha 0.6: i=3 bounds [0.16, 0.64] -> now inside: 3/3
    assert m.alpha_lambda_accuracy(y, p, alpha=0.6) == 1.0
    # NaN propagates (a comparison with NaN would silently count as "outside")
    assert np.isnan(m.alpha_lambda_accuracy(y, [*p[:4], np.nan]))
    assert np.isnan(m.picp([0.5, np.nan], [0.4, 0.4], [0.6, 0.6]))


def test_interval_metrics_by_hand() -> None:
    y = [0.5, 0.2, 0.9]
    lo = [0.4, 0.3, 0.6]
    up = [0.6, 0.5, 0.8]
    # widths 0.2 each -> -2*0.1*0.2 = -0.04; point 2 below L by 0.1 -> -0.04 - 0.4 = -0.44;
    # point 3 above U by 0.1 -> -0.44
    np.testing.assert_allclose(m.interval_score(y, lo, up, alpha=0.1), [-0.04, -0.44, -0.44])
    assert m.ais(y, lo, up, alpha=0.1) == pytest.approx(-0.92 / 3)
    # same as -2 alpha times Gneiting-Raftery: point 2: 0.2 + (2/0.1)*0.1 = 2.2 -> -0.2*2.2
    assert m.interval_score(y, lo, up)[1] == pytest.approx(-0.2 * 2.2)
    assert m.picp(y, lo, up) == pytest.approx(1 / 3)
    assert m.piaw(lo, up) == pytest.approx(0.2)
    d = m.interval_metrics(y, lo, up, level=0.9)
    assert d["ais"] == pytest.approx(-0.92 / 3)
    with pytest.raises(ValueError, match="upper limit"):
        m.picp(y, up, lo)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="equal"):
        m.rmse([1, 2], [1])
    with pytest.raises(ValueError, match="at least one"):
        m.mae([], [])


def test_score_branch_switches_at_zero() -> None:
    """The early branch is d < 0 only: a small late error (0 < d < 1) uses exp(d/10) - 1."""
    # fraction unit: d = +0.5 -> exp(0.05) - 1 = 0.051271; the early formula would give
    # exp(-0.5/13) - 1 = -0.0377 (a negative score)
    assert m.score([0.0], [0.5], unit="fraction") == pytest.approx(math.expm1(0.05))
    assert m.score([0.0], [0.5], unit="fraction") == pytest.approx(0.0512711, abs=1e-7)


def test_phm2012_accuracy_near_zero_error_and_small_ruls() -> None:
    """Er in (0, 1] uses the early (/20) branch; an actual RUL below 1 (any unit) is valid;
    one non-positive actual RUL among valid ones is refused."""
    # Er = 100 * (100 - 99.5) / 100 = 0.5 -> A = exp(ln 0.5 * 0.5 / 20) = 0.5 ** 0.025
    np.testing.assert_allclose(m.phm2012_accuracy([100.0], [99.5]), [0.5**0.025])
    # RUL in hours: act 0.5, pred 0.4 -> Er = 20 -> A = 0.5
    np.testing.assert_allclose(m.phm2012_accuracy([0.5], [0.4]), [0.5])
    with pytest.raises(ValueError, match="actual RUL"):
        m.phm2012_accuracy([100.0, 0.0], [90.0, 1.0])


def test_alpha_lambda_edges_by_hand() -> None:
    """lam = 0 and 1 are allowed, t_lambda rounds up, bounds are inclusive, alpha = 0 is
    allowed (only exact predictions are inside), NaN in y_true propagates."""
    y = [1.0, 0.8, 0.6, 0.4, 0.2]
    p = [1.0, 0.9, 0.5, 0.6, 0.25]
    # lam = 0: all five; inside are i=0 (exact), i=1 (0.9 <= 1.04), i=2, i=4 -> 4/5
    assert m.alpha_lambda_accuracy(y, p, lam=0.0) == pytest.approx(4 / 5)
    # lam = 1: index ceil(4) = 4 -> 0.25 in [0.14, 0.26]
    assert m.alpha_lambda_accuracy(y, p, lam=1.0, mode="point") == 1.0
    # lam = 0.3: index ceil(1.2) = 2, where 0.9 > 0.78 is outside (i = 1 would be inside)
    p_late = [1.0, 0.9, 0.9, 0.6, 0.25]
    assert m.alpha_lambda_accuracy(y, p_late, lam=0.3, mode="point") == 0.0
    # exact bounds: y = 0.5, alpha = 0.5 -> [0.25, 0.75], both ends inside (binary-exact)
    assert m.alpha_lambda_accuracy([0.5, 0.5], [0.25, 0.75], alpha=0.5, lam=0.0) == 1.0
    # alpha = 0: only p == y is inside; at failure (y = 0) only an exact 0
    assert m.alpha_lambda_accuracy([0.5, 0.25, 0.0], [0.5, 0.3, 0.0], alpha=0.0,
                                   lam=0.0) == pytest.approx(2 / 3)
    assert np.isnan(m.alpha_lambda_accuracy([0.5, np.nan], [0.5, 0.5]))
    for lam in (-0.1, 1.5):
        with pytest.raises(ValueError, match="lam"):
            m.alpha_lambda_accuracy(y, p, lam=lam)
    with pytest.raises(ValueError, match="alpha"):
        m.alpha_lambda_accuracy(y, p, alpha=-0.1)


def test_interval_edges_by_hand() -> None:
    """Zero-width intervals are valid and cover a point on them (closed bounds); any
    crossed limit is refused; alpha must lie strictly inside (0, 1); NaN limits give NaN;
    the defaults are alpha 0.1 and level 0.9."""
    y = [0.5, 0.2]
    # point 1: zero width at y -> covered, S = 0; point 2: [0.2, 0.4], y on L -> covered
    lo, up = [0.5, 0.2], [0.5, 0.4]
    assert m.picp(y, lo, up) == 1.0
    assert m.piaw(lo, up) == pytest.approx(0.1)
    np.testing.assert_allclose(m.interval_score(y, lo, up), [0.0, -0.04])
    assert m.picp([0.4], [0.2], [0.4]) == 1.0  # y on U
    assert m.ais(y, lo, up) == pytest.approx(-0.02)  # default alpha 0.1
    d = m.interval_metrics(y, lo, up)  # default level 0.9 -> alpha 0.1
    assert d == pytest.approx({"picp": 1.0, "piaw": 0.1, "ais": -0.02})
    with pytest.raises(ValueError, match="upper limit"):
        m.picp(y, [0.4, 0.3], [0.6, 0.1])  # only the second interval is crossed
    with pytest.raises(ValueError, match="upper limit"):
        m.piaw([0.4, 0.3], [0.6, 0.1])
    for alpha in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            m.interval_score(y, lo, up, alpha=alpha)
    assert np.isnan(m.picp(y, [0.5, np.nan], up))
    assert np.isnan(m.picp(y, lo, [0.5, np.nan]))
