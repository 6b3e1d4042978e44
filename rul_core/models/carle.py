"""CARLE (CARLE paper Table 6, SPEC §4): Res-CNN + attention + Res-LSTM + dense (+ forest).

Ablations as flags of one builder: ``carl`` no random forest (the network's output is final;
this only changes :attr:`ModelConfig.uses_forest`), ``crle`` no multi-head attention anywhere,
``cale`` no residual connections anywhere.

Choices where the paper is silent:

- Res-CNN layer i: ``ReLU(BN(Conv1D(x))) + Conv1D_1x1(x)``.
- Res-LSTM block: ``LSTM -> MHA(self) -> + block input``; the block input is projected by a
  bias-free Dense (``lstm_res_projectN``, a 1x1 convolution over the sequence) where its width
  differs from the LSTM units (FEMTO: 32 -> 64).
- The attention layers are self-attention (query = key = value) without an extra residual.
- Dense head: ReLU hidden layers with MCDropout before each; the last hidden layer is named
  ``embedding`` (the forest is fitted on it), linear output ``rul``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from rul_core.models.layers import dense_head


def build_carle(ablation: str, hp: dict[str, Any], dropout: float, seed: int) -> keras.Model:
    """Uncompiled CARLE model with input ``tf`` (7 * len(tf_channels), 1)."""
    attention = ablation != "crle"
    residual = ablation != "cale"
    reg = keras.regularizers.L2(hp["l2"])
    n_tf = 7 * len(hp["tf_channels"])
    inp = keras.Input((n_tf, 1), name="tf")
    heads, key_dim = int(hp["attention_heads"]), int(hp["attention_key_dim"])

    x = inp
    for i, (f, k) in enumerate(zip(hp["cnn_filters"], hp["cnn_kernels"], strict=True)):
        y = layers.Conv1D(
            int(f), int(k), padding="same", kernel_regularizer=reg, name=f"cnn_conv{i + 1}"
        )(x)
        y = layers.BatchNormalization(name=f"cnn_bn{i + 1}")(y)
        y = layers.ReLU(name=f"cnn_relu{i + 1}")(y)
        if residual:
            p = layers.Conv1D(int(f), 1, kernel_regularizer=reg, name=f"cnn_res_conv{i + 1}")(x)
            y = layers.Add(name=f"cnn_res_add{i + 1}")([y, p])
        x = y
    if attention:
        x = layers.MultiHeadAttention(heads, key_dim, name="cnn_attention")(x, x)

    for i, units in enumerate(hp["lstm_units"]):
        block_in = x
        y = layers.LSTM(int(units), return_sequences=True, name=f"lstm{i + 1}")(x)
        if attention:
            y = layers.MultiHeadAttention(heads, key_dim, name=f"lstm_attention{i + 1}")(y, y)
        if residual:
            skip = block_in
            if block_in.shape[-1] != int(units):
                skip = layers.Dense(int(units), use_bias=False, name=f"lstm_res_project{i + 1}")(
                    block_in
                )
            y = layers.Add(name=f"lstm_res_add{i + 1}")([y, skip])
        x = y
    x = layers.Flatten(name="flatten")(x)
    out = dense_head(x, hp["dense_units"], dropout, seed)
    return keras.Model([inp], out, name=f"carle_{ablation}")
