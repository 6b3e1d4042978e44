"""Registered custom layers shared by the models (all load with ``safe_mode=True``).

- :class:`MCDropout`: dropout that can be switched on at inference time (Monte-Carlo dropout)
  through a non-trainable flag variable, so BatchNormalization stays in inference mode while
  dropout samples. With ``training=True`` it behaves like ordinary dropout.
- :class:`PositiveSigma`: ``softplus(x) + epsilon``, the standard deviation of RC-LSTM's head.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

PACKAGE = "rul_core"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MCDropout(keras.layers.Layer):
    """Dropout that also samples at inference when its ``mc_active`` flag is 1.

    The flag is a non-trainable variable (not a Python attribute), so a compiled predict function
    reads it at run time: :func:`rul_core.models.intervals.set_mc_dropout` flips it and resets the
    layer's seed generators for reproducible samples.

    Two random streams, both starting at ``seed``. Fitting and every inference call draw from
    ``seed_generator`` (an inference call draws whether the flag is on or off: a compiled graph
    cannot skip the draw). :func:`rul_core.models.intervals.mc_samples` samples a split head
    eagerly with ``training=True`` while :attr:`sampling` is set (under the model's lock): those
    draws come from ``sampling_seed_generator``, so a plain prediction running meanwhile in
    another thread never moves the stream they are drawn from. Seed-generator states are not
    saved weights.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"MCDropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.sampling_seed_generator = keras.random.SeedGenerator(seed)
        self.sampling = False  # read at call time by an eager training=True call only
        self.supports_masking = True

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.mc_active = self.add_weight(
            shape=(),
            initializer="zeros",
            trainable=False,
            name="mc_active",
        )
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if self.rate == 0.0:
            return inputs
        if training:
            stream = self.sampling_seed_generator if self.sampling else self.seed_generator
            return keras.random.dropout(inputs, self.rate, seed=stream)
        dropped = keras.random.dropout(inputs, self.rate, seed=self.seed_generator)
        return ops.where(ops.greater(self.mc_active, 0.5), dropped, inputs)

    def reset_seed(self, seed: int) -> None:
        """Restart both random streams at ``seed`` (reproducible MC samples)."""
        for generator in (self.seed_generator, self.sampling_seed_generator):
            state = generator.state
            state.assign(np.array([int(seed), 0], dtype=state.dtype))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositiveSigma(keras.layers.Layer):
    """``softplus(x) + epsilon``: a strictly positive standard deviation."""

    def __init__(self, epsilon: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs: Any) -> Any:
        return ops.softplus(inputs) + self.epsilon

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}


def dense_head(
    x: Any,
    units: list[int],
    dropout: float,
    seed: int,
    l2: float | None = None,
) -> Any:
    """Hidden Dense/ReLU layers, each preceded by MCDropout; the last is named ``embedding``.

    Returns the output of a final linear ``Dense(1)`` named ``rul``.
    """
    reg = keras.regularizers.L2(l2) if l2 else None
    for i, u in enumerate(units):
        if dropout > 0:
            x = MCDropout(dropout, seed=int(seed) * 101 + i, name=f"mc_dropout{i + 1}")(x)
        name = "embedding" if i == len(units) - 1 else f"dense{i + 1}"
        x = keras.layers.Dense(int(u), activation="relu", kernel_regularizer=reg, name=name)(x)
    return keras.layers.Dense(1, name="rul")(x)
