"""RC-LSTM pieces: the Res-ConvLSTM cell against a numpy reference, losses, the k schedule."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from rul_core.models import (
    GaussianLoss,
    LossScheduleCallback,
    ModelConfig,
    ResConvLSTM2D,
    build_model,
    custom_objects,
    schedule_weights,
)

# ---------------------------------------------------------------- numpy reference


def conv_k1(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """'same' convolution of (batch, L, 1, C) with a (k, 1, C, O) kernel, stride 1."""
    k = w.shape[0]
    lo = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (lo, k - 1 - lo), (0, 0), (0, 0)))
    out = sum(np.einsum("blwc,co->blwo", xp[:, d : d + x.shape[1]], w[d, 0]) for d in range(k))
    return out if b is None else out + b


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def reference_res_conv_lstm(x_seq: np.ndarray, weights: list[np.ndarray], res_units: int):
    """Res-ConvLSTM forward pass in numpy, from the cell's weights in creation order."""
    it = iter(weights)
    units = []
    channels = x_seq.shape[-1]
    for r in range(res_units):
        w1, b1, w2, b2 = next(it), next(it), next(it), next(it)
        proj = next(it) if (channels if r == 0 else w1.shape[-1]) != w1.shape[-1] else None
        units.append((w1, b1, w2, b2, proj))
    kernel, recurrent, bias = next(it), next(it), next(it)
    f = recurrent.shape[2]
    batch, steps, length = x_seq.shape[:3]
    h = np.zeros((batch, length, 1, f))
    c = np.zeros_like(h)
    outs = []
    for t in range(steps):
        x = x_seq[:, t]
        for w1, b1, w2, b2, proj in units:
            y = conv_k1(np.maximum(conv_k1(x, w1, b1), 0), w2, b2)
            x = np.maximum(y + (conv_k1(x, proj) if proj is not None else x), 0)
        z = conv_k1(x, kernel, bias) + conv_k1(h, recurrent)
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        c = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zc)
        h = sigmoid(zo) * np.tanh(c)
        outs.append(h)
    return np.stack(outs, axis=1)


