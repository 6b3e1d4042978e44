"""Multimodal-RUL (multimodal paper Table 1, SPEC §4): image branch + TF branch + fusion.

One builder, ablations as flags: ``mmv1`` dilation 1 everywhere, ``mmv2`` no residual paths
(image, TF and LSTM residuals), ``mmv3`` no multi-head attention.

Choices where the paper is silent or uses a Lambda layer:

- Convolution blocks are pairs of layers (Conv -> BN -> ReLU -> MaxPool each); the residual of a
  block is its input, average-pooled with pool = stride = the product of the block's pool sizes
  (``same`` padding, so the shape equals the block output exactly: ceil(ceil(x/a)/b) =
  ceil(x/ab)), then a 1x1 convolution. Pooling before the 1x1 convolution is the same linear map
  as after it and is cheaper; it replaces the authors' ``Lambda(Resizing)``.
- If the TF branch width differs from the image branch width (only in custom presets) the TF
  sequence is projected with a Dense layer (``tf_project``) before concatenation.
- The LSTM residual adds the LSTM block input to its output; where the widths differ (quick
  preset: 16 vs the concatenation width) the input is projected by a bias-free Dense
  (``lstm_res_project``), i.e. a 1x1 convolution over the sequence.
- Dense head: ReLU hidden layers, MCDropout before each, the last hidden layer (Dense 32) is
  named ``embedding`` (the random-forest head and explanations read it), linear output ``rul``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from rul_core.models.layers import dense_head


def _conv_branch(
    x: Any,
    prefix: str,
    filters: list[int],
    kernels: list[int],
    dilations: list[int],
    pools: list[int] | None,
    l2: float,
    residual: bool,
    dilate: bool,
) -> Any:
    """Blocks of two Conv/BN/ReLU(/MaxPool) layers with a 1x1 residual per block."""
    two_d = pools is not None
    conv = layers.Conv2D if two_d else layers.Conv1D
    reg = keras.regularizers.L2(l2)
    for b in range(0, len(filters), 2):
        block = b // 2 + 1
        block_in = x
        stride = 1
        for i in range(b, min(b + 2, len(filters))):
            x = conv(
                int(filters[i]),
                int(kernels[i]),
                dilation_rate=int(dilations[i]) if dilate else 1,
                padding="same",
                kernel_regularizer=reg,
                name=f"{prefix}_conv{i + 1}",
            )(x)
            x = layers.BatchNormalization(name=f"{prefix}_bn{i + 1}")(x)
            x = layers.ReLU(name=f"{prefix}_relu{i + 1}")(x)
            if two_d:
                x = layers.MaxPooling2D(
                    int(pools[i]), padding="same", name=f"{prefix}_pool{i + 1}"
                )(x)
                stride *= int(pools[i])
        if residual:
            r = block_in
            if two_d and stride > 1:
                r = layers.AveragePooling2D(
                    stride, padding="same", name=f"{prefix}_res_pool{block}"
                )(r)
            r = conv(
                int(filters[min(b + 1, len(filters) - 1)]),
                1,
                kernel_regularizer=reg,
                name=f"{prefix}_res_conv{block}",
            )(r)
            x = layers.Add(name=f"{prefix}_res_add{block}")([x, r])
    return x


def build_multimodal(ablation: str, hp: dict[str, Any], dropout: float, seed: int) -> keras.Model:
    """Uncompiled Multimodal-RUL model with inputs ``image`` (H, W, 1) and ``tf`` (7k, 1)."""
    dilate = ablation != "mmv1"
    residual = ablation != "mmv2"
    attention = ablation != "mmv3"
    h, w = (int(v) for v in hp["image_shape"])
    n_tf = 7 * len(hp["tf_channels"])
    image = keras.Input((h, w, 1), name="image")
    tf_in = keras.Input((n_tf, 1), name="tf")

    x = _conv_branch(
        image,
        "img",
        hp["image_filters"],
        hp["image_kernels"],
        hp["image_dilations"],
        hp["image_pools"],
        hp["l2"],
        residual,
        dilate,
    )
    t = _conv_branch(
        tf_in,
        "tf",
        hp["tf_filters"],
        [hp["tf_kernel"]] * len(hp["tf_filters"]),
        hp["tf_dilations"],
        None,
        hp["l2"],
        residual,
        dilate,
    )
    rows, cols, width = x.shape[1:]
    seq = layers.Reshape((rows * cols, width), name="img_to_seq")(x)
    if t.shape[-1] != width:
        t = layers.Dense(width, name="tf_project")(t)
    fused = layers.Concatenate(axis=1, name="fusion_concat")([seq, t])

    y = fused
    for i, units in enumerate(hp["lstm_units"]):
        y = layers.LSTM(int(units), activation="tanh", return_sequences=True, name=f"lstm{i + 1}")(
            y
        )
    if residual:
        skip = fused
        if width != y.shape[-1]:
            skip = layers.Dense(y.shape[-1], use_bias=False, name="lstm_res_project")(fused)
        y = layers.Add(name="lstm_res_add")([y, skip])
    y = layers.LayerNormalization(name="layer_norm")(y)
    if attention:
        y = layers.MultiHeadAttention(
            int(hp["attention_heads"]), int(hp["attention_key_dim"]), name="attention"
        )(y, y)
    y = layers.GlobalMaxPooling1D(name="global_max_pool")(y)
    out = dense_head(y, hp["dense_units"], dropout, seed)
    return keras.Model([image, tf_in], out, name=f"multimodal_{ablation}")
