"""Point prediction + predictive interval for every model.

How the interval is made (``level`` is the central coverage, default 0.9):

- **rc_lstm** (``gaussian``): from the head, ``mu +/- z sigma``; with several models (an ensemble
  of RC-LSTMs) the equally weighted mixture's mean and standard deviation are used.
- **forest head** given: every tree of every member's forest predicts from that member's
  (deterministic) embedding; mean = mean of all trees (= the forest's prediction), interval =
  empirical ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the tree predictions
  (widened to include the mean where a skewed sample puts it outside), std = their standard
  deviation.
- **mc_dropout**: ``config.mc_samples`` stochastic passes per model with the MCDropout layers
  switched on (BatchNormalization stays in inference mode, its statistics are not touched);
  samples are seeded (``seed``), so the same call gives the same numbers; empirical quantiles
  as for the forest. Dropout sits only in the dense head, so the deterministic trunk runs once
  per window and only the head is sampled, with ``training=True`` rather than the shared
  flags, so a plain prediction running meanwhile never samples (:func:`mc_split`,
  :func:`mc_samples`; ``bench/mc_dropout.py``).
- **ensemble**: one deterministic prediction per member; mean, sample std (ddof 1), and
  ``mean +/- z std`` (a normal approximation: five members have no useful tails).

**Calibration.** None of these bands is calibrated: on held-out FEMTO bearings CARL's 90 %
MC-dropout band covered 11-21 % of the labels (``bench/results/phm2012_quick.md``). When
training has validation bearings, :func:`calibration_quantiles` stores split-conformal
factors (how many half-widths the labels lie from the mean); :func:`calibrated` widens (or
narrows) each half of the band by the factor for the requested level. Windows of one bearing
are correlated, so the coverage guarantee holds across bearings like the validation ones, not
window by window.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from rul_core.errors import RulError
from rul_core.models.build import embedding_model, inference_function
from rul_core.models.heads import ForestHead
from rul_core.models.layers import MCDropout
from rul_core.models.presets import ModelConfig
from rul_core.models.rc_lstm import z_value


def mc_dropout_layers(model: keras.Model) -> list[MCDropout]:
    """Every MCDropout layer of ``model`` (nested models included), in graph order."""
    return [lay for lay in model._flatten_layers(include_self=False) if isinstance(lay, MCDropout)]


def set_mc_dropout(model: keras.Model, active: bool, seed: int | None = None) -> int:
    """Switch MC dropout on/off in every MCDropout layer; reseed them if ``seed`` is given.

    Returns the number of layers switched.
    """
    found = mc_dropout_layers(model)
    for i, lay in enumerate(found):
        lay.mc_active.assign(1.0 if active else 0.0)
        if seed is not None:
            lay.reset_seed(int(seed) * 7919 + i)
    return len(found)


def _summary(samples: np.ndarray, level: float) -> dict[str, np.ndarray]:
    lo, hi = np.quantile(samples, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=0)
    mean = samples.mean(axis=0)
    return {
        "mean": mean,
        "lower": np.minimum(lo, mean),  # a skewed sample can put its mean outside the band
        "upper": np.maximum(hi, mean),
        "std": samples.std(axis=0),
    }


def _normal(mean: np.ndarray, std: np.ndarray, level: float) -> dict[str, np.ndarray]:
    z = z_value(level)
    return {"mean": mean, "lower": mean - z * std, "upper": mean + z * std, "std": std}


# model -> its (trunk, head), or None; entries go with their model
_MC_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def mc_split(model: keras.Model) -> tuple[keras.Model, keras.Model] | None:
    """(trunk, head) of ``model`` cut at the input of its first MCDropout layer, or None when
    the model does not cut there (a dropout outside the head, a path around the cut, nested
    models).

    Dropout only ever sits in the dense head, so everything before it is deterministic: the
    trunk (the CNN/LSTM/attention body, nearly all the cost) runs once per window and only the
    head is sampled. Both share the model's layers and weights; built once per model.
    """
    if model in _MC_SPLITS:
        return _MC_SPLITS[model]
    found = mc_dropout_layers(model)
    split = None
    if found:
        try:
            cut = found[0].input
            trunk = keras.Model(model.inputs, cut, name=f"{model.name}_trunk")
            head = keras.Model(cut, model.outputs, name=f"{model.name}_head")
            if {id(lay) for lay in mc_dropout_layers(head)} == {id(lay) for lay in found}:
                split = (trunk, head)
        except Exception:  # not a single-graph functional model: sample the whole model
            split = None
    _MC_SPLITS[model] = split
    return split


# layers a split head may hold for it to be sampled with ``training=True`` (no flag): dropout
# is the only one of them whose output depends on ``training``
_FLAG_FREE_HEAD_LAYERS = (MCDropout, keras.layers.Dense, keras.layers.InputLayer,
                          keras.layers.Activation)
_MC_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_MC_LOCKS_GUARD = threading.Lock()


def _model_lock(model: keras.Model) -> threading.Lock:
    """One lock per model: MC sampling reseeds the model's shared dropout streams."""
    with _MC_LOCKS_GUARD:
        lock = _MC_LOCKS.get(model)
        if lock is None:
            lock = _MC_LOCKS[model] = threading.Lock()
    return lock


