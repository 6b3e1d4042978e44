"""LRP engine and rules: known answers, conservation on the three models, error messages."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers as L  # noqa: N812

from rul_core.explain.lrp import (
    CONSERVATIVE,
    EPSILON,
    PAPER,
    UnsupportedLayerError,
    explain_lrp,
)

# Conservation tolerance of the conservative set: |Σ R_input − f(x)| ≤ ATOL + RTOL·|f(x)|
# (the stabiliser is 1e-9; the rest is float32 round-off over ~50 layers).
ATOL, RTOL = 1e-5, 1e-3


def _grad_x_input(model: keras.Model, xs: list[np.ndarray]) -> list[np.ndarray]:
    ts = [tf.convert_to_tensor(x) for x in xs]
    with tf.GradientTape() as tape:
        for t in ts:
            tape.watch(t)
        y = model(ts if len(ts) > 1 else ts[0])
    grads = tape.gradient(y, ts)
    return [np.asarray(g * t) for g, t in zip(grads, ts, strict=True)]


def test_lrp0_equals_gradient_times_input_on_bias_free_relu_conv_net() -> None:
    keras.utils.set_random_seed(1)
    img = keras.Input((12, 10, 1), name="image")
    seq = keras.Input((9, 2), name="tf")
    a = L.Conv2D(4, 3, padding="same", use_bias=False, activation="relu")(img)
    a = L.MaxPooling2D(2)(a)
    a = L.Conv2D(3, 2, padding="valid", use_bias=False)(a)
    a = L.ReLU()(a)
    a = L.Flatten()(a)
    b = L.Conv1D(3, 2, dilation_rate=2, padding="same", use_bias=False, activation="relu")(seq)
    b = L.Flatten()(b)
    h = L.Concatenate()([a, b])
    h = L.Dense(6, use_bias=False, activation="relu")(h)
    out = L.Dense(1, use_bias=False)(h)
    model = keras.Model([img, seq], out)
    rng = np.random.default_rng(0)
    xs = [rng.random((3, 12, 10, 1), dtype=np.float32),
          rng.standard_normal((3, 9, 2)).astype(np.float32)]
    exp = explain_lrp(model, xs, rules="lrp0")
    gxi = _grad_x_input(model, xs)
    np.testing.assert_allclose(exp.relevance["image"], gxi[0], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(exp.relevance["tf"], gxi[1], atol=1e-5, rtol=1e-4)
    assert np.abs(gxi[0]).sum() > 0  # the comparison is not trivially zero


def test_lrp0_equals_gradient_times_input_on_dense_net() -> None:
    keras.utils.set_random_seed(2)
    x_in = keras.Input((5,))
    h = L.Dense(7, use_bias=False, activation="relu")(x_in)
    h = L.Dense(4, use_bias=False)(h)
    h = L.Activation("relu")(h)
    out = L.Dense(1, use_bias=False)(h)
    model = keras.Model(x_in, out)
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    exp = explain_lrp(model, x, rules="lrp0")
    np.testing.assert_allclose(exp.relevance[model.inputs[0].name], _grad_x_input(model, [x])[0],
                               atol=1e-6, rtol=1e-4)


def _biased_bn_net() -> keras.Model:
    """ReLU conv/dense net with biases and BatchNormalization whose shifts are not 0."""
    keras.utils.set_random_seed(3)
    img = keras.Input((8, 10, 1), name="image")
    seq = keras.Input((7, 1), name="tf")
    a = L.Conv2D(4, 3, padding="same", dilation_rate=2)(img)
    a = L.ReLU()(L.BatchNormalization()(a))
    a = L.Flatten()(L.MaxPooling2D(2, padding="same")(a))
    b = L.Conv1D(3, 2, padding="same", activation="relu")(seq)
    h = L.Concatenate()([a, L.Flatten()(b)])
    h = L.Dense(6, activation="relu")(h)
    model = keras.Model([img, seq], L.Dense(1)(h))
    rng = np.random.default_rng(4)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 2, n), rng.uniform(-0.5, 0.5, n),
                               rng.uniform(-0.3, 0.3, n), rng.uniform(0.05, 0.2, n)])
        elif getattr(layer, "use_bias", False):
            layer.bias.assign(rng.uniform(-0.3, 0.3, layer.bias.shape).astype(np.float32))
    return model


def _sparse_inputs(n: int) -> list[np.ndarray]:
    """A mostly blank image, as an ImR raster is, and standardised TF rows. (Lit pixels take
    distinct values: equal ones make max-pool ties, which LRP splits and the gradient does not.)"""
    rng = np.random.default_rng(5)
    img = (rng.random((n, 8, 10, 1)) < 0.1) * rng.uniform(0.2, 1.0, (n, 8, 10, 1))
    return [img.astype(np.float32), rng.standard_normal((n, 7, 1)).astype(np.float32)]


def test_epsilon_rules_with_zero_epsilon_equal_gradient_times_input_with_biases() -> None:
    # Biases (and folded BatchNormalization shifts) in the denominators: on a piecewise-linear
    # network LRP is then gradient x input, biases absorbing their share.
    model = _biased_bn_net()
    xs = _sparse_inputs(3)
    exact = replace(EPSILON, dense_epsilon=0.0, epsilon=0.0)
    exp = explain_lrp(model, xs, rules=exact)
    gxi = _grad_x_input(model, xs)
    assert any(lr.class_name.endswith("(folded)") for lr in exp.layers)
    np.testing.assert_allclose(exp.relevance["image"], gxi[0], atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(exp.relevance["tf"], gxi[1], atol=1e-5, rtol=1e-4)
    assert np.abs(gxi[0]).sum() > 0 and np.abs(gxi[1]).sum() > 0
    # the offered set (small ε) stays close to it; the bias-free set does not
    eps = explain_lrp(model, xs, rules="epsilon")
    assert eps.rules == "epsilon"
    for name, g in zip(("image", "tf"), gxi, strict=True):
        err = np.abs(eps.relevance[name] - g).sum() / np.abs(g).sum()
        assert err < 0.05, (name, err)
    cons = explain_lrp(model, xs, rules="conservative")
    err = np.abs(cons.relevance["tf"] - gxi[1]).sum() / np.abs(gxi[1]).sum()
    assert err > 0.2, err


def test_epsilon_rules_put_layernorm_and_attention_biases_in_the_denominators() -> None:
    # LayerNorm with its std frozen and attention with its softmax weights frozen are linear maps
    # with biases (beta; the value and output projection biases): with biases in z and ε = 0,
    # LRP equals x times the gradient of that frozen network.
    keras.utils.set_random_seed(6)
    x_in = keras.Input((5, 4))
    ln = L.LayerNormalization(beta_initializer="random_normal", gamma_initializer="ones")
    mha = L.MultiHeadAttention(2, 3, bias_initializer="random_normal")
    dense = L.Dense(1)
    y = ln(x_in)
    model = keras.Model(x_in, dense(L.GlobalMaxPooling1D()(mha(y, y))))
    x = np.random.default_rng(7).standard_normal((2, 5, 4)).astype(np.float32) + 0.3
    exp = explain_lrp(model, x, rules=replace(EPSILON, dense_epsilon=0.0, epsilon=0.0))

    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        mean = tf.reduce_mean(xt, axis=-1, keepdims=True)
        std = tf.stop_gradient(tf.sqrt(tf.reduce_mean(tf.square(xt - mean), axis=-1,
                                                      keepdims=True) + ln.epsilon))
        yt = ln.gamma * (xt - mean) / std + ln.beta
        frozen = tf.stop_gradient(yt)  # query and key: the softmax weights stay fixed
        out = dense(tf.reduce_max(mha(frozen, yt, frozen), axis=1))
    want = np.asarray(tape.gradient(out, xt) * xt)
    np.testing.assert_allclose(np.asarray(out)[:, 0], exp.prediction, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(exp.relevance[model.inputs[0].name], want, atol=1e-5, rtol=1e-4)


def _ones_head(x):
    return L.Dense(1, use_bias=False, kernel_initializer="ones")(x)


def test_maxpool_ties_are_split_equally_1d_and_2d_same_padding() -> None:
    x_in = keras.Input((4, 1))
    out = _ones_head(L.Flatten()(L.MaxPooling1D(2)(x_in)))
    model = keras.Model(x_in, out)
    x = np.array([[[2.0], [2.0], [1.0], [3.0]]], dtype=np.float32)
    exp = explain_lrp(model, x, rules="lrp0")
    np.testing.assert_allclose(exp.relevance[model.inputs[0].name][0, :, 0], [1, 1, 0, 3],
                               atol=1e-6)

    x_in = keras.Input((3, 3, 1))
    out = _ones_head(L.Flatten()(L.MaxPooling2D(2, padding="same")(x_in)))
    model = keras.Model(x_in, out)
    x = np.array([[1, 1, 0], [0, 1, 0], [2, 0, 0]], dtype=np.float32)[None, :, :, None]
    exp = explain_lrp(model, x, rules="lrp0")
    third = 1.0 / 3.0
    want = [[third, third, 0], [0, third, 0], [2, 0, 0]]
    np.testing.assert_allclose(exp.relevance[model.inputs[0].name][0, :, :, 0], want, atol=1e-6)


def test_concatenate_splits_relevance_by_position() -> None:
    a_in = keras.Input((3, 1), name="a")
    b_in = keras.Input((2, 1), name="b")
    cat = L.Concatenate(axis=1)([a_in, b_in])
    dense = L.Dense(1, use_bias=False)
    model = keras.Model([a_in, b_in], dense(L.Flatten()(cat)))
    w = np.array([[1.0], [-2.0], [0.5], [3.0], [4.0]], dtype=np.float32)
    dense.set_weights([w])
    a = np.array([[[1.0], [2.0], [3.0]]], dtype=np.float32)
    b = np.array([[[-1.0], [0.5]]], dtype=np.float32)
    exp = explain_lrp(model, [a, b], rules="lrp0")
    np.testing.assert_allclose(exp.relevance["a"][0, :, 0], [1.0, -4.0, 1.5], atol=1e-6)
    np.testing.assert_allclose(exp.relevance["b"][0, :, 0], [-3.0, 2.0], atol=1e-6)


def test_add_rule_paper_splits_equally_conservative_by_share() -> None:
    a_in = keras.Input((2,), name="a")
    b_in = keras.Input((2,), name="b")
    model = keras.Model([a_in, b_in], _ones_head(L.Add()([a_in, b_in])))
    a = np.array([[1.0, 3.0]], dtype=np.float32)
    b = np.array([[3.0, 1.0]], dtype=np.float32)
    paper = explain_lrp(model, [a, b], rules=replace(PAPER, dense_epsilon=0.0))
    np.testing.assert_allclose(paper.relevance["a"], [[2.0, 2.0]], atol=1e-6)  # eq. 32: R/2
    np.testing.assert_allclose(paper.relevance["b"], [[2.0, 2.0]], atol=1e-6)
    cons = explain_lrp(model, [a, b], rules="conservative")
    np.testing.assert_allclose(cons.relevance["a"], a, atol=1e-6)  # z-rule: R·x_i/Σx
    np.testing.assert_allclose(cons.relevance["b"], b, atol=1e-6)


def test_lstm_paper_rule_is_eq33() -> None:
    keras.utils.set_random_seed(3)
    x_in = keras.Input((1, 3))
    lstm = L.LSTM(2)
    dense = L.Dense(1, use_bias=False)
    model = keras.Model(x_in, dense(lstm(x_in)))
    x = np.random.default_rng(2).standard_normal((2, 1, 3)).astype(np.float32)
    exp = explain_lrp(model, x, rules=replace(PAPER, dense_epsilon=0.0))
    h = lstm(x).numpy()
    r_h = h * dense.get_weights()[0][:, 0]  # LRP-0 through the bias-free dense layer
    k = np.abs(lstm.cell.kernel.numpy())
    w = sum(k[:, g * 2:(g + 1) * 2] for g in range(4))  # |W| summed over the four gates
    want = r_h @ (w / w.sum(axis=0, keepdims=True)).T
    np.testing.assert_allclose(exp.relevance[model.inputs[0].name][:, 0, :], want, atol=1e-5)


def test_batchnorm_is_folded_into_the_preceding_conv() -> None:
    keras.utils.set_random_seed(4)
    x_in = keras.Input((6, 2))
    conv = L.Conv1D(3, 2, padding="same")
    bn = L.BatchNormalization()
    head = L.Dense(1)
    out = head(L.Flatten()(L.ReLU()(bn(conv(x_in)))))
    model = keras.Model(x_in, out)
    rng = np.random.default_rng(3)
    bn.set_weights([rng.random(3) + 0.5, rng.standard_normal(3), rng.standard_normal(3),
                    rng.random(3) + 0.5])
    # the same network with the BN folded by hand
    gamma, beta, mean, var = bn.get_weights()
    scale = gamma / np.sqrt(var + bn.epsilon)
    k, b = conv.get_weights()
    x2 = keras.Input((6, 2))
    conv2 = L.Conv1D(3, 2, padding="same")
    head2 = L.Dense(1)
    model2 = keras.Model(x2, head2(L.Flatten()(L.ReLU()(conv2(x2)))))
    conv2.set_weights([k * scale, (b - mean) * scale + beta])
    head2.set_weights(head.get_weights())
    x = rng.standard_normal((3, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(model(x), model2(x), atol=1e-5)
    for rules in ("paper", "conservative"):
        e1 = explain_lrp(model, x, rules=rules)
        e2 = explain_lrp(model2, x, rules=rules)
        np.testing.assert_allclose(e1.relevance[model.inputs[0].name],
                                   e2.relevance[model2.inputs[0].name], atol=1e-5, rtol=1e-4)
        assert any("folded" in row.class_name for row in e1.layers)


def test_unsupported_layer_raises_naming_layer_and_class() -> None:
    class Weird(keras.layers.Layer):
        def call(self, x):
            return x * x

    x_in = keras.Input((3,))
    model = keras.Model(x_in, L.Dense(1)(Weird(name="oddball")(x_in)))
    with pytest.raises(UnsupportedLayerError, match=r"oddball.*Weird"):
        explain_lrp(model, np.ones((1, 3), dtype=np.float32))


def _build(name: str, **hparams):
    try:
        from rul_core.models import ModelConfig, build_model
    except ImportError:  # package __init__ not re-exporting yet
        from rul_core.models.build import build_model
        from rul_core.models.presets import ModelConfig
    return build_model(ModelConfig(name, preset="quick", hparams=hparams))


MODELS = {
    "multimodal": {"image_shape": [16, 60]},
    "carle": {},
    "rc_lstm": {"window_length": 64, "res_units": 1},
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_conservative_rules_conserve_relevance_on_all_three_models(name: str) -> None:
    keras.utils.set_random_seed(0)
    model = _build(name, **MODELS[name])
    rng = np.random.default_rng(0)
    xs = [rng.random((2, *kt.shape[1:]), dtype=np.float32) for kt in model.inputs]
    exp = explain_lrp(model, xs, rules=CONSERVATIVE)
    pred = np.asarray(model(xs if len(xs) > 1 else xs[0]))[:, 0]
    np.testing.assert_allclose(exp.prediction, pred, atol=1e-5)
    total = exp.input_sums()
    assert np.all(np.abs(total - pred) <= ATOL + RTOL * np.abs(pred)), (total, pred)
    # every layer conserves on its own as well
    table = exp.layer_table()
    assert np.allclose(table["relevance_in"], table["relevance_out"], atol=1e-5, rtol=1e-3)
    # relevance maps have the inputs' shapes
    for kt, x in zip(model.inputs, xs, strict=True):
        assert exp.relevance[kt.name].shape == x.shape
    # the paper rules run too and report where relevance changes
    paper = explain_lrp(model, xs, rules="paper")
    assert paper.layer_table()["layer"].tolist() == table["layer"].tolist()
    assert np.abs(paper.layer_table()["change"]).max() > 1e-6
    # so do the epsilon rules (biases absorb a share: finite maps, the same layers walked)
    eps = explain_lrp(model, xs, rules="epsilon")
    assert eps.layer_table()["layer"].tolist() == table["layer"].tolist()
    assert all(np.isfinite(r).all() for r in eps.relevance.values())
    assert np.any(np.abs(eps.input_sums() - total) > 1e-6)  # not the conservative set again


def test_multimodal_maps_have_input_shapes_and_paper_layernorm_is_eq29() -> None:
    keras.utils.set_random_seed(0)
    model = _build("multimodal", image_shape=[16, 60])
    rng = np.random.default_rng(5)
    xs = [rng.random((1, 16, 60, 1), dtype=np.float32), rng.random((1, 7, 1), dtype=np.float32)]
    exp = explain_lrp(model, xs, rules="paper")
    assert exp.relevance["image"].shape == (1, 16, 60, 1)
    assert exp.relevance["tf"].shape == (1, 7, 1)
    rows = {r.name: r for r in exp.layers}
    assert rows["fusion_concat"].class_name == "Concatenate"
    assert rows["layer_norm"].relevance_out[0] != pytest.approx(rows["layer_norm"].relevance_in[0])


def test_offered_rule_sets_are_named_alike_everywhere() -> None:
    from rul_core.cli import explain_cmd
    from rul_core.explain.compare import LRP_RULES
    from rul_core.explain.lrp import OFFERED_RULES, get_rule_set

    assert LRP_RULES == OFFERED_RULES == ("paper", "conservative", "epsilon")
    assert all(get_rule_set(r).name == r for r in OFFERED_RULES)
    import argparse

    parser = argparse.ArgumentParser()
    explain_cmd.register(parser.add_subparsers())
    action = next(a for a in parser._subparsers._group_actions[0].choices["explain"]._actions
                  if a.dest == "rules")
    assert tuple(action.choices) == OFFERED_RULES


@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_lrp_gives_the_eager_numbers_bit_for_bit(name: str) -> None:
    """One TensorFlow graph per model, rule set, unit and batch shape instead of ~9 000
    eager ops a window: the same relevance, prediction and layer sums, bit for bit (Grappler's
    rewrites switched off for it), for every offered rule set; traced once, kept on the model
    and used by later calls (compiled=None) only once it is ready."""
    from rul_core.explain.lrp import OFFERED_RULES, engine

    keras.utils.set_random_seed(0)
    model = _build(name, **MODELS[name])
    rng = np.random.default_rng(1)
    xs = [rng.random((3, *kt.shape[1:]), dtype=np.float32) for kt in model.inputs]
    for rules in OFFERED_RULES:
        eager = explain_lrp(model, xs, rules=rules, batch_size=2, compiled=False)
        assert not getattr(model, engine._COMPILED_ATTR, {})  # nothing compiled yet
        first = explain_lrp(model, xs, rules=rules, batch_size=2, compiled=True)
        later = explain_lrp(model, xs, rules=rules, batch_size=2)  # the compiled passes
        for got in (first, later):
            for k, r in eager.relevance.items():
                assert np.abs(r).max() > 0
                np.testing.assert_array_equal(got.relevance[k], r)
            np.testing.assert_array_equal(got.prediction, eager.prediction)
            assert [lr.name for lr in got.layers] == [lr.name for lr in eager.layers]
            for a, b in zip(got.layers, eager.layers, strict=True):
                assert a.class_name == b.class_name
                np.testing.assert_array_equal(a.relevance_in, b.relevance_in)
                np.testing.assert_array_equal(a.relevance_out, b.relevance_out)
        fns = getattr(model, engine._COMPILED_ATTR)
        mine = {k: f for k, f in fns.items() if k[0].name == rules}
        assert sorted(k[2][0][0] for k in mine) == [1, 2]  # batches of 2, then 1
        assert all(f.fn.experimental_get_tracing_count() == 1 for f in mine.values())
        object.__delattr__(model, engine._COMPILED_ATTR)


def test_a_failed_rule_check_raises_in_the_compiled_pass_too() -> None:
    """A rule's consistency check (the LSTM rule recomputes its states) cannot read a value
    inside a graph: it is returned with the relevance and raised after the run."""
    from rul_core.explain.lrp.rules import IdentityRule, register_rule

    class Checked(L.Layer):
        def call(self, x):
            return x

    class FailingRule(IdentityRule):
        def backward(self, layer, node, ctx, relevance):
            ctx.require(tf.reduce_all(relevance > 1e9), f"layer '{layer.name}': check failed")
            return [relevance]

    register_rule(Checked, FailingRule())
    x_in = keras.Input((3,))
    model = keras.Model(x_in, L.Dense(1)(Checked(name="checked")(x_in)))
    x = np.ones((2, 3), dtype=np.float32)
    for compiled in (False, True):
        with pytest.raises(UnsupportedLayerError, match="'checked': check failed"):
            explain_lrp(model, x, rules="epsilon", compiled=compiled)
