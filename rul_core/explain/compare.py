"""LRP, LIME and SHAP side by side on the same window(s), on the same scale.

Granularity: every TF feature, every image column band (default 25 bands of 20 columns) and
every segment of RC-LSTM's signal sequence (as many as the bands) is one *feature*; LRP
relevance and gradient-SHAP values are summed over each band's pixels or segment's samples,
LIME weights come per feature/band/segment directly. Each method's vector is divided by its sum of
|attribution| (so the |values| sum to 1) before anything is compared.

* Per modality: the share of |attribution| on the image and on the TF features.
* Rank agreement: Spearman and Kendall (scipy) between every pair of methods, over all
  features and over the TF features alone.
* Faithfulness: deletion and insertion curves. A removed TF feature takes its training mean,
  a removed band is blanked (0), a removed signal segment takes the training windows' mean
  signal there (about flat at the normalised signal's centre: no vibration). Features are
  ranked by attribution in the direction of f(x) − f(baseline) (most relevant first). The
  curve is (f(x_k) − f(base)) / (f(x) − f(base)) after k removals (deletion, starts at 1;
  lower area = more faithful) or k insertions into the baseline (insertion, starts at 0;
  higher area = more faithful); the area is the trapezoid over the removed fraction in
  [0, 1]. A random ranking (seeded, averaged over permutations)
  is the reference. The raw predictions along both paths are kept too (what the page plots).
  Where removing everything barely moves the prediction (|f(x) − f(base)| below
  ``CompareSettings.min_contrast``, default 0.02 of the normalised RUL), that division blows
  noise up (a contrast of 0.003 turns a 0.06 swing into 20): such a window's areas are
  reported as NaN, not ranked, and set-level summaries count only the windows that have them.
* Cost: seconds per method.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rul_core.errors import RulError
from rul_core.explain.common import (
    WindowInputs,
    band_segments,
    band_sums,
    image_split,
    input_names,
    masked_signal,
    modalities,
    predict,
    shared_image_predictor,
    signal_sums,
    tf_feature_names,
)
from rul_core.explain.common import (
    readable_feature_names as readable_feature_names,  # re-exported for the Explain page
)
from rul_core.progress import CancelToken, ProgressFn, check, emit

METHODS = ("lrp", "lime", "shap")
#: The LRP rule sets offered (``rul_core.explain.lrp.OFFERED_RULES``, named here without
#: importing TensorFlow).
LRP_RULES = ("paper", "conservative", "epsilon")


def default_rules(model_name: str) -> str:
    """The LRP rule set offered first for a model, from ``bench/explain.py --model-name``
    (quick models, 8 real FEMTO windows, seeds 0/1/2; insertion − deletion, random ordering
    about 0.1): ``epsilon`` for Multimodal-RUL and CARLE (CARLE 2.02 / 1.61 / 1.12 where
    ``paper`` gave −0.02 / 0.15 / −0.17 and ``conservative`` −0.16 / −0.09 / −0.50);
    ``conservative`` for RC-LSTM, where no set stands out (0.00 / 0.04 / 0.28, ``epsilon``
    0.31 / 0.14 / 0.17) and it at least keeps every step's relevance and its sum (under
    ``paper`` the recurrent cell keeps only the last step's)."""
    return "conservative" if model_name == "rc_lstm" else "epsilon"


