"""LIME for the RUL networks: tabular on the TF features, image on ImR column bands.

* Tabular: ``lime.lime_tabular`` in regression mode with training windows' TF features as
  background (their quartiles discretise each feature); the image is held fixed. A feature's
  weight is the local-linear effect of the feature being in its current quartile.
* Image: ``lime.lime_image``'s procedure with a segmentation into column bands (default 25
  bands of 20 columns on a 500-column ImR): a band is a stretch of the window in time, which
  is what a line raster can meaningfully switch off; switched-off bands are blank (0). The TF
  features are held fixed. Run by :func:`lime_on_segments` (lime's draws, kernel and ridge fit,
  the same weights) with the perturbed images built in batches instead of one Python deep
  copy per sample (0.45 s of a 300-sample, 3-seed explanation).
* Signal (RC-LSTM): segments of the input sequence's samples (default 25) switched on and off
  the same way (:func:`lime_on_segments`); a switched-off segment takes the training windows'
  mean signal (flat).

Every explanation is repeated for several seeds (default 5) and the per-feature mean and
standard deviation of the weights are reported, so the user sees how stable LIME is.
Predictions are batched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rul_core.errors import RulError
from rul_core.explain.common import (
    WindowInputs,
    band_segments,
    image_predictor,
    input_names,
    masked_signal,
    modalities,
    predict,
    tf_feature_names,
    tf_predictor,
)
from rul_core.progress import CancelToken, ProgressFn, check, emit

DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass
class LimeResult:
    """LIME weights of one window for several seeds: ``weights`` (n_seeds, n_features)."""

    method: str  # "lime_tabular" | "lime_image" | "lime_signal"
    feature_names: list[str]
    weights: np.ndarray
    intercepts: np.ndarray
    local_predictions: np.ndarray  # LIME's surrogate prediction at the instance, per seed
    prediction: float  # the network's prediction at the instance
    seeds: tuple[int, ...]
    num_samples: int
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray:
        """Mean weight per feature over seeds."""
        return self.weights.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation of the weight per feature over seeds (ddof 0)."""
        return self.weights.std(axis=0)

    def table(self) -> pd.DataFrame:
        """feature, mean, std of the weights (for display)."""
        return pd.DataFrame(
            {"feature": self.feature_names, "mean": self.mean, "std": self.std}
        )


def _dense(pairs: Sequence[tuple[int, float]], n: int) -> np.ndarray:
    """LIME's (feature, weight) pairs as a weight vector of length n (absent features: 0)."""
    w = np.zeros(n)
    for j, v in pairs:
        w[j] = v
    return w


def _only_map(exp: Any) -> list[tuple[int, float]]:
    local = exp.local_exp
    return list(local[next(iter(local))])


#: One seed's LIME fit: (weights (n_features,), intercept, surrogate prediction at the instance).
SeedFit = tuple[np.ndarray, float, float]


def _over_seeds(
    method: str,
    feature_names: list[str],
    seeds: Sequence[int],
    num_samples: int,
    fit_seed: Callable[[int], SeedFit],
    instance_prediction: Callable[[], float],
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    extras: dict[str, Any] | None = None,
) -> LimeResult:
    """Run ``fit_seed`` once per seed (cancellable, reporting progress as ``method``) and
    collect the fits, the network's prediction and the seconds taken into a LimeResult."""
    t0 = time.perf_counter()
    weights, intercepts, local = [], [], []
    for i, seed in enumerate(seeds):
        check(cancel)
        w, intercept, local_pred = fit_seed(int(seed))
        weights.append(w)
        intercepts.append(intercept)
        local.append(local_pred)
        emit(progress, method.replace("_", " "), i + 1, len(seeds))
    return LimeResult(
        method=method,
        feature_names=list(feature_names),
        weights=np.array(weights),
        intercepts=np.array(intercepts),
        local_predictions=np.array(local),
        prediction=instance_prediction(),
        seeds=tuple(int(s) for s in seeds),
        num_samples=int(num_samples),
        seconds=time.perf_counter() - t0,
        extras=extras or {},
    )


