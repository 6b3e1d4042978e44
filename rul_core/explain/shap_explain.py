"""SHAP for the RUL models: Gradient (networks), Tree (forest heads), Kernel (fallback).

* :func:`gradient_shap` — ``shap.GradientExplainer`` (expected gradients) on the network,
  multi-input models as lists; DeepExplainer is not used (it fails on Keras 3 LSTM and
  attention layers). Expected gradients are approximately additive only; the gap
  Σφ − (f(x) − E f(background)) is reported, not enforced.
* :func:`tree_shap` — ``shap.TreeExplainer`` on a forest head over network embeddings; exact, so
  additivity (Σφ + E = forest prediction) is checked.
* :func:`kernel_shap_tf` — ``shap.KernelExplainer`` on the TF features with the image held fixed
  (model-agnostic); Kernel SHAP's regression enforces additivity, which is checked.
* :func:`kernel_shap_bands` — Kernel SHAP on image column bands (on/off, off = blank).

Backgrounds come from training windows: :func:`choose_background` (seeded random subset or
k-means for tabular data). :func:`global_importance` = mean |SHAP| over a set of windows.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rul_core.errors import RulError
from rul_core.explain.common import (
    WindowInputs,
    band_mask_images,
    image_predictor,
    input_names,
    predict,
    tf_feature_names,
    tf_predictor,
)
from rul_core.progress import CancelToken, ProgressFn, check, emit


@dataclass
class ShapResult:
    """SHAP values of a batch: ``values`` per input name, shaped like the inputs."""

    method: str  # "gradient" | "tree" | "kernel_tf" | "kernel_bands"
    values: dict[str, np.ndarray]
    expected_value: float
    prediction: np.ndarray  # (n,)
    additivity_gap: np.ndarray  # (n,) Σφ + E − f(x)
    additivity_exact: bool  # whether the explainer promises additivity
    seconds: float
    feature_names: dict[str, list[str]] = field(default_factory=dict)

    def totals(self) -> np.ndarray:
        """Per-sample Σφ over all inputs."""
        return np.sum([v.reshape(v.shape[0], -1).sum(axis=1) for v in self.values.values()],
                      axis=0)


def choose_background(
    inputs: list[np.ndarray], n: int = 50, method: str = "random", seed: int = 0
) -> list[np.ndarray]:
    """A background set from training-window inputs (model order): a seeded random subset, or
    (method 'kmeans', single flat tabular input only) k-means centres weighted by size."""
    total = int(inputs[0].shape[0])
    if total == 0:
        raise RulError("background: no training windows given")
    if method == "kmeans":
        if len(inputs) != 1:
            raise RulError("background: k-means needs one tabular input; use method 'random'")
        import shap

        flat = inputs[0].reshape(total, -1)
        centres = shap.kmeans(flat, min(n, total)).data
        return [centres.reshape(-1, *inputs[0].shape[1:]).astype(np.float32)]
    if method != "random":
        raise RulError(f"background method: expected 'random' or 'kmeans', found {method!r}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(total, size=min(n, total), replace=False))
    return [np.asarray(x[idx], dtype=np.float32) for x in inputs]


def _squeeze_output_axis(v: np.ndarray, ndim: int) -> np.ndarray:
    """SHAP values of output unit 0 (RUL; RC-LSTM's second unit is its sigma)."""
    v = np.asarray(v, dtype=np.float64)
    while v.ndim > ndim:
        v = v[..., 0]
    return v


# shap seeds numpy's global random state in every call: one call at a time, so a seed gives
# the same values while other app sessions explain too
_GRADIENT_LOCK = threading.Lock()
_EXPLAINER_ATTR = "_rul_gradient_explainer"
_GRADIENTS_ATTR = "_rul_gradient_functions"
_GRADIENTS_LOCK = threading.Lock()


def _background_key(background: list[np.ndarray]) -> str:
    """A content hash of the background arrays (the expected value is kept per background)."""
    digest = hashlib.blake2b(digest_size=16)
    for a in background:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.shape}{a.dtype}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def gradient_function(model: Any, output_index: int = 0) -> Any:
    """``g([x1, x2, ...]) -> [∂y/∂x1, ...]`` with ``y = model(x, training=False)[:, output_index]``
    summed over the batch (what shap's GradientExplainer differentiates), compiled once per
    model and output unit with the batch axis open, and kept on the model (a plain attribute
    outside Keras's tracking, like :func:`rul_core.models.build.inference_function`).

    shap's own gradient function belongs to one explainer (one background) and is traced
    again for every batch shape: a new background, or a sample count that leaves a shorter
    last batch, cost a trace (0.7-1.2 s on the demo models) on the Explain page's first
    click. This one is traced once per model, whatever the background and batch; the
    page traces it before the first click (:mod:`rul_core.explain.warm`).
    """
    with _GRADIENTS_LOCK:
        fns = getattr(model, _GRADIENTS_ATTR, None)
        if fns is None:
            fns = {}
            object.__setattr__(model, _GRADIENTS_ATTR, fns)
        fn = fns.get(int(output_index))
        if fn is not None:
            return fn
        import tensorflow as tf

        specs = [tf.TensorSpec((None, *kt.shape[1:]), tf.float32) for kt in model.inputs]
        multi = isinstance(model.input, list)
        unit = int(output_index)

        @tf.function(input_signature=[specs])
        def fn(xs: Any) -> Any:
            xs = list(xs)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(xs)
                out = model(xs if multi else xs[0], training=False)
                if len(out.shape) > 1:
                    out = out[:, unit]
            return tape.gradient(out, xs)

        fns[unit] = fn
        return fn


