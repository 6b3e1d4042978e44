"""RC-LSTM (RC-LSTM paper, SPEC §4): Res-ConvLSTM + ConvLSTM + Gaussian head, losses L1-L3.

Input ``signal``: (timesteps=7, L', 1, channels) — 7 consecutive normalised windows (all
channels), optionally average-pooled by ``pool`` in :func:`rul_core.models.inputs.make_inputs`.

- :class:`ResConvLSTMCell`: a ConvLSTM cell whose input-to-state path is a stack of R residual
  units ``relu(conv(relu(conv(x))) + Ws x)`` (kernels k x 1, ``res_filters`` channels; ``Ws`` is
  a 1x1 convolution only where the channel count changes, identity otherwise), followed by the
  usual k x 1 gate convolution (4 x filters). The state-to-state path is the ordinary k x 1
  convolution. No BatchNormalization inside the recurrence (the paper's Fig. 4 does not show
  one; BN follows the layer as in its Fig. 1).
- :class:`ResConvLSTM2D`: the RNN layer around the cell (registered, saves/loads in safe mode).
- Optional ``input_bn`` (hparam, on in both presets): a BatchNormalization standardising each
  input channel before the recurrence (see build_rc_lstm).
- Head: BN -> ConvLSTM2D -> BN -> flatten (paper) or global average pool (quick), named
  ``embedding``; two Dense towers -> ``mu`` (linear) and ``sigma`` (softplus + epsilon);
  output (n, 2) = [mu, sigma].
- :class:`GaussianLoss` (kind L1/L2/L3) with weights k in a backend variable, and
  :class:`LossScheduleCallback` setting k by epoch (paper Table III).

NLL is the full Gaussian negative log-likelihood per sample,
``0.5 log(2 pi) + log sigma + (y - mu)^2 / (2 sigma^2)``; PIAW is the width of the central
``level`` interval, ``2 z sigma`` (z = Phi^-1((1 + level) / 2)), in label units.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from rul_core.models.inputs import signal_channels
from rul_core.models.layers import PACKAGE, PositiveSigma

# (upper epoch bound of the paper's 100-epoch schedule, (k_mse, k_nll, k_piaw)) — Table III
PAPER_SCHEDULE: tuple[tuple[float, tuple[float, float, float]], ...] = (
    (30.0, (0.8, 0.2, 0.0)),
    (60.0, (0.5, 0.5, 0.1)),
    (80.0, (0.3, 0.7, 0.6)),
    (100.0, (0.1, 0.9, 1.0)),
)
LOSS_KINDS = ("L1", "L2", "L3")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResConvLSTMCell(keras.layers.Layer):
    """ConvLSTM cell (k x 1 kernels, same padding) with a residual input-to-state stack."""

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        num_res_units: int = 9,
        res_filters: int | None = None,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.num_res_units = int(num_res_units)
        self.res_filters = int(res_filters) if res_filters else self.filters
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self._activation_name = activation
        self._recurrent_activation_name = recurrent_activation
        self.state_size = -1  # defined by get_initial_state (spatial state)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.spatial_dims = tuple(input_shape[1:-1])
        if None in self.spatial_dims or input_shape[-1] is None:
            raise ValueError(f"ResConvLSTMCell needs static input shapes, got {input_shape}")
        k = (self.kernel_size, 1)
        channels = int(input_shape[-1])
        self.res_weights: list[Any] = []
        for r in range(self.num_res_units):
            c_in = channels if r == 0 else self.res_filters
            unit = [
                self.add_weight(shape=(*k, c_in, self.res_filters), name=f"res{r}_kernel1"),
                self.add_weight(
                    shape=(self.res_filters,), initializer="zeros", name=f"res{r}_bias1"
                ),
                self.add_weight(
                    shape=(*k, self.res_filters, self.res_filters), name=f"res{r}_kernel2"
                ),
                self.add_weight(
                    shape=(self.res_filters,), initializer="zeros", name=f"res{r}_bias2"
                ),
            ]
            if c_in != self.res_filters:
                unit.append(
                    self.add_weight(shape=(1, 1, c_in, self.res_filters), name=f"res{r}_proj")
                )
            self.res_weights.append(unit)
        gate_in = self.res_filters if self.num_res_units > 0 else channels
        self.kernel = self.add_weight(shape=(*k, gate_in, 4 * self.filters), name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(*k, self.filters, 4 * self.filters),
            initializer="orthogonal",
            name="recurrent_kernel",
        )
        f = self.filters

        def bias_init(shape: Any, dtype: Any = None) -> Any:
            return ops.convert_to_tensor(
                np.concatenate([np.zeros(f), np.ones(f), np.zeros(2 * f)]), dtype=dtype
            )

        self.bias = self.add_weight(shape=(4 * f,), initializer=bias_init, name="bias")
        self.built = True

    @staticmethod
    def _conv(x: Any, w: Any, b: Any = None) -> Any:
        y = ops.conv(x, w, strides=1, padding="same", data_format="channels_last")
        return y if b is None else y + b

    def input_to_state(self, x: Any) -> Any:
        """The residual stack followed by the gate convolution (4 x filters channels)."""
        for unit in self.res_weights:
            y = ops.relu(self._conv(x, unit[0], unit[1]))
            y = self._conv(y, unit[2], unit[3])
            skip = self._conv(x, unit[4]) if len(unit) == 5 else x
            x = ops.relu(y + skip)
        return self._conv(x, self.kernel, self.bias)

    def call(self, inputs: Any, states: list[Any], training: bool = False) -> Any:
        h_prev, c_prev = states[0], states[1]
        z = self.input_to_state(inputs) + self._conv(h_prev, self.recurrent_kernel)
        zi, zf, zc, zo = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(zi)
        f = self.recurrent_activation(zf)
        c = f * c_prev + i * self.activation(zc)
        o = self.recurrent_activation(zo)
        h = o * self.activation(c)
        return h, [h, c]

    def get_initial_state(self, batch_size: Any = None) -> list[Any]:
        shape = (batch_size, *self.spatial_dims, self.filters)
        return [
            ops.zeros(shape, dtype=self.compute_dtype),
            ops.zeros(shape, dtype=self.compute_dtype),
        ]

    def compute_output_shape(self, inputs_shape: tuple[int | None, ...], states_shape: Any = None):
        out = (inputs_shape[0], *inputs_shape[1:-1], self.filters)
        return out, [out, out]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "num_res_units": self.num_res_units,
            "res_filters": self.res_filters,
            "activation": self._activation_name,
            "recurrent_activation": self._recurrent_activation_name,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResConvLSTM2D(keras.layers.RNN):
    """Res-ConvLSTM layer on (batch, time, rows, cols, channels) sequences."""

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        num_res_units: int = 9,
        res_filters: int | None = None,
        return_sequences: bool = False,
        **kwargs: Any,
    ) -> None:
        cell = ResConvLSTMCell(
            filters,
            kernel_size=kernel_size,
            num_res_units=num_res_units,
            res_filters=res_filters,
            name="res_conv_lstm_cell",
            dtype=kwargs.get("dtype"),
        )
        super().__init__(cell, return_sequences=return_sequences, **kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def compute_output_shape(self, sequences_shape: Any, initial_state_shape: Any = None) -> Any:
        batch, steps = sequences_shape[0], sequences_shape[1]
        state = (*sequences_shape[2:-1], self.cell.filters)
        return (batch, steps, *state) if self.return_sequences else (batch, *state)

    def get_config(self) -> dict[str, Any]:
        base = super().get_config()
        del base["cell"]
        return {
            **base,
            "filters": self.cell.filters,
            "kernel_size": self.cell.kernel_size,
            "num_res_units": self.cell.num_res_units,
            "res_filters": self.cell.res_filters,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ResConvLSTM2D:
        return cls(**config)


def z_value(level: float) -> float:
    """Two-sided standard-normal quantile of a central ``level`` interval."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def default_weights(kind: str) -> tuple[float, float, float]:
    """Starting (k_mse, k_nll, k_piaw) of a loss kind (L1 stays fixed at 0/1/0)."""
    if kind == "L1":
        return (0.0, 1.0, 0.0)
    k = PAPER_SCHEDULE[0][1]
    return (k[0], k[1], 0.0 if kind == "L2" else k[2])


