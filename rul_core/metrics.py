"""Prognostic metrics (SPEC §5): point accuracy, asymmetric scores and interval quality.

Conventions used by every function here:

- ``y_true`` / ``y_pred`` are 1-D arrays of the same length. Unless a function says otherwise,
  RUL is the *normalised* RUL of SPEC §3 (1 = start of life, 0 = failure), so RMSE and MAE
  are fractions of life.
- The papers' "MSE" is computed with a square root; it is :func:`rmse`.
- Interval metrics take the lower and upper limits of the prediction interval (PI) in the same
  unit as ``y_true``.
- Empty inputs raise ``ValueError``; NaN inputs propagate to NaN.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

ScoreUnit = Literal["percent", "fraction", "native"]

_LN_HALF = math.log(0.5)


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 1-D with equal, non-zero length."""
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}; expected equal")
    if t.size == 0:
        raise ValueError("metrics need at least one value, got none")
    return t, p


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root-mean-square error sqrt(mean((y_hat - y)^2)) in the unit of ``y`` (papers' "MSE")."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error mean(|y_hat - y|), in the unit of ``y``."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def score(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    unit: ScoreUnit = "percent",
    scale: float = 1.0,
) -> float:
    """CARLE eq. 16 asymmetric score (lower is better, 0 is perfect), summed over predictions.

    ``d = y_hat - y`` expressed in ``unit``; ``score = sum(exp(-d/13) - 1 for d < 0) +
    sum(exp(d/10) - 1 for d >= 0)``: late (over-)estimates (d > 0) cost more than early ones.

    The value depends on the unit of ``d``, so it is explicit:

    - ``"percent"`` (default): inputs are normalised RUL and ``d = 100 * (y_hat - y)``, i.e.
      the error in percent of the bearing's life;
    - ``"fraction"``: ``d = y_hat - y`` on normalised RUL as given (tiny scores; the error
      constants 13 and 10 then mean 13 and 10 lives);
    - ``"native"``: inputs already carry a unit (minutes, snapshots, seconds) and
      ``d = scale * (y_hat - y)``; ``scale`` converts to the wanted unit.
    """
    t, p = _pair(y_true, y_pred)
    if unit == "percent":
        d = 100.0 * (p - t)
    elif unit == "fraction":
        d = p - t
    elif unit == "native":
        d = float(scale) * (p - t)
    else:
        raise ValueError(f"score unit must be 'percent', 'fraction' or 'native', got {unit!r}")
    terms = np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))
    return float(np.sum(terms))


def phm2012_accuracy(actual_rul: np.ndarray, predicted_rul: np.ndarray) -> np.ndarray:
    """Per-bearing PHM 2012 accuracy A_i in (0, 1] (1 is a perfect estimate).

    ``Er_i = 100 * (ActRUL_i - RUL_hat_i) / ActRUL_i`` (percent error; negative means the
    RUL was over-estimated, i.e. a late prediction); ``A_i = exp(-ln(0.5) * Er_i / 5)`` when
    ``Er_i <= 0`` and ``exp(+ln(0.5) * Er_i / 20)`` when ``Er_i > 0``. Any consistent RUL unit
    (seconds in the challenge) gives the same value. ``ActRUL_i`` must be > 0.
    """
    act, pred = _pair(actual_rul, predicted_rul)
    if np.any(act <= 0):
        raise ValueError("PHM 2012 score: every actual RUL must be > 0 (it divides Er)")
    er = 100.0 * (act - pred) / act
    return np.where(er <= 0, np.exp(-_LN_HALF * er / 5.0), np.exp(_LN_HALF * er / 20.0))


def phm2012_score(actual_rul: np.ndarray, predicted_rul: np.ndarray) -> float:
    """IEEE PHM 2012 challenge score: the mean of :func:`phm2012_accuracy` over test bearings.

    Each element is one bearing's actual and predicted RUL at its truncation point.
    Higher is better; 1 is perfect.
    """
    return float(np.mean(phm2012_accuracy(actual_rul, predicted_rul)))