def _gradient_explainer(model: Any, background: list[np.ndarray], multi: bool,
                        batch_size: int, output_index: int) -> Any:
    """The model's GradientExplainer, built once and kept on the model, pointed at this
    background, batch size and the one-trace :func:`gradient_function`.

    Kept as a plain attribute (outside Keras's tracking), so it goes with the model (a
    reference cycle the garbage collector frees). On TensorFlow its gradient function is
    :func:`gradient_function` (one trace per model instead of one per background and batch
    shape) and the model call shap makes before sampling (for output ranking, unused here)
    goes through the compiled :func:`~rul_core.models.build.inference_function` instead of
    an eager call (0.15 s on the demo Multimodal-RUL, its LSTMs stepped in Python).
    """
    import keras
    import shap

    from rul_core.models.build import inference_function

    data = [np.asarray(b, dtype=np.float32) for b in background]
    explainer = getattr(model, _EXPLAINER_ATTR, None)
    if explainer is None:
        explainer = shap.GradientExplainer(model, data if multi else data[0],
                                           batch_size=batch_size)
        object.__setattr__(model, _EXPLAINER_ATTR, explainer)
    inner = explainer.explainer
    inner.data = data
    inner.batch_size = int(batch_size)
    if keras.backend.backend() == "tensorflow" and hasattr(inner, "gradients"):
        inner.gradients[output_index] = gradient_function(model, output_index)
        forward = inference_function(model)
        inner.model = lambda xs: forward(*xs)
    return explainer


