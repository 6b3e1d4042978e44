"""Shared pieces of the explainers: model inputs by modality, batched prediction, image bands.

An explanation looks at up to three modalities: the ImR image (input ``image``, (64, 500, 1)),
the TF features (input ``tf``, (7·k, 1)) and RC-LSTM's filtered signal (input ``signal``,
(T, L, 1, C): T consecutive windows, oldest first). Image attributions are compared per column
band (by default 25 bands of 20 columns, the natural segments of a line raster: a band is a
stretch of time), TF attributions per feature, signal attributions per segment of the T·L
samples of the sequence (all channels together; by default 25 segments).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rul_core.errors import RulError

TF_FEATURES = ("log_E", "f_d", "h", "K", "sk", "mean", "std")


def input_names(model: Any) -> list[str]:
    """The model's input names in call order."""
    return [kt.name for kt in model.inputs]


#: The inputs the explainers know.
MODALITIES = ("image", "tf", "signal")


def modalities(model: Any) -> list[str]:
    """Which of :data:`MODALITIES` the model takes; other inputs are rejected."""
    names = input_names(model)
    unknown = [n for n in names if n not in MODALITIES]
    if unknown:
        raise RulError(
            f"model '{model.name}': the explainers know the inputs {list(MODALITIES)}; "
            f"found {unknown}"
        )
    return names