@keras.saving.register_keras_serializable(package=PACKAGE)
class GaussianLoss(keras.losses.Loss):
    """RC-LSTM loss on y_pred = [mu, sigma]: k1 * MSE + k2 * NLL + k3 * PIAW.

    ``kind`` L1 (NLL only, weights fixed 0/1/0), L2 (k3 forced to 0) or L3. The weights live in
    a non-trainable backend variable ``k`` that :class:`LossScheduleCallback` updates.
    """

    def __init__(
        self,
        kind: str = "L3",
        k: tuple[float, float, float] | list[float] | None = None,
        level: float = 0.9,
        name: str | None = None,
        reduction: str = "sum_over_batch_size",
        **kwargs: Any,
    ) -> None:
        if kind not in LOSS_KINDS:
            raise ValueError(f"loss kind must be one of {LOSS_KINDS}, got {kind!r}")
        super().__init__(name=name or f"gaussian_{kind.lower()}", reduction=reduction, **kwargs)
        self.kind = kind
        self.level = float(level)
        self.z = z_value(self.level)
        weights = default_weights(kind) if k is None or kind == "L1" else tuple(float(v) for v in k)
        if kind == "L2":
            weights = (weights[0], weights[1], 0.0)
        self.k = keras.Variable(
            np.asarray(weights, dtype="float32"), trainable=False, name=f"{self.name}_k"
        )

    def set_weights(self, k: tuple[float, float, float]) -> None:
        """Set (k_mse, k_nll, k_piaw); ignored for L1, k_piaw forced to 0 for L2."""
        if self.kind == "L1":
            return
        k3 = 0.0 if self.kind == "L2" else float(k[2])
        self.k.assign(np.asarray([float(k[0]), float(k[1]), k3], dtype="float32"))

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
        mu = y_pred[:, 0]
        sigma = y_pred[:, 1]
        err = y - mu
        mse = ops.square(err)
        nll = 0.5 * math.log(2.0 * math.pi) + ops.log(sigma) + 0.5 * ops.square(err / sigma)
        piaw = 2.0 * self.z * sigma
        k = ops.cast(self.k, y_pred.dtype)
        return k[0] * mse + k[1] * nll + k[2] * piaw

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reduction": self.reduction,
            "kind": self.kind,
            "level": self.level,
            "k": [float(v) for v in np.asarray(self.k)],
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
def mu_mse(y_true: Any, y_pred: Any) -> Any:
    """Squared error of the Gaussian head's mean, per sample.

    The yardstick that early stopping, learning-rate reduction and best-weight restore watch
    for RC-LSTM: its scheduled loss changes its weights between epochs (Table III), so two
    epochs' losses do not compare (the later stages' loss is larger for the same model).
    """
    y = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
    return ops.square(y - y_pred[:, 0])


