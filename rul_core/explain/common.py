"""Shared pieces of the explainers: model inputs by modality, batched prediction, image bands.

An explanation looks at two modalities: the ImR image (input ``image``, (64, 500, 1)) and the
TF features (input ``tf``, (7·k, 1)). Image attributions are compared per column band (by
default 25 bands of 20 columns, the natural segments of a line raster: a band is a stretch of
time), TF attributions per feature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rul_core.errors import RulError

TF_FEATURES = ("log_E", "f_d", "h", "K", "sk", "mean", "std")


def input_names(model: Any) -> list[str]:
    """The model's input names in call order."""
    return [kt.name for kt in model.inputs]


def modalities(model: Any) -> list[str]:
    """Which of 'image' and 'tf' the model takes; other inputs are rejected."""
    names = input_names(model)
    unknown = [n for n in names if n not in ("image", "tf")]
    if unknown:
        raise RulError(
            f"model '{model.name}': LIME/SHAP explain the inputs 'image' and 'tf'; "
            f"found inputs {unknown} (RC-LSTM's raw signal is explained by LRP only)"
        )
    return names


def tf_feature_names(n: int) -> list[str]:
    """Names of n TF features: blocks of 7 per channel (``ch0:log_E`` ...)."""
    if n % 7:
        return [f"tf{i}" for i in range(n)]
    return [f"ch{c}:{f}" for c in range(n // 7) for f in TF_FEATURES]


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


def predict(model: Any, inputs: Sequence[np.ndarray], batch_size: int = 256,
            output_index: int = 0) -> np.ndarray:
    """Batched network prediction (n,) of output unit ``output_index`` (inference mode)."""
    n = int(inputs[0].shape[0])
    out = []
    for s in range(0, n, batch_size):
        batch = [np.asarray(x[s: s + batch_size], dtype=np.float32) for x in inputs]
        # a model built with a list of inputs wants a list, even of one tensor
        y = model(batch if isinstance(model.input, list) else batch[0], training=False)
        out.append(np.asarray(y).reshape(len(batch[0]), -1)[:, output_index])
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


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
    """f(tf rows (k, F)) -> (k,): TF features perturbed, the image held fixed."""

    def f(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        k = rows.shape[0]
        arrays = []
        for name in input_names(model):
            if name == "tf":
                arrays.append(rows.reshape(k, -1, 1))
            else:
                arrays.append(np.repeat(window.arrays[name], k, axis=0))
        return predict(model, arrays, batch_size, output_index)

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