def tf_feature_names(n: int) -> list[str]:
    """Names of n TF features: blocks of 7 per channel (``ch0:log_E`` ...)."""
    if n % 7:
        return [f"tf{i}" for i in range(n)]
    return [f"ch{c}:{f}" for c in range(n // 7) for f in TF_FEATURES]


def readable_feature_names(names: Sequence[str], tf_channels: Sequence[int] | None,
                           channel_names: Sequence[str]) -> list[str]:
    """Display names: ``ch0:log_E`` becomes ``vertical: log E`` when the model's TF input
    block 0 is channel ``tf_channels[0]`` of a run whose channels are ``channel_names``;
    other names (image bands, signal segments) are returned unchanged."""
    out = []
    for name in names:
        block, sep, feature = str(name).partition(":")
        k = block[2:] if block.startswith("ch") else ""
        if sep and k.isdigit() and tf_channels is not None and int(k) < len(tf_channels) \
                and 0 <= int(tf_channels[int(k)]) < len(channel_names):
            feature = "log E" if feature == "log_E" else feature
            name = f"{channel_names[int(tf_channels[int(k)])]}: {feature}"
        out.append(str(name))
    return out


def band_segments(width: int, n_bands: int = 25) -> np.ndarray:
    """Column-band index (0..n_bands−1) of every image column (bands as equal as possible)."""
    if not 1 <= n_bands <= width:
        raise RulError(f"n_bands: expected 1..{width}, found {n_bands}")
    return np.minimum((np.arange(width) * n_bands) // width, n_bands - 1)


def band_sums(image_attr: np.ndarray, n_bands: int = 25) -> np.ndarray:
    """Sum an image attribution (n, H, W[, 1]) over rows and the columns of each band."""
    a = np.asarray(image_attr, dtype=np.float64)
    if a.ndim == 4:
        a = a[..., 0]
    seg = band_segments(a.shape[2], n_bands)
    cols = a.sum(axis=1)  # (n, W)
    out = np.zeros((a.shape[0], n_bands))
    for b in range(n_bands):  # n_bands vector ops, not per pixel
        out[:, b] = cols[:, seg == b].sum(axis=1)
    return out


def signal_segments(shape: Sequence[int], n_segments: int = 25) -> np.ndarray:
    """Segment index of every (step, sample) of a signal input shaped (T, L, ...): the T·L
    samples in sequence order, cut into ``n_segments`` stretches as equal as possible."""
    steps, length = int(shape[0]), int(shape[1])
    return band_segments(steps * length, n_segments).reshape(steps, length)


def signal_sums(signal_attr: np.ndarray, n_segments: int = 25) -> np.ndarray:
    """Sum a signal attribution (n, T, L, 1, C) over the channels and each segment's samples."""
    a = np.asarray(signal_attr, dtype=np.float64)
    per_sample = a.reshape(a.shape[0], a.shape[1], a.shape[2], -1).sum(axis=3)  # (n, T, L)
    seg = signal_segments(a.shape[1:3], n_segments)
    out = np.zeros((a.shape[0], n_segments))
    for b in range(n_segments):
        out[:, b] = per_sample[:, seg == b].sum(axis=1)
    return out


def masked_signal(signal: np.ndarray, masks: np.ndarray, baseline: np.ndarray | None = None
                  ) -> np.ndarray:
    """Copies of one window's signal input (1, T, L, 1, C) for k keep-masks (k, n_segments):
    a dropped segment takes ``baseline`` (T, L, 1, C) there, or without one the window's own
    per-channel mean (flat: no vibration)."""
    x = np.asarray(signal, dtype=np.float32)
    masks = np.asarray(masks, dtype=bool)
    seg = signal_segments(x.shape[1:3], masks.shape[1])
    keep = masks[:, seg][..., None, None]  # (k, T, L, 1, 1)
    base = (np.asarray(baseline, dtype=np.float32) if baseline is not None
            else x[0].mean(axis=(0, 1), keepdims=True))
    return np.where(keep, x, base[None]).astype(np.float32)


def _batched_outputs(model: Any, inputs: Sequence[np.ndarray], batch_size: int
                     ) -> list[np.ndarray]:
    """Every output of ``model`` (inference mode) on ``inputs`` (model order), a batch at a
    time, through its compiled function; one float32 array per output tensor."""
    from rul_core.models.build import inference_function

    n = int(inputs[0].shape[0])
    fn = inference_function(model)
    parts: list[list[np.ndarray]] = []
    for s in range(0, n, max(1, int(batch_size))):
        y = fn(*[np.asarray(x[s: s + batch_size], dtype=np.float32) for x in inputs])
        parts.append([np.asarray(t) for t in (y if isinstance(y, (list, tuple)) else [y])])
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def predict(model: Any, inputs: Sequence[np.ndarray], batch_size: int = 256,
            output_index: int = 0) -> np.ndarray:
    """Batched network prediction (n,) of output unit ``output_index`` (inference mode).

    Through a compiled function (:func:`rul_core.models.build.inference_function`): an eager
    call runs recurrent layers step by step in Python, 3-15x slower on the demo models (LIME
    and the faithfulness curves call this for every perturbed input).
    """
    from rul_core.models.build import inference_function

    n = int(inputs[0].shape[0])
    fn = inference_function(model)
    out = []
    for s in range(0, n, batch_size):
        batch = [np.asarray(x[s: s + batch_size], dtype=np.float32) for x in inputs]
        y = fn(*batch)
        out.append(np.asarray(y).reshape(len(batch[0]), -1)[:, output_index])
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


@dataclass(frozen=True)
class ImageSplit:
    """A model with an ``image`` input cut where its image branch meets the other inputs:
    ``branch`` maps the image to the tensors that leave the branch (``cut``: their number),
    ``rest`` maps those tensors and the other inputs (``others``, in model order) to the
    model's outputs. Both are functional views of the model's own layers (no copied
    weights, no Lambda layers), so ``rest(branch(image), others)`` is ``model(image,
    others)``."""

    branch: Any
    rest: Any
    cut: int
    others: tuple[str, ...]


_SPLITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SPLITS_LOCK = threading.Lock()


def image_split(model: Any) -> ImageSplit | None:
    """The model's :class:`ImageSplit`, built once per model (kept while the model lives),
    or None: no ``image`` input beside others, no tensor that depends on the image alone
    meets the others, or a graph the cut does not separate (nested models, a layer reading
    the image input after the cut).

    Multimodal-RUL: the branch is the ImR CNN up to ``img_to_seq`` (nearly all of a
    prediction's cost), the rest the TF branch, the fusion, LSTMs, attention and head. When
    only the other inputs change (LIME tabular on the TF features, the TF steps of the
    deletion curves) the branch runs once per distinct image instead of once per row.
    """
    with _SPLITS_LOCK:
        if model in _SPLITS:
            return _SPLITS[model]
        split = None
        try:
            split = _build_image_split(model)
        except Exception:  # an unusual graph: predict the whole model as before
            split = None
        _SPLITS[model] = split
        return split


def _build_image_split(model: Any) -> ImageSplit | None:
    import keras

    names = input_names(model)
    nodes = getattr(model, "_nodes_by_depth", None)
    if "image" not in names or len(names) < 2 or nodes is None:
        return None
    image = frozenset({"image"})
    needs = {id(kt): frozenset({kt.name}) for kt in model.inputs}  # inputs each tensor reads
    cut: dict[int, Any] = {}
    for depth in sorted(nodes, reverse=True):  # producers before consumers
        for node in nodes[depth]:
            if node.operation is None or node.is_input:
                continue
            ins = list(node.input_tensors)
            if any(id(t) not in needs for t in ins):
                return None
            reads = frozenset().union(*(needs[id(t)] for t in ins))
            for t in node.outputs:
                needs[id(t)] = reads
            if reads != image:
                cut.update({id(t): t for t in ins if needs[id(t)] == image})
    if not cut or any(needs.get(id(t)) == image for t in model.outputs):
        return None
    cut_tensors = list(cut.values())
    image_in = model.inputs[names.index("image")]
    others = tuple(n for n in names if n != "image")
    branch = keras.Model(image_in, cut_tensors if len(cut_tensors) > 1 else cut_tensors[0],
                         name=f"{model.name}_image_branch")
    rest = keras.Model([*cut_tensors, *(model.inputs[names.index(n)] for n in others)],
                       model.outputs if len(model.outputs) > 1 else model.outputs[0],
                       name=f"{model.name}_after_image")
    own = {id(layer) for layer in model.layers}
    image_layer = image_in._keras_history.operation
    parts = [*branch.layers, *rest.layers]
    if any(id(layer) not in own for layer in parts if layer is not image_layer
           and not isinstance(layer, keras.layers.InputLayer)) \
            or any(layer is image_layer for layer in rest.layers):
        return None
    return ImageSplit(branch, rest, len(cut_tensors), others)


def shared_image_predictor(model: Any, images: np.ndarray, batch_size: int = 256,
                           output_index: int = 0
                           ) -> Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray]:
    """g(image_of_row (k,), others {name: (k, ...)}) -> (k,): the predictions of rows whose
    image is ``images[image_of_row]`` (``images`` (m, H, W, 1)) and whose other inputs are
    ``others``. With an :func:`image_split` the image branch runs once per image here, and
    each call runs only the rest of the network (identical outputs to float32 rounding,
    tested); without one, every row runs the whole model."""
    images = np.asarray(images, dtype=np.float32)
    split = image_split(model)
    if split is None:
        names = input_names(model)

        def whole(image_of_row: np.ndarray, others: dict[str, np.ndarray]) -> np.ndarray:
            idx = np.asarray(image_of_row, dtype=np.intp)
            return predict(model, [images[idx] if n == "image" else others[n] for n in names],
                           batch_size, output_index)

        return whole
    features = _batched_outputs(split.branch, [images], batch_size)

    def rest(image_of_row: np.ndarray, others: dict[str, np.ndarray]) -> np.ndarray:
        idx = np.asarray(image_of_row, dtype=np.intp)
        return predict(split.rest, [f[idx] for f in features]
                       + [others[n] for n in split.others], batch_size, output_index)

    return rest


@dataclass
class WindowInputs:
    """One window's model inputs by modality (each with a leading batch axis of 1)."""

    arrays: dict[str, np.ndarray]

    @classmethod
    def from_list(cls, model: Any, inputs: Sequence[np.ndarray], index: int = 0) -> WindowInputs:
        """Pick sample ``index`` of model-ordered input arrays."""
        names = input_names(model)
        if len(inputs) != len(names):
            raise RulError(f"inputs: expected {len(names)} arrays ({names}), found {len(inputs)}")
        return cls({n: np.asarray(x[index: index + 1], dtype=np.float32)
                    for n, x in zip(names, inputs, strict=True)})

    def ordered(self, model: Any) -> list[np.ndarray]:
        """Arrays in the model's input order."""
        return [self.arrays[n] for n in input_names(model)]


def tf_predictor(model: Any, window: WindowInputs, batch_size: int = 256,
                 output_index: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """f(tf rows (k, F)) -> (k,): TF features perturbed, the image held fixed (its branch
    run once: :func:`shared_image_predictor`)."""
    names = input_names(model)
    g = (shared_image_predictor(model, window.arrays["image"], batch_size, output_index)
         if "image" in names else None)

    def f(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        k = rows.shape[0]
        fixed = {name: (rows.reshape(k, -1, 1) if name == "tf"
                        else np.repeat(window.arrays[name], k, axis=0))
                 for name in names if name != "image"}
        if g is not None:
            return g(np.zeros(k, dtype=np.intp), fixed)
        return predict(model, [fixed[name] for name in names], batch_size, output_index)

    return f


def image_predictor(model: Any, window: WindowInputs, batch_size: int = 64,
                    output_index: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """f(images (k, H, W[, c])) -> (k,): the image perturbed, the TF features held fixed."""

    def f(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        # LIME's gray→RGB copies: take one channel
        images = images[..., :1] if images.ndim == 4 else images[..., None]
        k = images.shape[0]
        arrays = []
        for name in input_names(model):
            if name == "image":
                arrays.append(images)
            else:
                arrays.append(np.repeat(window.arrays[name], k, axis=0))
        return predict(model, arrays, batch_size, output_index)

    return f


def band_mask_images(image: np.ndarray, masks: np.ndarray, n_bands: int,
                     fill: float = 0.0) -> np.ndarray:
    """Images (k, H, W, 1) with the bands where ``masks`` (k, n_bands) is 0 set to ``fill``."""
    img = np.asarray(image, dtype=np.float32).reshape(1, *image.shape[-3:])
    seg = band_segments(img.shape[2], n_bands)
    col_keep = np.asarray(masks, dtype=bool)[:, seg]  # (k, W)
    return np.where(col_keep[:, None, :, None], img, np.float32(fill))