def _predict(model: keras.Model, arrays: list[np.ndarray]) -> Any:
    """``model`` in inference mode on one batch, through its one-trace compiled function
    (:func:`rul_core.models.build.inference_function`: any batch size, one trace)."""
    return inference_function(model)(*arrays)


def mc_samples(
    model: keras.Model, inputs: Any, n_samples: int, seed: int = 0, batch_size: int = 256
) -> np.ndarray:
    """(n_samples, n) MC-dropout predictions, reproducible for a seed; dropout off afterwards.

    The deterministic trunk (:func:`mc_split`) runs once per window; each chunk of its outputs
    is tiled ``n_samples`` times into one batch of the head, where every row draws its own
    dropout masks, so each copy is an independent sample. A head of dense and dropout layers
    only is called with ``training=True``, so the model's ``mc_active`` flags stay off and a
    deterministic prediction running meanwhile (another app session sharing the cached model)
    never samples, and draws from the layers' inference stream, not from the sampling stream
    used here (:class:`MCDropout`), so the samples stay their seed's. A model that does not split is
    sampled whole the same way (tiled inputs, flags on; a plain prediction running meanwhile
    then moves its stream). Calls on one model are serialised: each reseeds its dropout
    streams. Memory stays at one batch.
    """
    arrays = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    n, k = len(arrays[0]), int(n_samples)
    with _model_lock(model):
        split = mc_split(model)
        flag_free = split is not None and all(
            isinstance(lay, _FLAG_FREE_HEAD_LAYERS) for lay in split[1].layers
        )
        if set_mc_dropout(model, not flag_free, seed) == 0:
            raise RulError(
                f"model {model.name!r} has no MCDropout layer (dropout 0?): no MC-dropout "
                "interval; use interval='ensemble' or a dropout > 0"
            )
        step = max(1, int(batch_size) // k) if split is None else max(1, int(batch_size))
        sampled = mc_dropout_layers(model) if flag_free else []
        try:
            for lay in sampled:
                lay.sampling = True  # their training=True draws come from the sampling stream
            parts = []
            for i in range(0, n, step):
                chunk = [np.asarray(a[i : i + step], dtype=np.float32) for a in arrays]
                if split is None:
                    tiled = [np.concatenate([c] * k, axis=0) for c in chunk]
                    out = _predict(model, tiled)
                else:
                    cut = np.asarray(_predict(split[0], chunk))
                    tiled = np.concatenate([cut] * k, axis=0)
                    out = (keras.ops.convert_to_numpy(split[1](tiled, training=True))
                           if flag_free else _predict(split[1], [tiled]))
                parts.append(np.asarray(out).reshape(k, -1))
        finally:
            for lay in sampled:
                lay.sampling = False
            set_mc_dropout(model, False)
    return np.concatenate(parts, axis=1).astype(np.float64)


def predict_point_and_interval(
    models: Sequence[keras.Model],
    config: ModelConfig,
    inputs: Any,
    forest: ForestHead | Sequence[ForestHead] | None = None,
    level: float = 0.9,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Mean, lower, upper and std (each (n,), float64) from one model or an ensemble."""
    models = list(models)
    if not models:
        raise RulError("predict_point_and_interval: no model given")
    z_value(level)  # validates level
    if config.name == "rc_lstm":
        preds = np.stack(
            [np.asarray(m.predict(inputs, batch_size=batch_size, verbose=0)) for m in models]
        ).astype(np.float64)  # (M, n, 2)
        mu, sigma = preds[..., 0], preds[..., 1]
        mean = mu.mean(axis=0)
        var = (sigma**2 + mu**2).mean(axis=0) - mean**2
        return _normal(mean, np.sqrt(np.maximum(var, 0.0)), level)
    if forest is not None:
        forests = [forest] if isinstance(forest, ForestHead) else list(forest)
        if len(forests) != len(models):
            raise RulError(
                f"predict_point_and_interval: {len(models)} model(s) but {len(forests)} forest(s)"
            )
        trees = [
            f.predict_trees(embedding_model(m).predict(inputs, batch_size=batch_size, verbose=0))
            for m, f in zip(models, forests, strict=True)
        ]
        return _summary(np.concatenate(trees, axis=0).astype(np.float64), level)
    if config.interval == "mc_dropout":
        samples = [
            mc_samples(
                m, inputs, config.mc_samples, seed=int(seed) + 1000 * i, batch_size=batch_size
            )
            for i, m in enumerate(models)
        ]
        return _summary(np.concatenate(samples, axis=0), level)
    preds = np.stack(
        [
            np.asarray(m.predict(inputs, batch_size=batch_size, verbose=0)).reshape(-1)
            for m in models
        ]
    ).astype(np.float64)
    std = preds.std(axis=0, ddof=1) if len(models) > 1 else np.zeros(preds.shape[1])
    return _normal(preds.mean(axis=0), std, level)


#: Levels (percent) at which :func:`calibration_quantiles` stores the conformal factor.
CALIBRATION_LEVELS = np.arange(0, 101, dtype=np.float64)


def nonconformity(
    y_true: np.ndarray, mean: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """How many band half-widths each label lies from the mean (on its side of the mean).

    A zero-width half (a single deterministic model) counts as 1e-9 wide, so the factor then
    becomes an absolute residual quantile in units of 1e-9: the classic residual band.
    """
    y, m = np.asarray(y_true, np.float64), np.asarray(mean, np.float64)
    lo_w = np.maximum(m - np.asarray(lower, np.float64), 1e-9)
    hi_w = np.maximum(np.asarray(upper, np.float64) - m, 1e-9)
    return np.where(y >= m, (y - m) / hi_w, (m - y) / lo_w)


def calibration_quantiles(scores: np.ndarray) -> list[float]:
    """Quantiles of the nonconformity scores at :data:`CALIBRATION_LEVELS` (split conformal,
    finite-sample corrected: level L uses the ceil((n + 1) L) / n empirical quantile)."""
    s = np.sort(np.asarray(scores, np.float64).reshape(-1))
    if s.size == 0:
        raise RulError("interval calibration: no validation predictions")
    n = s.size
    ranks = np.minimum(np.ceil((n + 1) * CALIBRATION_LEVELS / 100.0), n).astype(int)
    return [float(s[max(r - 1, 0)]) for r in ranks]


def calibrated(
    pred: dict[str, np.ndarray], quantiles: Sequence[float] | None, level: float
) -> dict[str, np.ndarray]:
    """``pred`` with each half of its band scaled by the conformal factor for ``level``.

    ``quantiles`` come from :func:`calibration_quantiles` on held-out bearings; None leaves
    the band as the model gave it.
    """
    if not quantiles:
        return pred
    factor = float(np.interp(100.0 * float(level), CALIBRATION_LEVELS, np.asarray(quantiles)))
    m = np.asarray(pred["mean"], np.float64)
    lo_w = np.maximum(m - pred["lower"], 1e-9)
    hi_w = np.maximum(pred["upper"] - m, 1e-9)
    out = dict(pred)
    out["lower"] = m - factor * lo_w
    out["upper"] = m + factor * hi_w
    return out
