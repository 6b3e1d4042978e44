"""Shared pieces of the explainers: model inputs by modality, batched prediction, image bands.

An explanation looks at up to three modalities: the ImR image (input ``image``, (64, 500, 1)),
the TF features (input ``tf``, (7·k, 1)) and RC-LSTM's filtered signal (input ``signal``,
(T, L, 1, C): T consecutive windows, oldest first). Image attributions are compared per column
band (by default 25 bands of 20 columns, the natural segments of a line raster: a band is a
stretch of time), TF attributions per feature, signal attributions per segment of the T·L
samples of the sequence (all channels together; by default 25 segments).
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