def alpha_lambda_accuracy(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    alpha: float = 0.3,
    lam: float = 0.5,
    mode: Literal["point", "fraction"] = "fraction",
) -> float:
    """alpha-lambda accuracy (Saxena et al. 2010) of one bearing's predictions in time order.

    A prediction at snapshot i is *inside* when ``(1 - alpha) * y_i <= y_hat_i <=
    (1 + alpha) * y_i`` (relative bounds around the true RUL). The time ``t_lambda`` is the
    fraction ``lam`` of the way through the sequence: index ``ceil(lam * (n - 1))``.

    - ``mode="point"``: 1.0 if the prediction at ``t_lambda`` is inside, else 0.0 (the
      binary metric as defined by Saxena);
    - ``mode="fraction"`` (default): the fraction of predictions from ``t_lambda`` to the end
      that are inside, in [0, 1] — the percentage the RC-LSTM paper's tables report.

    The bounds are relative, so at the failure point (y = 0) only an exact 0 is inside.
    Unitless; multiply by 100 for percent.
    """
    t, p = _pair(y_true, y_pred)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if mode not in ("point", "fraction"):
        raise ValueError(f"mode must be 'point' or 'fraction', got {mode!r}")
    if np.isnan(t).any() or np.isnan(p).any():
        return math.nan
    inside = (p >= (1.0 - alpha) * t) & (p <= (1.0 + alpha) * t)
    start = math.ceil(lam * (t.size - 1))
    if mode == "point":
        return float(inside[start])
    return float(np.mean(inside[start:]))


def _interval(
    y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, lo = _pair(y_true, lower)
    _, up = _pair(y_true, upper)
    if np.any(up < lo):
        raise ValueError("prediction interval: every upper limit must be >= its lower limit")
    return t, lo, up


def interval_score(
    y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray, alpha: float = 0.1
) -> np.ndarray:
    """Per-point interval score S_i, *negative-oriented* as in the RC-LSTM paper (0 is best).

    With width ``w = U - L`` and nominal miscoverage ``alpha`` (0.1 for a 90 % interval)::

        S_i = -2 alpha w - 4 (L - y)   if y < L
        S_i = -2 alpha w               if L <= y <= U
        S_i = -2 alpha w - 4 (y - U)   if y > U

    This is ``-2 alpha`` times the Gneiting–Raftery (2007) interval score
    ``w + (2/alpha)(L - y)_+ + (2/alpha)(y - U)_+``; it is always <= 0 and higher (closer to
    0) is better. Unit: the unit of ``y``.
    """
    t, lo, up = _interval(y_true, lower, upper)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha (nominal miscoverage) must lie in (0, 1), got {alpha}")
    s = -2.0 * alpha * (up - lo)
    s = s - 4.0 * np.clip(lo - t, 0.0, None) - 4.0 * np.clip(t - up, 0.0, None)
    return s


def ais(y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray, alpha: float = 0.1) -> float:
    """Average interval score: mean of :func:`interval_score` (<= 0; closer to 0 is better)."""
    return float(np.mean(interval_score(y_true, lower, upper, alpha)))


def picp(y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """PI coverage probability: fraction of points with ``L_i <= y_i <= U_i``, in [0, 1]."""
    t, lo, up = _interval(y_true, lower, upper)
    if np.isnan(t).any() or np.isnan(lo).any() or np.isnan(up).any():
        return math.nan
    return float(np.mean((t >= lo) & (t <= up)))


def piaw(lower: np.ndarray, upper: np.ndarray) -> float:
    """PI averaged width: mean(U_i - L_i), in the unit of the RUL (normalised RUL here)."""
    lo, up = _pair(lower, upper)
    if np.any(up < lo):
        raise ValueError("prediction interval: every upper limit must be >= its lower limit")
    return float(np.mean(up - lo))


def point_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and score (percent unit) of one set of predictions."""
    return {
        "rmse": rmse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "score": score(y_true, y_pred, unit="percent"),
    }


def interval_metrics(
    y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float = 0.9
) -> dict[str, float]:
    """PICP, PIAW and AIS of one set of intervals with nominal coverage ``level``."""
    return {
        "picp": picp(y_true, lower, upper),
        "piaw": piaw(lower, upper),
        "ais": ais(y_true, lower, upper, alpha=1.0 - level),
    }