def schedule_weights(
    epoch: int,
    total_epochs: int,
    schedule: tuple[tuple[float, tuple[float, float, float]], ...] = PAPER_SCHEDULE,
    paper_epochs: int = 100,
) -> tuple[float, float, float]:
    """Weights for 0-based ``epoch`` of ``total_epochs``.

    Table III's ranges are [0, 30], (30, 60], (60, 80], (80, 100] in 1-based epochs of a
    100-epoch run; for a run of T epochs the 1-based epoch e is mapped to e * 100 / T, so the
    boundaries scale proportionally (10 epochs: 1-3, 4-6, 7-8, 9-10).
    """
    if total_epochs < 1:
        raise ValueError(f"total_epochs must be >= 1, got {total_epochs}")
    scaled = (int(epoch) + 1) * float(paper_epochs) / float(total_epochs)
    for bound, k in schedule:
        if scaled <= bound + 1e-9:
            return k
    return schedule[-1][1]


@keras.saving.register_keras_serializable(package=PACKAGE)
class LossScheduleCallback(keras.callbacks.Callback):
    """Sets a :class:`GaussianLoss`'s weights at the start of every epoch (Table III).

    TensorFlow reads the weights' variable at every step. JAX compiles the value it had when the
    step was traced into the step (the loss's variable is not part of the model's state), so on
    any other backend the train and test functions are rebuilt when the weights change.
    """

    def __init__(
        self,
        loss: GaussianLoss | None = None,
        total_epochs: int = 100,
        paper_epochs: int = 100,
    ) -> None:
        super().__init__()
        self.loss = loss
        self.total_epochs = int(total_epochs)
        self.paper_epochs = int(paper_epochs)

    def _loss(self) -> GaussianLoss | None:
        if self.loss is not None:
            return self.loss
        model_loss = getattr(self.model, "loss", None) if self.model is not None else None
        return model_loss if isinstance(model_loss, GaussianLoss) else None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = self._loss()
        if loss is None:
            return
        before = np.asarray(loss.k).copy()
        loss.set_weights(schedule_weights(epoch, self.total_epochs, paper_epochs=self.paper_epochs))
        changed = not np.array_equal(before, np.asarray(loss.k))
        if changed and keras.backend.backend() != "tensorflow" and self.model is not None:
            self.model.make_train_function(force=True)
            self.model.make_test_function(force=True)

    def get_config(self) -> dict[str, Any]:
        return {"total_epochs": self.total_epochs, "paper_epochs": self.paper_epochs}