def test_res_conv_lstm_matches_numpy_reference():
    keras.utils.set_random_seed(0)
    inp = keras.Input((3, 10, 1, 2))
    layer = ResConvLSTM2D(4, kernel_size=3, num_res_units=2, res_filters=5, return_sequences=True)
    model = keras.Model(inp, layer(inp))
    x = np.random.default_rng(0).normal(size=(2, 3, 10, 1, 2)).astype(np.float32)
    # non-trivial biases so their placement is checked too
    initial_bias = layer.get_weights()[-1]
    np.testing.assert_array_equal(initial_bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    weights = [w + 0.05 if w.ndim == 1 else w for w in layer.get_weights()]
    layer.set_weights(weights)
    got = model.predict(x, verbose=0)
    ref = reference_res_conv_lstm(x.astype(np.float64), [w.astype(np.float64) for w in weights], 2)
    assert got.shape == (2, 3, 10, 1, 4)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    # 2 units x (2 kernels + 2 biases) + 1 projection (2 -> 5) + kernel, recurrent, bias
    assert len(weights) == 2 * 4 + 1 + 3
    assert weights[-3].shape == (3, 1, 5, 16) and weights[-2].shape == (3, 1, 4, 16)


def test_res_conv_lstm_layer_config_round_trip():
    layer = ResConvLSTM2D(6, kernel_size=3, num_res_units=4, res_filters=7, name="r")
    again = ResConvLSTM2D.from_config(layer.get_config())
    assert (again.cell.filters, again.cell.num_res_units, again.cell.res_filters) == (6, 4, 7)
    assert "rul_core>ResConvLSTM2D" in custom_objects()


def test_paper_rc_lstm_shapes():
    m = build_model(ModelConfig("rc_lstm", preset="paper"))
    assert tuple(m.inputs[0].shape) == (None, 7, 1000, 1, 2)
    cell = m.get_layer("res_conv_lstm").cell
    assert (cell.filters, cell.num_res_units, cell.kernel_size) == (256, 9, 3)
    assert m.get_layer("conv_lstm").filters == 256
    assert m.get_layer("conv_lstm").kernel_size == (3, 1)
    assert m.get_layer("mu_hidden").units == 100 and m.get_layer("sigma_hidden").units == 100
    assert isinstance(m.optimizer, keras.optimizers.Adam)
    assert float(m.optimizer.learning_rate) == pytest.approx(1e-3)
    assert m.output.shape == (None, 2)


def test_mean_std_pooling_hand_values_and_input_channels():
    from rul_core.errors import RulError
    from rul_core.models.inputs import pool_signals, signal_input

    sig = np.array([[[0.0, 1.0], [2.0, 1.0], [4.0, 3.0], [4.0, 5.0], [9.0, 9.0]]],
                   dtype=np.float32)  # (1, L=5, C=2); pool 2 drops the fifth sample
    np.testing.assert_allclose(pool_signals(sig, 2), [[[1.0, 1.0], [4.0, 4.0]]])
    # groups (0, 2), (4, 4) on channel 0 and (1, 1), (3, 5) on channel 1: std 1, 0, 0, 1
    np.testing.assert_allclose(pool_signals(sig, 2, "mean_std"),
                               [[[1.0, 1.0, 1.0, 0.0], [4.0, 4.0, 0.0, 1.0]]])
    with pytest.raises(ValueError, match="pool_stat"):
        pool_signals(sig, 2, "max")
    cfg = ModelConfig("rc_lstm", hparams={"window_length": 64, "res_units": 1,
                                          "pool_stat": "mean_std"})
    model = build_model(cfg)
    assert tuple(model.inputs[0].shape) == (None, 7, 8, 1, 4)  # 64 / pool 8; 2 x 2 channels
    x = signal_input(cfg, np.arange(3), np.random.default_rng(0).random((3, 64, 2)))
    assert x.shape == (3, 7, 8, 1, 4)
    assert np.asarray(model(x)).shape == (3, 2)
    with pytest.raises(RulError, match="pool_stat"):
        ModelConfig("rc_lstm", preset="paper", hparams={"pool_stat": "mean_std"})  # pool 1


def test_signal_baseline_scaling_is_causal_and_per_run():
    from rul_core.errors import RulError
    from rul_core.models.inputs import baseline_scale_signals, signal_input

    sig = np.random.default_rng(0).normal(2.0, 3.0, (6, 4, 1))
    snap = np.array([0, 0, 1, 2, 0, 1])  # run A: snapshots 0, 0, 1, 2; run B: 0, 1
    out = baseline_scale_signals(sig, snap, 2)

    def scaled(window: int, baseline: np.ndarray) -> np.ndarray:
        return (sig[window, :, 0] - baseline.mean()) / baseline.std()

    np.testing.assert_allclose(out[0, :, 0], scaled(0, sig[0:2]), rtol=1e-5)  # snapshot 0
    np.testing.assert_allclose(out[3, :, 0], scaled(3, sig[0:3]), rtol=1e-5)  # frozen at k = 2
    np.testing.assert_allclose(out[4, :, 0], scaled(4, sig[4]), rtol=1e-5)  # run B's own
    prefix = baseline_scale_signals(sig[:3], snap[:3], 2)  # what was recorded so far
    np.testing.assert_array_equal(prefix, out[:3])
    cfg = ModelConfig("rc_lstm", hparams={"window_length": 64, "signal_baseline_snapshots": 2})
    sig64 = np.random.default_rng(1).random((3, 64, 2))
    plain = signal_input(ModelConfig("rc_lstm", hparams={"window_length": 64}), np.arange(3),
                         sig64)
    assert not np.allclose(signal_input(cfg, np.arange(3), sig64), plain)
    with pytest.raises(RulError, match="signal_baseline_snapshots"):
        ModelConfig("rc_lstm", hparams={"signal_baseline_snapshots": -1})


# ---------------------------------------------------------------- losses


Y = np.array([0.5, 0.2, 0.9], dtype=np.float32)
MU = np.array([0.4, 0.3, 0.9], dtype=np.float32)
SIGMA = np.array([0.1, 0.5, 0.2], dtype=np.float32)
PRED = np.stack([MU, SIGMA], axis=1)


def nll_by_hand(y: float, mu: float, s: float) -> float:
    return 0.5 * math.log(2 * math.pi) + math.log(s) + (y - mu) ** 2 / (2 * s * s)


def test_l1_is_gaussian_nll():
    # first sample: 0.9189385 + ln 0.1 + 0.01 / 0.02 = 0.9189385 - 2.3025851 + 0.5
    assert nll_by_hand(0.5, 0.4, 0.1) == pytest.approx(-0.8836466, abs=1e-6)
    expected = np.mean([nll_by_hand(*v) for v in zip(Y, MU, SIGMA, strict=True)])
    loss = GaussianLoss("L1")
    assert float(loss(Y, PRED)) == pytest.approx(expected, abs=1e-5)
    loss.set_weights((0.5, 0.5, 0.5))  # L1 ignores schedules
    assert float(loss(Y, PRED)) == pytest.approx(expected, abs=1e-5)


def test_l2_l3_weighted_sums():
    nll = np.array([nll_by_hand(*v) for v in zip(Y, MU, SIGMA, strict=True)])
    mse = (Y - MU) ** 2
    z = 1.6448536269514722  # 90 % central interval
    piaw = 2 * z * SIGMA
    l2 = GaussianLoss("L2")
    assert float(l2(Y, PRED)) == pytest.approx(np.mean(0.8 * mse + 0.2 * nll), abs=1e-5)
    l2.set_weights((0.3, 0.7, 0.6))
    assert np.asarray(l2.k).tolist() == pytest.approx([0.3, 0.7, 0.0])
    l3 = GaussianLoss("L3", k=(0.3, 0.7, 0.6))
    assert float(l3(Y, PRED)) == pytest.approx(
        np.mean(0.3 * mse + 0.7 * nll + 0.6 * piaw), abs=1e-5
    )
    cfg = l3.get_config()
    again = GaussianLoss.from_config(cfg)
    assert float(again(Y, PRED)) == pytest.approx(float(l3(Y, PRED)), abs=1e-7)
    assert float(l3(Y[:, None], PRED)) == pytest.approx(float(l3(Y, PRED)))  # (n, 1) labels


# ---------------------------------------------------------------- schedule


def test_schedule_weights_paper_and_scaled():
    paper = [schedule_weights(e, 100) for e in range(100)]
    assert paper[0] == paper[29] == (0.8, 0.2, 0.0)
    assert paper[30] == paper[59] == (0.5, 0.5, 0.1)
    assert paper[60] == paper[79] == (0.3, 0.7, 0.6)
    assert paper[80] == paper[99] == (0.1, 0.9, 1.0)
    ten = [schedule_weights(e, 10)[0] for e in range(10)]
    assert ten == [0.8, 0.8, 0.8, 0.5, 0.5, 0.5, 0.3, 0.3, 0.1, 0.1]


def test_schedule_callback_sets_k_during_fit():
    """The scheduled k reach the loss the step computes, not only the variable: with a zero
    learning rate the predictions stay fixed, so each epoch's loss must equal k . (MSE, NLL,
    PIAW) of those predictions. (JAX compiles k into the step; the callback rebuilds it.)"""
    keras.utils.set_random_seed(0)
    inp = keras.Input((3,))
    out = keras.layers.Concatenate()(
        [keras.layers.Dense(1)(inp), keras.layers.Dense(1, activation="softplus")(inp)]
    )
    model = keras.Model(inp, out)
    loss = GaussianLoss("L3")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss)
    seen: list[list[float]] = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append([round(float(v), 4) for v in np.asarray(loss.k)])

    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    y = np.linspace(0, 1, 16).astype(np.float32)
    hist = model.fit(
        x, y, epochs=5, batch_size=16, verbose=0, validation_data=(x, y),
        callbacks=[LossScheduleCallback(total_epochs=5), Record()],
    )  # fmt: skip
    # 5 epochs -> scaled 1-based epochs 20, 40, 60, 80, 100
    assert seen == [
        [0.8, 0.2, 0.0], [0.5, 0.5, 0.1], [0.5, 0.5, 0.1], [0.3, 0.7, 0.6], [0.1, 0.9, 1.0],
    ]  # fmt: skip
    mu, sigma = np.asarray(model.predict(x, verbose=0), dtype=np.float64).T
    terms = np.array([
        np.mean((y - mu) ** 2),
        np.mean(0.5 * math.log(2 * math.pi) + np.log(sigma) + 0.5 * ((y - mu) / sigma) ** 2),
        np.mean(2 * loss.z * sigma),
    ])  # fmt: skip
    expected = [float(np.dot(k, terms)) for k in seen]
    assert hist.history["loss"] == pytest.approx(expected, rel=1e-4)
    assert hist.history["val_loss"] == pytest.approx(expected, rel=1e-4)