def lime_tabular(
    model: Any,
    window: WindowInputs,
    background_tf: np.ndarray,
    num_samples: int = 1000,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    feature_names: list[str] | None = None,
    batch_size: int = 256,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> LimeResult:
    """LIME tabular on the window's TF features (image held fixed), repeated per seed.

    ``background_tf``: training windows' TF features (n, F) (or (n, F, 1)).
    """
    from lime.lime_tabular import LimeTabularExplainer

    if "tf" not in modalities(model):
        raise RulError(f"model '{model.name}': has no 'tf' input for LIME tabular")
    bg = np.asarray(background_tf, dtype=np.float64).reshape(len(background_tf), -1)
    x = window.arrays["tf"].reshape(-1).astype(np.float64)
    if bg.shape[1] != x.size:
        raise RulError(f"background_tf: expected (n, {x.size}) features, found {bg.shape}")
    if num_samples < 10:
        raise RulError(f"num_samples: expected at least 10, found {num_samples}")
    names = feature_names or tf_feature_names(x.size)
    f = tf_predictor(model, window, batch_size)

    def fit_seed(seed: int) -> SeedFit:
        explainer = LimeTabularExplainer(
            bg, mode="regression", feature_names=names, random_state=seed,
            discretize_continuous=True,
        )
        exp = explainer.explain_instance(x, f, num_features=x.size, num_samples=num_samples)
        intercept = (float(np.ravel(exp.intercept[next(iter(exp.intercept))])[0])
                     if isinstance(exp.intercept, dict) else float(exp.intercept))
        local = float(np.ravel(exp.local_pred)[0]) if exp.local_pred is not None else np.nan
        return _dense(_only_map(exp), x.size), intercept, local

    return _over_seeds("lime_tabular", names, seeds, num_samples, fit_seed,
                       lambda: float(f(x[None])[0]), progress, cancel)


def lime_on_segments(
    seed: int,
    num_samples: int,
    n_features: int,
    predict_masks: Callable[[np.ndarray], np.ndarray],
    kernel_width: float = 0.25,
) -> SeedFit:
    """One seed of ``lime_image``'s procedure on any on/off segments, vectorised.

    The same draws and fit as ``LimeImageExplainer(random_state=seed).explain_instance``:
    keep-masks (num_samples, n_features) of 0/1 from ``RandomState(seed)``, the first all on;
    labels ``predict_masks(masks)`` (num_samples,); weights by the kernel
    ``sqrt(exp(-d² / kernel_width²))`` of the cosine distance to the all-on mask; LIME's
    weighted ridge (``LimeBase``, same random state, ``auto`` feature selection). lime builds
    one deep copy of the image per sample in Python; here the caller masks in batches.
    """
    from lime.lime_base import LimeBase
    from sklearn.metrics import pairwise_distances

    def kernel(d: np.ndarray) -> np.ndarray:
        return np.sqrt(np.exp(-(d ** 2) / kernel_width ** 2))

    rng = np.random.RandomState(seed)
    data = rng.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
    data[0, :] = 1
    labels = np.asarray(predict_masks(data), dtype=np.float64).reshape(-1, 1)
    distances = pairwise_distances(data, data[:1], metric="cosine").ravel()
    intercept, local_exp, _, local_pred = LimeBase(kernel, random_state=rng) \
        .explain_instance_with_data(data, labels, distances, 0, n_features)
    return _dense(local_exp, n_features), float(intercept), float(np.ravel(local_pred)[0])


def lime_image(
    model: Any,
    window: WindowInputs,
    num_samples: int = 1000,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    n_bands: int = 25,
    segmentation_fn: Any = None,
    hide_color: float = 0.0,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> LimeResult:
    """LIME image on the window's ImR (TF features held fixed), repeated per seed.

    Segments are ``n_bands`` column bands unless ``segmentation_fn(image2d) -> int labels``
    (0, 1, ...) is given. Hidden segments take ``hide_color`` (0 = blank raster). The weights
    are ``lime.lime_image``'s for the same seed (:func:`lime_on_segments`; tested against it),
    the perturbed images built ``batch_size`` at a time as lime batches its calls.
    """
    if "image" not in modalities(model):
        raise RulError(f"model '{model.name}': has no 'image' input for LIME image")
    if num_samples < 1:
        raise RulError(f"num_samples: expected at least 1, found {num_samples}")
    img = window.arrays["image"][0, ..., 0]  # (H, W) float32
    segments = (np.broadcast_to(band_segments(img.shape[1], n_bands), img.shape)
                if segmentation_fn is None
                else np.asarray(segmentation_fn(img.astype(np.float64)), dtype=np.int64))
    n_seg = int(np.max(segments)) + 1
    n_features = int(np.unique(segments).size)  # lime's count: a label >= it is never hidden
    always = segments >= n_features
    index = np.minimum(segments, n_features - 1)
    fill = np.float32(hide_color)
    f = image_predictor(model, window, batch_size)
    step = max(int(batch_size), 1)

    def predict_masks(data: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(data), step):
            keep = data[start:start + step][:, index].astype(bool) | always
            out.append(f(np.where(keep, img, fill)[..., None]))
        return np.concatenate(out)

    def fit_seed(seed: int) -> SeedFit:
        weights, intercept, local = lime_on_segments(seed, num_samples, n_features,
                                                     predict_masks)
        return _dense(list(enumerate(weights)), n_seg), intercept, local

    return _over_seeds("lime_image", [f"band{b}" for b in range(n_seg)], seeds, num_samples,
                       fit_seed, lambda: float(f(img[None, ..., None])[0]), progress, cancel,
                       extras={"n_bands": n_seg})


def lime_signal(
    model: Any,
    window: WindowInputs,
    num_samples: int = 1000,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    n_segments: int = 25,
    baseline: np.ndarray | None = None,
    kernel_width: float = 0.25,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> LimeResult:
    """LIME on segments of the window's signal sequence (RC-LSTM), repeated per seed.

    Samples keep-masks as ``lime_image`` does (each segment on or off with probability 1/2,
    the first sample all on), weighs them by ``lime_image``'s kernel of the cosine distance
    to the all-on mask, and fits LIME's weighted ridge (``LimeBase``):
    :func:`lime_on_segments`. Off segments take ``baseline`` (T, L, 1, C) (see
    :func:`rul_core.explain.common.masked_signal`).
    """
    if "signal" not in modalities(model) or len(input_names(model)) != 1:
        raise RulError(f"model '{model.name}': LIME on the signal needs the one input 'signal'")
    if num_samples < 10:
        raise RulError(f"num_samples: expected at least 10, found {num_samples}")
    x = window.arrays["signal"]

    def predict_masks(data: np.ndarray) -> np.ndarray:
        return predict(model, [masked_signal(x, data, baseline)], batch_size)

    def fit_seed(seed: int) -> SeedFit:
        return lime_on_segments(seed, num_samples, n_segments, predict_masks, kernel_width)

    return _over_seeds("lime_signal", [f"segment{b}" for b in range(n_segments)], seeds,
                       num_samples, fit_seed, lambda: float(predict(model, [x])[0]), progress,
                       cancel, extras={"n_segments": n_segments})


def lime_explain(
    model: Any,
    window: WindowInputs,
    background_tf: np.ndarray | None,
    num_samples: int = 1000,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    n_bands: int = 25,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    signal_baseline: np.ndarray | None = None,
) -> dict[str, LimeResult]:
    """LIME for every modality the model takes: {'tf': ..., 'image': ...} or {'signal': ...}
    (``n_bands`` segments, off ones at ``signal_baseline``)."""
    out: dict[str, LimeResult] = {}
    for name in input_names(model):
        if name == "tf":
            if background_tf is None:
                raise RulError("background_tf: LIME tabular needs training windows' TF features")
            out["tf"] = lime_tabular(model, window, background_tf, num_samples, seeds,
                                     progress=progress, cancel=cancel)
        elif name == "image":
            out["image"] = lime_image(model, window, num_samples, seeds, n_bands,
                                      progress=progress, cancel=cancel)
        elif name == "signal":
            out["signal"] = lime_signal(model, window, num_samples, seeds, n_bands,
                                        signal_baseline, progress=progress, cancel=cancel)
    return out