@dataclass
class FeatureSpace:
    """The comparison's features: TF features, image bands, then signal segments (whichever
    the model takes)."""

    names: list[str]
    modality: list[str]  # "tf" | "image" | "signal" per feature
    n_tf: int
    n_bands: int
    tf_baseline: np.ndarray | None  # per-feature replacement value (training mean)
    n_segments: int = 0
    signal_baseline: np.ndarray | None = None  # (T, L, 1, C) training mean signal

    @classmethod
    def for_model(cls, model: Any, background: list[np.ndarray] | None,
                  n_bands: int = 25) -> FeatureSpace:
        """Features of ``model`` (inputs 'image' and/or 'tf', or 'signal')."""
        mods = modalities(model)
        names: list[str] = []
        modality: list[str] = []
        n_tf = 0
        tf_base = None
        shapes = {kt.name: tuple(kt.shape[1:]) for kt in model.inputs}
        if "tf" in mods:
            n_tf = int(np.prod(shapes["tf"]))
            names += tf_feature_names(n_tf)
            modality += ["tf"] * n_tf
            if background is not None:
                bg = background[input_names(model).index("tf")]
                tf_base = np.asarray(bg, dtype=np.float64).reshape(len(bg), -1).mean(axis=0)
            else:
                tf_base = np.zeros(n_tf)
        nb = 0
        if "image" in mods:
            nb = n_bands
            names += [f"band{b}" for b in range(nb)]
            modality += ["image"] * nb
        n_seg, sig_base = 0, None
        if "signal" in mods:
            n_seg = n_bands
            names += [f"segment{b}" for b in range(n_seg)]
            modality += ["signal"] * n_seg
            if background is not None:
                bg = background[input_names(model).index("signal")]
                sig_base = np.asarray(bg, dtype=np.float32).mean(axis=0)
        return cls(names, modality, n_tf, nb, tf_base, n_seg, sig_base)

    def vector(self, tf_part: np.ndarray | None, band_part: np.ndarray | None,
               segment_part: np.ndarray | None = None) -> np.ndarray:
        """Concatenate per-feature attributions in this space's order."""
        parts = []
        if self.n_tf:
            parts.append(np.asarray(tf_part, dtype=np.float64).reshape(-1))
        if self.n_bands:
            parts.append(np.asarray(band_part, dtype=np.float64).reshape(-1))
        if self.n_segments:
            parts.append(np.asarray(segment_part, dtype=np.float64).reshape(-1))
        return np.concatenate(parts)

    def masked_inputs(self, model: Any, window: WindowInputs, keep: np.ndarray) -> list[np.ndarray]:
        """Model inputs for k keep-masks (k, n_features): dropped features take the baseline."""
        keep = np.asarray(keep, dtype=bool)
        return [self._masked(name, window.arrays[name], keep) for name in input_names(model)]

    def _masked(self, name: str, x: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Input ``name`` (one window's ``x``) for k keep-masks."""
        k = keep.shape[0]
        if name == "tf":
            rows = np.repeat(x.reshape(1, -1), k, axis=0)
            m = keep[:, : self.n_tf]
            rows = np.where(m, rows, self.tf_baseline[None, :])
            return rows.reshape(k, *x.shape[1:]).astype(np.float32)
        if name == "image":
            m = keep[:, self.n_tf: self.n_tf + self.n_bands]
            seg = band_segments(x.shape[2], self.n_bands)
            cols = m[:, seg]  # (k, W)
            return np.where(cols[:, None, :, None], x, np.float32(0.0))
        # signal
        return masked_signal(x, keep[:, self.n_tf + self.n_bands:], self.signal_baseline)

    def predict_masked(self, model: Any, window: WindowInputs, keep: np.ndarray) -> np.ndarray:
        """The model's predictions (k,) of :meth:`masked_inputs` for k keep-masks. With an
        image split (:func:`~rul_core.explain.common.image_split`) the image branch runs once
        per distinct set of kept bands: along a deletion or insertion path a TF-feature step
        leaves the image as it was, and every path starts or ends at the full and the blank
        image (the same predictions to float32 rounding, tested)."""
        keep = np.asarray(keep, dtype=bool)
        names = input_names(model)
        if "image" not in names or image_split(model) is None:
            return predict(model, self.masked_inputs(model, window, keep))
        bands = keep[:, self.n_tf: self.n_tf + self.n_bands]
        distinct, image_of_row = np.unique(bands, axis=0, return_inverse=True)
        lead = np.zeros((len(distinct), self.n_tf), dtype=bool)
        images = self._masked("image", window.arrays["image"], np.hstack([lead, distinct]))
        others = {n: self._masked(n, window.arrays[n], keep) for n in names if n != "image"}
        return shared_image_predictor(model, images)(image_of_row.reshape(-1), others)


def normalise(a: np.ndarray) -> np.ndarray:
    """a / Σ|a| (zeros stay zeros)."""
    a = np.asarray(a, dtype=np.float64)
    s = np.abs(a).sum()
    return a / s if s > 0 else a


def auc(curve: np.ndarray) -> float:
    """Trapezoid area of a curve sampled at equally spaced fractions of [0, 1]."""
    c = np.asarray(curve, dtype=np.float64)
    if len(c) < 2:
        return float(c[0]) if len(c) else float("nan")
    return float(np.sum((c[1:] + c[:-1]) / 2.0) / (len(c) - 1))


DEFAULT_MIN_CONTRAST = 0.02  # |f(x) - f(base)| below this: the normalised areas are not ranked


def faithfulness_predictions(
    model: Any, space: FeatureSpace, window: WindowInputs, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The model's raw predictions after k = 0 .. n removals (deletion: starts at f(x)) and
    k insertions into the baseline (insertion: starts at f(base)), for one feature ranking
    (most relevant first)."""
    n = len(space.names)
    steps = np.arange(n + 1)
    rank = np.empty(n, dtype=int)
    rank[np.asarray(order)] = np.arange(n)
    removed = rank[None, :] < steps[:, None]  # (n+1, n): True where removed after k steps
    preds = space.predict_masked(model, window, np.vstack([~removed, removed]))
    preds = np.asarray(preds, dtype=np.float64).reshape(-1)
    return preds[: n + 1], preds[n + 1:]


def normalised_curve(preds: np.ndarray, f_x: float, f_base: float) -> np.ndarray:
    """(preds − f(base)) / (f(x) − f(base)): 1 at the input, 0 at the baseline."""
    d = f_x - f_base
    den = d if abs(d) > 1e-12 else (1e-12 if d >= 0 else -1e-12)
    return (np.asarray(preds, dtype=np.float64) - f_base) / den


def faithfulness_curves(
    model: Any, space: FeatureSpace, window: WindowInputs, order: np.ndarray
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves for one feature ranking (most relevant first):
    ``deletion``/``insertion`` normalised as in the module doc, ``deletion_pred``/
    ``insertion_pred`` the raw predictions (starting at f(x) and f(baseline))."""
    return _curves(*faithfulness_predictions(model, space, window, order))


def ranking(attribution: np.ndarray, direction: float) -> np.ndarray:
    """Feature order, most relevant first: by attribution times sign(f(x) − f(base))."""
    s = 1.0 if direction >= 0 else -1.0
    return np.argsort(-s * np.asarray(attribution), kind="stable")


@dataclass
class WindowComparison:
    """The three methods on one window (see the module doc for definitions)."""

    window: int
    feature_names: list[str]
    modality: list[str]
    prediction: float
    baseline_prediction: float
    raw: dict[str, np.ndarray]
    normalised: dict[str, np.ndarray]
    spread: dict[str, np.ndarray]  # per-feature std over seeds (LIME), normalised scale
    seconds: dict[str, float]
    # method|'random' -> {'deletion', 'insertion'} (normalised) and {'deletion_pred',
    # 'insertion_pred'} (the raw predictions along the same paths)
    curves: dict[str, dict[str, np.ndarray]]
    details: dict[str, Any] = field(default_factory=dict)
    min_contrast: float = DEFAULT_MIN_CONTRAST

    @property
    def contrast(self) -> float:
        """f(x) − f(baseline): how far removing every feature moves the prediction."""
        return self.prediction - self.baseline_prediction

    @property
    def conditioned(self) -> bool:
        """Whether the normalised faithfulness areas mean anything (|contrast| large enough)."""
        return abs(self.contrast) >= self.min_contrast

    def faithfulness_note(self) -> str:
        """Why this window's faithfulness areas are missing ('' when they are not)."""
        if self.conditioned:
            return ""
        return (f"Removing every feature moves the prediction by only {self.contrast:+.3f} "
                f"({self.prediction:.3f} → baseline {self.baseline_prediction:.3f}; below "
                f"{self.min_contrast:g}), so curves normalised by that difference would be "
                "noise: no faithfulness areas for this window. The raw predictions along each "
                "removal path are still shown.")

    def attribution_frame(self) -> pd.DataFrame:
        """feature, modality and one normalised column per method."""
        df = pd.DataFrame({"feature": self.feature_names, "modality": self.modality})
        for m, v in self.normalised.items():
            df[m] = v
        return df

    def modality_frame(self) -> pd.DataFrame:
        """Per method: share of |attribution| and signed sum per modality."""
        rows = []
        mods = np.asarray(self.modality)
        for m, v in self.normalised.items():
            for mod in sorted(set(self.modality)):
                sel = mods == mod
                rows.append({"method": m, "modality": mod,
                             "abs_share": float(np.abs(v[sel]).sum()),
                             "signed_sum": float(v[sel].sum())})
        return pd.DataFrame(rows, columns=["method", "modality", "abs_share", "signed_sum"])

    def agreement_frame(self) -> pd.DataFrame:
        """Spearman/Kendall between every pair of methods (all features; TF features only)."""
        rows = []
        mods = np.asarray(self.modality)
        for a, b in itertools.combinations(sorted(self.normalised), 2):
            for scope in ("all", "tf", "image"):
                sel = np.ones(len(mods), bool) if scope == "all" else mods == scope
                if sel.sum() < 3:
                    continue
                va, vb = self.normalised[a][sel], self.normalised[b][sel]
                rows.append({"method_a": a, "method_b": b, "scope": scope,
                             "spearman": _corr(stats.spearmanr, va, vb),
                             "kendall": _corr(stats.kendalltau, va, vb)})
        return pd.DataFrame(rows, columns=["method_a", "method_b", "scope", "spearman",
                                           "kendall"])

    def faithfulness_frame(self) -> pd.DataFrame:
        """Per method (and 'random'): deletion AUC (lower better), insertion AUC (higher);
        NaN when the window is not :attr:`conditioned`."""
        ok = self.conditioned
        rows = [{"method": m, "deletion_auc": auc(c["deletion"]) if ok else float("nan"),
                 "insertion_auc": auc(c["insertion"]) if ok else float("nan"),
                 "seconds": self.seconds.get(m, float("nan"))}
                for m, c in self.curves.items()]
        df = pd.DataFrame(rows, columns=["method", "deletion_auc", "insertion_auc", "seconds"])
        df["insertion_minus_deletion"] = df["insertion_auc"] - df["deletion_auc"]
        return df

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able summary (for compare.json and pages); a missing number (an area of
        an ill-conditioned window, the random ordering's cost) is null, not NaN."""
        return _finite_or_none({
            "window": self.window,
            "prediction": self.prediction,
            "baseline_prediction": self.baseline_prediction,
            "contrast": self.contrast,
            "min_contrast": self.min_contrast,
            "faithfulness_note": self.faithfulness_note(),
            "features": self.feature_names,
            "modality": self.modality,
            "normalised": {m: v.tolist() for m, v in self.normalised.items()},
            "spread": {m: v.tolist() for m, v in self.spread.items()},
            "seconds": self.seconds,
            "modality_share": self.modality_frame().to_dict(orient="records"),
            "agreement": self.agreement_frame().to_dict(orient="records"),
            "faithfulness": self.faithfulness_frame().to_dict(orient="records"),
            "curves": {m: {k: v.tolist() for k, v in c.items()} for m, c in self.curves.items()},
        })


def _finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±inf) inside dicts and lists set to None."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def _corr(fn: Any, a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(fn(a, b)[0])


@dataclass
class CompareSettings:
    """Knobs of a comparison."""

    methods: tuple[str, ...] = METHODS
    rules: str = "epsilon"  # default_rules() picks per model
    n_bands: int = 25
    lime_samples: int = 1000
    lime_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    shap_samples: int = 200
    shap_background: int = 50
    n_random: int = 10
    seed: int = 0
    min_contrast: float = DEFAULT_MIN_CONTRAST


def method_attribution(
    method: str,
    model: Any,
    window: WindowInputs,
    space: FeatureSpace,
    background: list[np.ndarray] | None,
    settings: CompareSettings,
) -> tuple[np.ndarray, np.ndarray | None, Any]:
    """(raw attribution vector, per-feature seed spread or None, method's own result)."""
    from rul_core.explain.lime_explain import lime_explain
    from rul_core.explain.lrp import explain_lrp
    from rul_core.explain.shap_explain import choose_background, gradient_shap

    names = input_names(model)
    if method == "lrp":
        exp = explain_lrp(model, window.ordered(model), rules=settings.rules)
        return space.vector(*_per_feature(exp.relevance, names, space)), None, exp
    if method == "lime":
        bg_tf = None
        if "tf" in names:
            if background is None:
                raise RulError("background: LIME needs training windows")
            bg_tf = background[names.index("tf")]
            bg_tf = bg_tf.reshape(len(bg_tf), -1)
        res = lime_explain(model, window, bg_tf, settings.lime_samples, settings.lime_seeds,
                           settings.n_bands, signal_baseline=space.signal_baseline)
        parts = ("tf", "image", "signal")
        vec = space.vector(*(res[p].mean if p in res else None for p in parts))
        std = space.vector(*(res[p].std if p in res else None for p in parts))
        return vec, std, res
    if method == "shap":
        if background is None:
            raise RulError("background: SHAP needs training windows")
        bg = choose_background(background, settings.shap_background, "random", settings.seed)
        res = gradient_shap(model, window.ordered(model), bg, nsamples=settings.shap_samples,
                            seed=settings.seed)
        return space.vector(*_per_feature(res.values, names, space)), None, res
    raise RulError(f"methods: expected some of {list(METHODS)}, found {method!r}")


def _per_feature(maps: dict[str, np.ndarray], names: list[str], space: FeatureSpace
                 ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(TF, band, segment) parts of per-input attribution maps of one window."""
    tf_part = maps["tf"][0] if "tf" in names else None
    bands = band_sums(maps["image"], space.n_bands)[0] if "image" in names else None
    segments = signal_sums(maps["signal"], space.n_segments)[0] if "signal" in names else None
    return tf_part, bands, segments


def compare_window(
    model: Any,
    inputs: Sequence[np.ndarray],
    index: int,
    background: list[np.ndarray] | None,
    settings: CompareSettings | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> WindowComparison:
    """Compare the methods on window ``index`` of ``inputs`` (model order).

    ``background``: training-window inputs (model order) for LIME/SHAP and the TF baseline.
    """
    from rul_core.explain.warm import foreground, wait_warm_up

    settings = settings or CompareSettings()
    with foreground():  # background LRP compiles pause meanwhile
        wait_warm_up(model)  # the Explain page's warm-up of this model, if one is under way
        return _compare_window(model, inputs, index, background, settings, progress, cancel)


def _compare_window(
    model: Any,
    inputs: Sequence[np.ndarray],
    index: int,
    background: list[np.ndarray] | None,
    settings: CompareSettings,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> WindowComparison:
    window = WindowInputs.from_list(model, list(inputs), index)
    space = FeatureSpace.for_model(model, background, settings.n_bands)
    n = len(space.names)
    full, base = (float(v) for v in space.predict_masked(
        model, window, np.vstack([np.ones((1, n)), np.zeros((1, n))])))
    direction = full - base
    raw, norm, spread, seconds, curves, details = {}, {}, {}, {}, {}, {}
    for i, method in enumerate(settings.methods):
        check(cancel)
        t0 = time.perf_counter()
        vec, std, res = method_attribution(method, model, window, space, background, settings)
        seconds[method] = time.perf_counter() - t0
        raw[method] = vec
        total = np.abs(vec).sum()
        norm[method] = normalise(vec)
        if std is not None:
            spread[method] = std / total if total > 0 else std
        details[method] = res
        curves[method] = faithfulness_curves(model, space, window, ranking(vec, direction))
        emit(progress, "compare", i + 1, len(settings.methods) + 1, method)
    rng = np.random.default_rng(settings.seed)
    paths = [faithfulness_predictions(model, space, window, rng.permutation(n))
             for _ in range(max(1, settings.n_random))]
    curves["random"] = _curves(np.mean([p[0] for p in paths], axis=0),
                               np.mean([p[1] for p in paths], axis=0))
    emit(progress, "compare", len(settings.methods) + 1, len(settings.methods) + 1, "random")
    return WindowComparison(
        window=int(index), feature_names=space.names, modality=space.modality,
        prediction=float(full), baseline_prediction=float(base), raw=raw, normalised=norm,
        spread=spread, seconds=seconds, curves=curves, details=details,
        min_contrast=float(settings.min_contrast),
    )


def _curves(deletion: np.ndarray, insertion: np.ndarray) -> dict[str, np.ndarray]:
    """The normalised curves and the raw predictions of one ranking's two paths (each starts
    at its end point: f(x) for deletion, f(base) for insertion)."""
    f_x, f_base = float(deletion[0]), float(insertion[0])
    return {"deletion": normalised_curve(deletion, f_x, f_base),
            "insertion": normalised_curve(insertion, f_x, f_base),
            "deletion_pred": np.asarray(deletion, dtype=np.float64),
            "insertion_pred": np.asarray(insertion, dtype=np.float64)}


@dataclass
class SetComparison:
    """The comparison over a set of windows."""

    windows: list[WindowComparison]

    def faithfulness_frame(self) -> pd.DataFrame:
        """Mean and std of the AUCs over the windows that have them (``windows``: how many;
        see :attr:`WindowComparison.conditioned`) and mean seconds over all, per method."""
        df = pd.concat([w.faithfulness_frame().assign(window=w.window) for w in self.windows])
        return (df.groupby("method", sort=False)
                .agg(windows=("deletion_auc", "count"),
                     deletion_auc=("deletion_auc", "mean"),
                     deletion_std=("deletion_auc", "std"),
                     insertion_auc=("insertion_auc", "mean"),
                     insertion_std=("insertion_auc", "std"),
                     insertion_minus_deletion=("insertion_minus_deletion", "mean"),
                     seconds=("seconds", "mean"))
                .reset_index())

    def agreement_frame(self) -> pd.DataFrame:
        """Mean rank correlations over windows per method pair and scope."""
        df = pd.concat([w.agreement_frame() for w in self.windows])
        return (df.groupby(["method_a", "method_b", "scope"], sort=False)
                [["spearman", "kendall"]].mean().reset_index())

    def global_importance(self) -> pd.DataFrame:
        """Mean |normalised attribution| per feature and method over the windows."""
        first = self.windows[0]
        df = pd.DataFrame({"feature": first.feature_names, "modality": first.modality})
        for m in first.normalised:
            df[m] = np.mean([np.abs(w.normalised[m]) for w in self.windows], axis=0)
        return df

    @property
    def n_conditioned(self) -> int:
        """How many windows have faithfulness areas."""
        return sum(w.conditioned for w in self.windows)

    def most_faithful(self) -> str | None:
        """The method with the largest mean insertion − deletion AUC (random excluded), over
        the windows that have areas; None when no window has them."""
        df = self.faithfulness_frame()
        df = df[(df["method"] != "random") & df["insertion_minus_deletion"].notna()]
        if df.empty:
            return None
        return str(df.sort_values("insertion_minus_deletion", ascending=False)["method"].iloc[0])


def compare_windows(
    model: Any,
    inputs: Sequence[np.ndarray],
    indices: Sequence[int],
    background: list[np.ndarray] | None,
    settings: CompareSettings | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> SetComparison:
    """:func:`compare_window` over several windows."""
    out = []
    for i, idx in enumerate(indices):
        check(cancel)
        out.append(compare_window(model, inputs, int(idx), background, settings, None, cancel))
        emit(progress, "compare windows", i + 1, len(indices))
    return SetComparison(out)