def build_rc_lstm(hp: dict[str, Any], seed: int) -> keras.Model:
    """Uncompiled RC-LSTM with input ``signal`` (T, L // pool, 1, C) and output [mu, sigma]."""
    length = int(hp["window_length"]) // int(hp["pool"])
    if length < 1:
        raise ValueError(f"window_length {hp['window_length']} / pool {hp['pool']} < 1 sample")
    inp = keras.Input((int(hp["timesteps"]), length, 1, signal_channels(hp)), name="signal")
    k = int(hp["kernel"])
    x = inp
    if hp.get("input_bn", False):
        # The min-max normalised vibration sits at ~0.5 +- 0.005 (the training range is set by
        # end-of-life spikes): standardise it per channel, or the net sees a constant input.
        # epsilon must sit far below that variance (~1e-5), unlike the default 1e-3.
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-9, name="input_bn")(x)
    x = ResConvLSTM2D(
        int(hp["res_filters"]),
        kernel_size=k,
        num_res_units=int(hp["res_units"]),
        return_sequences=True,
        name="res_conv_lstm",
    )(x)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ConvLSTM2D(
        int(hp["convlstm_filters"]),
        (k, 1),
        padding="same",
        return_sequences=False,
        name="conv_lstm",
    )(x)
    x = layers.BatchNormalization(name="bn2")(x)
    if hp["reduce"] == "flatten":
        x = layers.Flatten(name="embedding")(x)
    elif hp["reduce"] == "pool":
        x = layers.GlobalAveragePooling2D(name="embedding")(x)
    else:
        raise ValueError(f"hparam reduce must be 'flatten' or 'pool', got {hp['reduce']!r}")
    units = int(hp["tower_units"])
    m = layers.Dense(units, activation="relu", name="mu_hidden")(x)
    mu = layers.Dense(1, name="mu")(m)
    s = layers.Dense(units, activation="relu", name="sigma_hidden")(x)
    s = layers.Dense(1, name="sigma_raw")(s)
    sigma = PositiveSigma(float(hp["sigma_epsilon"]), name="sigma")(s)
    out = layers.Concatenate(axis=-1, name="gaussian")([mu, sigma])
    return keras.Model([inp], out, name="rc_lstm")