def gradient_shap(
    model: Any,
    inputs: list[np.ndarray],
    background: list[np.ndarray],
    nsamples: int = 200,
    seed: int = 0,
    batch_size: int = 50,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ShapResult:
    """GradientExplainer SHAP of the network's output unit 0 (the RUL) for ``inputs`` (model
    order). The explainer and its gradient function are reused across calls with the same
    model (any background), and only unit 0 is differentiated: shap would explain every
    unit, RC-LSTM's sigma too (twice the gradients; unit 0's values are the same, its
    samples drawn first from the same seed)."""
    check(cancel)
    names = input_names(model)
    multi = len(names) > 1
    t0 = time.perf_counter()
    emit(progress, "shap gradient", 0, 1)
    n = int(inputs[0].shape[0])
    with _GRADIENT_LOCK:
        explainer = _gradient_explainer(model, background, multi, batch_size, 0)
        raw, _ = explainer.shap_values(inputs if multi else inputs[0], nsamples=nsamples,
                                       ranked_outputs=np.zeros((n, 1), dtype=int),
                                       output_rank_order="custom", rseed=seed)
        key = _background_key(background)
        expected_by_background = getattr(explainer, "_rul_expected", {})
        if key not in expected_by_background:
            expected_by_background = {key: float(predict(model, background).mean())}
            explainer._rul_expected = expected_by_background
        expected = expected_by_background[key]
    raw_list = raw if multi else [raw]
    if multi and not isinstance(raw, list):
        raise RulError("shap GradientExplainer returned one array for a multi-input model")
    values = {n: _squeeze_output_axis(v, x.ndim)
              for n, v, x in zip(names, raw_list, inputs, strict=True)}
    pred = predict(model, inputs)
    res = ShapResult(
        method="gradient", values=values, expected_value=expected, prediction=pred,
        additivity_gap=np.zeros(len(pred)), additivity_exact=False,
        seconds=time.perf_counter() - t0,
    )
    res.additivity_gap = res.totals() + expected - pred
    emit(progress, "shap gradient", 1, 1)
    return res


def tree_shap(forest: Any, embeddings: np.ndarray, check_additivity: bool = True) -> ShapResult:
    """TreeExplainer SHAP of a forest head on embeddings (n, d); exact and additive."""
    import shap

    model = getattr(forest, "forest", forest)  # ForestHead or a bare RandomForestRegressor
    emb = np.asarray(embeddings, dtype=np.float64)
    t0 = time.perf_counter()
    explainer = shap.TreeExplainer(model)
    vals = np.asarray(explainer.shap_values(emb, check_additivity=check_additivity))
    expected = float(np.ravel(explainer.expected_value)[0])
    pred = np.asarray(model.predict(emb), dtype=np.float64)
    return ShapResult(
        method="tree", values={"embedding": vals}, expected_value=expected, prediction=pred,
        additivity_gap=vals.sum(axis=1) + expected - pred, additivity_exact=True,
        seconds=time.perf_counter() - t0,
        feature_names={"embedding": [f"e{i}" for i in range(emb.shape[1])]},
    )


def kernel_shap_tf(
    model: Any,
    window: WindowInputs,
    background_tf: np.ndarray,
    nsamples: int | str = "auto",
    n_background: int = 20,
    seed: int = 0,
) -> ShapResult:
    """KernelExplainer SHAP of the window's TF features (image fixed); additive by design."""
    import shap

    x = window.arrays["tf"].reshape(1, -1).astype(np.float64)
    bg = np.asarray(background_tf, dtype=np.float64).reshape(len(background_tf), -1)
    if bg.shape[1] != x.shape[1]:
        raise RulError(f"background_tf: expected (n, {x.shape[1]}) features, found {bg.shape}")
    # k-means centres weighted by cluster size (shap's DenseData), or all rows if few
    bg = shap.kmeans(bg, n_background) if len(bg) > n_background else bg
    f = tf_predictor(model, window)
    t0 = time.perf_counter()
    explainer = shap.KernelExplainer(f, bg, seed=seed) if _kernel_takes_seed() else \
        shap.KernelExplainer(f, bg)
    np.random.seed(seed)  # KernelExplainer samples coalitions with numpy's global RNG
    vals = np.asarray(explainer.shap_values(x, nsamples=nsamples, silent=True)).reshape(1, -1)
    expected = float(np.ravel(explainer.expected_value)[0])
    pred = f(x)
    return ShapResult(
        method="kernel_tf", values={"tf": vals.reshape(window.arrays["tf"].shape)},
        expected_value=expected, prediction=pred,
        additivity_gap=vals.sum(axis=1) + expected - pred, additivity_exact=True,
        seconds=time.perf_counter() - t0,
        feature_names={"tf": tf_feature_names(x.shape[1])},
    )


def _kernel_takes_seed() -> bool:
    import inspect

    import shap

    return "seed" in inspect.signature(shap.KernelExplainer.__init__).parameters


def kernel_shap_bands(
    model: Any,
    window: WindowInputs,
    n_bands: int = 25,
    nsamples: int | str = "auto",
    seed: int = 0,
) -> ShapResult:
    """KernelExplainer SHAP of image column bands (present/blank), TF features fixed."""
    import shap

    img = window.arrays["image"]
    f_img = image_predictor(model, window)

    def f(masks: np.ndarray) -> np.ndarray:
        return f_img(band_mask_images(img[0], masks, n_bands))

    t0 = time.perf_counter()
    explainer = shap.KernelExplainer(f, np.zeros((1, n_bands)))
    np.random.seed(seed)
    vals = np.asarray(explainer.shap_values(np.ones((1, n_bands)), nsamples=nsamples,
                                            silent=True)).reshape(1, -1)
    expected = float(np.ravel(explainer.expected_value)[0])
    pred = f(np.ones((1, n_bands)))
    return ShapResult(
        method="kernel_bands", values={"image_bands": vals}, expected_value=expected,
        prediction=pred, additivity_gap=vals.sum(axis=1) + expected - pred,
        additivity_exact=True, seconds=time.perf_counter() - t0,
        feature_names={"image_bands": [f"band{b}" for b in range(n_bands)]},
    )


def global_importance(values: np.ndarray, feature_names: list[str] | None = None) -> pd.DataFrame:
    """Mean |SHAP| per feature over windows: values (n, F[, 1]) -> feature, importance (sorted)."""
    v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    names = feature_names or [f"f{i}" for i in range(v.shape[1])]
    imp = np.abs(v).mean(axis=0)
    return (pd.DataFrame({"feature": names, "importance": imp})
            .sort_values("importance", ascending=False, ignore_index=True))
