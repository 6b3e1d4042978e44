"""Dilated convolutions of loaded models run as one oneDNN kernel (TensorFlow backend).

``tf.nn.convolution`` (what Keras' Conv1D/Conv2D call) turns every dilated convolution into
SpaceToBatch -> convolution -> BatchToSpace. On this project's CPUs that costs about three times
the dilated kernel that oneDNN provides (``tf.nn.conv2d`` with ``dilations``): Multimodal-RUL's
first image convolution (5 x 5, dilation 4, on the 64 x 500 raster) was nearly all of its
prediction time, 3.4 s of a 515-snapshot FEMTO bearing's 2 060 windows.

:func:`use_fast_dilated_conv` gives a model's dilated Conv2D layers that kernel (an
instance attribute replacing ``convolution_op``; :func:`rul_core.bundle.load_bundle` calls it
on every model it loads, training builds stock layers, so nothing is saved
differently, the layer classes stay Keras' own). The same sums in another order: outputs and
gradients (SHAP, LRP) agree with the stock op to float32 rounding (tested). Only with oneDNN:
TensorFlow's own CPU kernels have no gradient for a dilated ``Conv2D`` and run its forward
slower than SpaceToBatch, so with ``TF_ENABLE_ONEDNN_OPTS=0`` (or another Keras backend)
nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

_FLAG = "_rul_fast_dilated_conv"


def fast_conv_available() -> bool:
    """True when the Keras backend is TensorFlow and TensorFlow runs its oneDNN kernels."""
    if keras.backend.backend() != "tensorflow":
        return False
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # pragma: no cover - a TensorFlow without the probe
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def _eligible(layer: Any) -> bool:
    """A stock Conv2D, channels last, stride 1, one group, dilated, same/valid padding.
    (Keras' Conv1D calls ``ops.conv`` itself, not ``convolution_op``; the TF branch's 7-step
    Conv1D layers cost nothing anyway.)"""
    if type(layer) is not keras.layers.Conv2D:
        return False
    return (layer.data_format == "channels_last" and layer.padding in ("same", "valid")
            and all(int(s) == 1 for s in layer.strides) and int(layer.groups) == 1
            and any(int(d) > 1 for d in layer.dilation_rate))


def dilated_conv_op(layer: Any) -> Callable[[Any, Any], Any]:
    """``convolution_op`` for ``layer``: TensorFlow's dilated Conv2D kernel (oneDNN) instead of
    SpaceToBatch around an undilated one; its gradient is oneDNN's dilated backprop."""
    import tensorflow as tf

    padding = layer.padding.upper()
    dilations = [int(d) for d in layer.dilation_rate]

    def op(inputs: Any, kernel: Any) -> Any:
        x = tf.convert_to_tensor(inputs)
        return tf.nn.conv2d(x, tf.cast(tf.convert_to_tensor(kernel), x.dtype), 1, padding,
                            dilations=dilations)

    return op


def use_fast_dilated_conv(model: Any) -> int:
    """Give every eligible dilated Conv2D of ``model`` (nested models included) the
    oneDNN kernel for its forward pass; returns how many layers use it (0 when
    :func:`fast_conv_available` is False). Idempotent. Call it before the model's first
    prediction: a compiled predict function keeps the op it was traced with."""
    if not fast_conv_available():
        return 0
    count = 0
    for layer in model._flatten_layers(include_self=False):
        if _eligible(layer):
            if not getattr(layer, _FLAG, False):
                layer.convolution_op = dilated_conv_op(layer)
                setattr(layer, _FLAG, True)
            count += 1
    return count


def fast_conv_layers(model: Any) -> list[str]:
    """Names of ``model``'s layers that run the oneDNN dilated kernel."""
    return [layer.name for layer in model._flatten_layers(include_self=False)
            if getattr(layer, _FLAG, False)]
