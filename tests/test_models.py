"""Model builders: configs, architecture per ablation, train/save/reload, heads and intervals."""

from __future__ import annotations

import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from rul_core.errors import BundleError, DataFormatError, RulError
from rul_core.models import (
    ABLATIONS,
    MODEL_NAMES,
    PRESETS,
    ForestHead,
    MCDropout,
    ModelConfig,
    build_model,
    custom_objects,
    describe,
    embedding_model,
    make_inputs,
    predict_point_and_interval,
    set_mc_dropout,
)
from rul_core.models.inputs import pool_signals, sequence_indices

# Small inputs so every model trains in a few seconds on 2 cores.
TINY = {
    "multimodal": {"image_shape": [64, 100]},
    "carle": {},
    "rc_lstm": {"pool": 20},
}
N = 24


def tiny_config(name: str, ablation: str = "full", **kw) -> ModelConfig:
    return ModelConfig(name, ablation, "quick", hparams=dict(TINY[name]), **kw)


@pytest.fixture(scope="module")
def windows():
    """A fake WindowSet of one run: 6 snapshots x 4 windows (the pipeline contract's fields)."""
    rng = np.random.default_rng(0)
    return SimpleNamespace(
        images=rng.integers(0, 3, (N, 64, 500)).astype(np.uint8),
        tf=rng.normal(size=(N, 2, 7)).astype(np.float32),
        snapshot_index=np.repeat(np.arange(6), 4),
        offset=np.tile([0, 500, 1000, 1500], 6),
    )


@pytest.fixture(scope="module")
def signals():
    return np.random.default_rng(1).random((N, 1000, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def labels():
    return np.linspace(1.0, 0.0, N).astype(np.float32)


def layer_names(model: keras.Model) -> list[str]:
    return [lay.name for lay in model.layers]


def count(model: keras.Model, cls: type) -> int:
    return sum(isinstance(lay, cls) for lay in model.layers)


# ---------------------------------------------------------------- configs


def test_config_round_trip_and_validation():
    c = ModelConfig("carle", "crle", "paper", dataset_kind="xjtu", seed=3, hparams={"l2": 0.1})
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert ModelConfig.from_dict(d) == c
    r = c.resolved()
    assert r["cnn_filters"] == [256, 256, 128, 64]
    assert r["dense_units"] == [128, 64, 32]
    assert r["l2"] == 0.1
    assert "by_dataset" not in r
    femto = ModelConfig("carle", preset="paper").resolved()
    assert femto["cnn_filters"] == [64, 64, 32, 32] and femto["dense_units"] == [64, 48, 32]
    assert PRESETS["paper"]["carle"]["l2"] == 0.005  # overrides never leak into the preset
    with pytest.raises(RulError, match="ablation"):
        ModelConfig("carle", "mmv1")
    with pytest.raises(RulError, match="name"):
        ModelConfig("transformer")
    with pytest.raises(RulError, match="unknown hparams"):
        ModelConfig("multimodal", hparams={"lstm_unit": [3]})
    with pytest.raises(RulError, match="unknown keys"):
        ModelConfig.from_dict({"name": "carle", "colour": "red"})
    with pytest.raises(RulError, match="gaussian"):
        ModelConfig("carle", interval="gaussian")
    assert ModelConfig("rc_lstm").interval == "gaussian"
    assert ModelConfig("rc_lstm", interval="mc_dropout").interval == "gaussian"
    assert ModelConfig("rc_lstm", interval="ensemble").interval == "ensemble"
    assert ModelConfig("carle").uses_forest and not ModelConfig("carle", "carl").uses_forest
    assert not ModelConfig("multimodal").uses_forest
    assert ModelConfig("multimodal", hparams={"forest": True}).uses_forest
    assert ModelConfig("carle", seed=4).member(2).seed == 6
    table = describe(c)
    assert "| cnn_filters | [256, 256, 128, 64] |" in table and "| ablation | crle |" in table


def test_presets_are_json_and_complete():
    assert json.loads(json.dumps(PRESETS)) == PRESETS
    for preset in ("paper", "quick"):
        assert set(PRESETS[preset]) == set(MODEL_NAMES)
    assert PRESETS["paper"]["multimodal"]["forest_trees"] == 800
    assert PRESETS["paper"]["carle"]["forest_trees"] == 800
    assert PRESETS["paper"]["rc_lstm"]["res_units"] == 9


# ---------------------------------------------------------------- architecture


@pytest.mark.parametrize("name,ablation", [(n, a) for n in MODEL_NAMES for a in ABLATIONS[n]])
def test_quick_builds(name, ablation):
    m = build_model(ModelConfig(name, ablation))
    assert m.output.shape == ((None, 2) if name == "rc_lstm" else (None, 1))
    assert embedding_model(m).output.shape[0] is None
    assert m.optimizer is not None


def test_multimodal_paper_shapes_and_params():
    m = build_model(ModelConfig("multimodal", preset="paper"))
    assert [tuple(i.shape) for i in m.inputs] == [(None, 64, 500, 1), (None, 7, 1)]
    # 64x500 -> pools 3,3 -> 8x56 -> pools 3,2 -> 2x10; 20 image steps + 7 TF steps
    assert m.get_layer("img_res_add1").output.shape == (None, 8, 56, 32)
    assert m.get_layer("img_res_add2").output.shape == (None, 2, 10, 64)
    assert m.get_layer("fusion_concat").output.shape == (None, 27, 64)
    assert m.get_layer("img_conv1").count_params() == 5 * 5 * 1 * 32 + 32
    assert m.get_layer("img_conv4").count_params() == 2 * 2 * 64 * 64 + 64
    assert m.get_layer("tf_conv1").count_params() == 2 * 1 * 32 + 32
    assert m.get_layer("img_res_conv2").count_params() == 32 * 64 + 64
    assert m.get_layer("lstm1").count_params() == 4 * (100 * (64 + 100) + 100)
    assert m.get_layer("lstm3").count_params() == 4 * (64 * (64 + 64) + 64)
    # 8 heads, key_dim 64, model width 64: q, k, v (64*512 + 512 each) + output (512*64 + 64)
    assert m.get_layer("attention").count_params() == 3 * (64 * 512 + 512) + 512 * 64 + 64
    assert m.get_layer("dense1").units == 64 and m.get_layer("embedding").units == 32
    assert "lstm_res_project" not in layer_names(m)  # widths match at the paper sizes
    assert isinstance(m.optimizer, keras.optimizers.RMSprop)
    assert float(m.optimizer.learning_rate) == pytest.approx(1e-4)


@pytest.mark.parametrize("kind", ["xjtu", "femto"])
def test_carle_paper_shapes_and_params(kind):
    m = build_model(ModelConfig("carle", preset="paper", dataset_kind=kind))
    f = [256, 256, 128, 64] if kind == "xjtu" else [64, 64, 32, 32]
    d = [128, 64, 32] if kind == "xjtu" else [64, 48, 32]
    assert tuple(m.inputs[0].shape) == (None, 14, 1)
    for i, (fi, ki) in enumerate(zip(f, [3, 3, 2, 2], strict=True)):
        conv = m.get_layer(f"cnn_conv{i + 1}")
        assert conv.filters == fi and conv.kernel_size == (ki,)
        c_in = 1 if i == 0 else f[i - 1]
        assert conv.count_params() == ki * c_in * fi + fi
        assert m.get_layer(f"cnn_res_conv{i + 1}").count_params() == c_in * fi + fi
    assert m.get_layer("lstm1").count_params() == 4 * (64 * (f[-1] + 64) + 64)
    assert m.get_layer("flatten").output.shape == (None, 14 * 64)
    assert [m.get_layer(n).units for n in ("dense1", "dense2", "embedding")] == d
    assert ("lstm_res_project1" in layer_names(m)) == (f[-1] != 64)


def test_multimodal_ablation_flags():
    dil = {}
    for ab in ABLATIONS["multimodal"]:
        m = build_model(ModelConfig("multimodal", ab))
        names = layer_names(m)
        dil[ab] = [m.get_layer(f"img_conv{i}").dilation_rate[0] for i in range(1, 5)] + [
            m.get_layer(f"tf_conv{i}").dilation_rate[0] for i in range(1, 5)
        ]
        n_add = count(m, keras.layers.Add)
        n_mha = count(m, keras.layers.MultiHeadAttention)
        if ab == "mmv2":
            assert n_add == 0 and not any("res" in n for n in names)
        else:
            # image blocks 1, 2 + TF blocks 1, 2 + LSTM residual
            assert n_add == 5 and "lstm_res_add" in names
        assert n_mha == (0 if ab == "mmv3" else 1)
        assert count(m, keras.layers.LayerNormalization) == 1
    assert dil["full"] == [4, 3, 2, 1, 2, 2, 1, 1]
    assert dil["mmv1"] == [1] * 8
    assert dil["mmv2"] == dil["mmv3"] == dil["full"]


def test_carle_ablation_flags():
    for ab in ABLATIONS["carle"]:
        m = build_model(ModelConfig("carle", ab))
        n_add = count(m, keras.layers.Add)
        n_mha = count(m, keras.layers.MultiHeadAttention)
        assert n_mha == (0 if ab == "crle" else 3)  # after Res-CNN + after each LSTM
        assert n_add == (0 if ab == "cale" else 4 + 2)  # 4 conv residuals + 2 LSTM residuals
        assert count(m, keras.layers.LSTM) == 2


def test_build_is_seeded():
    w0 = build_model(tiny_config("carle", seed=5)).get_weights()
    w1 = build_model(tiny_config("carle", seed=5)).get_weights()
    w2 = build_model(tiny_config("carle", seed=6)).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(w0, w2, strict=True))


# ---------------------------------------------------------------- inputs


def test_make_inputs_multimodal_and_carle(windows):
    c = ModelConfig("multimodal")
    img, tf = make_inputs(c, windows)
    assert img.shape == (N, 64, 500, 1) and img.dtype == np.float32
    np.testing.assert_array_equal(img[..., 0], windows.images / 2.0)
    np.testing.assert_array_equal(tf[:, :, 0], windows.tf[:, 1, :])  # vertical channel
    small, _ = make_inputs(tiny_config("multimodal"), windows)
    assert small.shape == (N, 64, 100, 1)
    expected = windows.images[3, 10, 5:10].mean() / 2.0  # column group 1 of row 10
    assert small[3, 10, 1, 0] == pytest.approx(expected)
    (ctf,) = make_inputs(ModelConfig("carle"), windows)
    assert ctf.shape == (N, 14, 1)
    np.testing.assert_array_equal(ctf[:, :7, 0], windows.tf[:, 0])
    np.testing.assert_array_equal(ctf[:, 7:, 0], windows.tf[:, 1])
    with pytest.raises(DataFormatError, match="tf_channels"):
        make_inputs(ModelConfig("carle", hparams={"tf_channels": [0, 2]}), windows)


def test_sequence_indices_pad_and_run_boundaries():
    snap = np.array([0, 0, 1, 1, 2, 0, 0, 1])  # second run starts at window 5
    idx = sequence_indices(snap, 3)
    assert idx.tolist() == [
        [0, 0, 0], [0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4],
        [5, 5, 5], [5, 5, 6], [5, 6, 7],
    ]  # fmt: skip


def test_make_inputs_rc_lstm(windows, signals):
    c = tiny_config("rc_lstm")
    (x,) = make_inputs(c, windows, signals)
    assert x.shape == (N, 7, 50, 1, 2)
    pooled = pool_signals(signals, 20)
    assert pooled[2, 3, 1] == pytest.approx(signals[2, 60:80, 1].mean())
    np.testing.assert_array_equal(x[10, -1, :, 0], pooled[10])  # last step = own window
    np.testing.assert_array_equal(x[10, 0, :, 0], pooled[4])  # first step = window j-6
    np.testing.assert_array_equal(x[2, 0, :, 0], pooled[0])  # padded by the first window
    with pytest.raises(DataFormatError, match="signals"):
        make_inputs(c, windows)
    with pytest.raises(DataFormatError, match="window_length"):
        make_inputs(c, windows, signals[:, :800])


# ---------------------------------------------------------------- train / save / reload


@pytest.mark.parametrize("name,ablation", [(n, a) for n in MODEL_NAMES for a in ABLATIONS[n]])
def test_train_save_reload_same_predictions(name, ablation, windows, signals, labels, tmp_path):
    keras.utils.set_random_seed(0)
    c = tiny_config(name, ablation)
    m = build_model(c)
    # Eager: tracing the train/predict graphs of nine models costs more than the steps here.
    # Graph mode is exercised by the forest, interval and schedule tests.
    m.run_eagerly = True
    x = make_inputs(c, windows, signals)
    w0 = [w.copy() for w in m.get_weights()]
    hist = m.fit(x, labels, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(w0, m.get_weights(), strict=True))
    before = m.predict(x, verbose=0)
    path = tmp_path / "m.keras"
    m.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, custom_objects=custom_objects())
    loaded.run_eagerly = True
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    assert [w.shape for w in loaded.get_weights()] == [w.shape for w in m.get_weights()]
    assert loaded.count_params() == m.count_params()
    if name == "rc_lstm":
        assert type(loaded.loss).__name__ == "GaussianLoss" and loaded.loss.kind == "L3"
        assert np.all(before[:, 1] > 0)


def test_no_lambda_layers():
    for name in MODEL_NAMES:
        m = build_model(ModelConfig(name))
        assert not any(isinstance(lay, keras.layers.Lambda) for lay in m.layers)


# ---------------------------------------------------------------- forest head


class Evil:
    """A type no allow-list names."""

    def __init__(self) -> None:
        self.payload = "x"


def test_forest_head_round_trip_and_refusal(tmp_path):
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(60, 4))
    y = emb[:, 0] * 0.5 + 0.2
    head = ForestHead.fit(emb, y, n_trees=7, seed=3)
    assert head.n_trees == 7
    np.testing.assert_allclose(head.predict_trees(emb).mean(axis=0), head.predict(emb))
    path = head.save(tmp_path / "forest.skops")
    again = ForestHead.load(path)
    np.testing.assert_array_equal(again.predict(emb), head.predict(emb))
    assert (
        ForestHead.fit(emb, y, n_trees=7, seed=3).predict(emb).tolist()
        == head.predict(emb).tolist()
    )

    import skops.io as sio

    bad = tmp_path / "evil.skops"
    sio.dump({"forest": head.forest, "evil": Evil()}, bad)
    with pytest.raises(BundleError, match="untrusted"):
        ForestHead.load(bad)
    notforest = tmp_path / "dict.skops"
    sio.dump({"a": 1}, notforest)
    with pytest.raises(BundleError, match="RandomForestRegressor"):
        ForestHead.load(notforest)
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="skops"):
        ForestHead.load(tmp_path / "junk.skops")


def test_dilated_convolutions_run_as_one_kernel_with_the_same_outputs_and_gradients(windows):
    """use_fast_dilated_conv swaps SpaceToBatch + convolution for oneDNN's dilated kernel:
    the traced graph has no SpaceToBatchND left, outputs and input gradients stay equal to
    the stock layers' to float32 rounding."""
    import tensorflow as tf

    from rul_core.models.fastconv import (
        fast_conv_available,
        fast_conv_layers,
        use_fast_dilated_conv,
    )

    if not fast_conv_available():
        pytest.skip("TensorFlow runs without oneDNN here: the stock op is kept")
    c = tiny_config("multimodal")
    stock, fast = build_model(c), build_model(c)
    fast.set_weights(stock.get_weights())
    dilated = sorted(lay.name for lay in stock._flatten_layers(include_self=False)
                     if isinstance(lay, keras.layers.Conv2D) and max(lay.dilation_rate) > 1)
    assert len(dilated) == 3  # the image branch's first three
    assert use_fast_dilated_conv(fast) == len(dilated) == use_fast_dilated_conv(fast)
    assert sorted(fast_conv_layers(fast)) == dilated and fast_conv_layers(stock) == []
    x = [tf.constant(a) for a in make_inputs(c, windows)]

    def op_types(model: keras.Model) -> list[str]:
        fn = tf.function(lambda a, b: model([a, b], training=False))
        return [op.type for op in fn.get_concrete_function(*x).graph.get_operations()]

    # the image branch's dilated Conv2D layers lose their SpaceToBatchND (the TF branch's
    # Conv1D layers keep theirs)
    count = lambda ops: sum(t == "SpaceToBatchND" for t in ops)  # noqa: E731
    assert count(op_types(stock)) == count(op_types(fast)) + len(dilated)

    def outputs_and_gradients(model: keras.Model) -> list[np.ndarray]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x, training=False)
        return [y.numpy(), *(g.numpy() for g in tape.gradient(y, x))]

    for a, b in zip(outputs_and_gradients(stock), outputs_and_gradients(fast), strict=True):
        assert np.abs(a).max() > 0
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * np.abs(a).max())


def test_embedding_model_is_built_once_per_model_and_freed_with_it(windows):
    import gc
    import weakref

    from rul_core.models import build as build_module

    c = tiny_config("carle")
    m = build_model(c)
    sub = embedding_model(m)
    assert embedding_model(m) is sub  # one compiled predict function per model
    x = make_inputs(c, windows)
    np.testing.assert_array_equal(sub.predict(x, verbose=0),
                                  keras.Model(m.inputs, m.get_layer("embedding").output)
                                  .predict(x, verbose=0))
    other = build_model(c.member(1))
    assert embedding_model(other) is not sub
    gone = weakref.ref(m)
    del m, sub
    gc.collect()
    assert gone() is None  # the cache does not keep a model alive
    assert other in build_module._EMBEDDINGS


def test_forest_interval_from_trees(windows, labels):
    c = tiny_config("carle")
    m = build_model(c)
    x = make_inputs(c, windows)
    from rul_core.models import fit_forest_head

    head = fit_forest_head(m, x, labels, n_trees=11, seed=0)
    emb = embedding_model(m).predict(x, verbose=0)
    out = predict_point_and_interval([m], c, x, forest=head, level=0.8)
    trees = head.predict_trees(emb)
    np.testing.assert_allclose(out["mean"], head.predict(emb), atol=1e-12)
    lo, hi = np.quantile(trees, [0.1, 0.9], axis=0)
    np.testing.assert_allclose(out["lower"], np.minimum(lo, out["mean"]))
    np.testing.assert_allclose(out["upper"], np.maximum(hi, out["mean"]))
    np.testing.assert_allclose(out["std"], trees.std(axis=0))
    assert np.all(out["lower"] <= out["mean"]) and np.all(out["mean"] <= out["upper"])


# ---------------------------------------------------------------- intervals


def test_mc_dropout_sampling_seeded_and_bn_untouched(windows):
    c = tiny_config("multimodal", mc_samples=5, dropout=0.3)
    m = build_model(c)
    x = make_inputs(c, windows)
    bn = m.get_layer("img_bn1")
    stats = [np.array(v) for v in (bn.moving_mean, bn.moving_variance)]
    point = m.predict(x, verbose=0)[:, 0]
    a = predict_point_and_interval([m], c, x, seed=1)
    b = predict_point_and_interval([m], c, x, seed=1)
    d = predict_point_and_interval([m], c, x, seed=2)
    for k in ("mean", "lower", "upper", "std"):
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].shape == (N,)
    assert not np.array_equal(a["mean"], d["mean"])
    assert np.all(a["std"] > 0)
    assert not np.allclose(a["mean"], point)  # samples are not the deterministic output
    np.testing.assert_array_equal(m.predict(x, verbose=0)[:, 0], point)  # MC switched off
    np.testing.assert_array_equal(bn.moving_mean, stats[0])
    np.testing.assert_array_equal(bn.moving_variance, stats[1])
    assert len([lay for lay in m.layers if isinstance(lay, MCDropout)]) == 2

    from rul_core.models import mc_samples

    s = mc_samples(m, x, 3, seed=9)
    assert s.shape == (3, N) and not np.array_equal(s[0], s[1])
    assert set_mc_dropout(m, False) == 2


@pytest.mark.parametrize(("name", "ablation"), [("multimodal", "full"), ("multimodal", "mmv3"),
                                              ("carle", "full"), ("carle", "cale")])
def test_mc_dropout_samples_only_the_head(windows, monkeypatch, tmp_path, name, ablation):
    """The trunk before the first MCDropout runs once; the head alone is sampled. With the same
    seed and batch shapes the head draws the same masks as sampling the whole model, so the
    samples are those of the whole model, at a fraction of the cost."""
    from rul_core.models import intervals

    c = tiny_config(name, ablation, mc_samples=4, dropout=0.3)
    m = build_model(c)
    x = make_inputs(c, windows)
    split = intervals.mc_split(m)
    assert split is not None and intervals.mc_split(m) is split  # built once per model
    trunk, head = split
    assert not intervals.mc_dropout_layers(trunk)
    assert len(intervals.mc_dropout_layers(head)) == len(intervals.mc_dropout_layers(m))
    np.testing.assert_allclose(head.predict(trunk.predict(x, verbose=0), verbose=0),
                               m.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    switched_on = []  # the head is sampled with training=True: the shared flags stay off,
    real_switch = intervals.set_mc_dropout  # so another session's plain predict never samples

    def spy(model, active, seed=None):
        switched_on.append(active)
        return real_switch(model, active, seed)

    monkeypatch.setattr(intervals, "set_mc_dropout", spy)
    fast = intervals.mc_samples(m, x, 4, seed=3)
    assert switched_on and not any(switched_on)
    monkeypatch.setattr(intervals, "mc_split", lambda model: None)
    whole = intervals.mc_samples(m, x, 4, seed=3)  # one batch of 4 x N rows in both paths
    assert fast.shape == whole.shape == (4, N)
    assert any(switched_on)  # the whole-model fallback switches them on
    np.testing.assert_allclose(fast, whole, rtol=1e-5, atol=1e-6)
    assert not np.allclose(fast[0], fast[1])
    n_layers = len(m.layers)  # cutting the graph leaves the model as it was: it saves, reloads
    m.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    assert len(back.layers) == n_layers
    np.testing.assert_allclose(back.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)


def test_mc_dropout_under_concurrent_calls(windows, monkeypatch):
    """App sessions share a cached model. MC calls on it from several threads each get their
    seed's samples (they are serialised), and a plain predict running meanwhile never samples
    dropout (the head is sampled with training=True; the shared flags stay off) nor moves the
    random stream the head's samples are drawn from."""
    from concurrent.futures import ThreadPoolExecutor

    from rul_core.models import intervals, mc_samples

    c = tiny_config("carle", mc_samples=4, dropout=0.3)
    m = build_model(c)
    x = make_inputs(c, windows)
    expected = {seed: mc_samples(m, x, 4, seed=seed) for seed in (1, 2)}
    point = m.predict(x, verbose=0)
    with ThreadPoolExecutor(4) as pool:
        runs = [(seed, pool.submit(mc_samples, m, x, 4, seed=seed)) for seed in (1, 2) * 3]
        for seed, fut in runs:
            np.testing.assert_array_equal(fut.result(), expected[seed])
        # a plain predict draws (and discards) masks from the inference stream only, so MC
        # samples of the split head drawn meanwhile are still exactly their seed's
        mixed = [pool.submit(mc_samples, m, x, 4, seed=1) for _ in range(3)]
        plain = [pool.submit(m.predict, x, verbose=0) for _ in range(6)]
        for fut in plain:
            np.testing.assert_array_equal(fut.result(), point)
        for fut in mixed:
            np.testing.assert_array_equal(fut.result(), expected[1])
    # the race made deterministic: a plain predict between the reseed and the head's draws
    # (it runs inside the trunk call) moves the inference stream, not the sampling stream
    trunk = intervals.mc_split(m)[0]
    run = intervals._predict
    moved = []

    def trunk_after_a_plain_predict(model, chunk):
        if model is trunk:
            before = [np.asarray(lay.seed_generator.state)
                      for lay in intervals.mc_dropout_layers(m)]
            np.testing.assert_array_equal(m.predict(x, verbose=0), point)
            moved.append(any((np.asarray(lay.seed_generator.state) != b).any() for lay, b in
                             zip(intervals.mc_dropout_layers(m), before, strict=True)))
        return run(model, chunk)

    monkeypatch.setattr(intervals, "_predict", trunk_after_a_plain_predict)
    np.testing.assert_array_equal(mc_samples(m, x, 4, seed=2), expected[2])
    assert moved and all(moved)


def test_mc_dropout_needs_dropout(windows):
    c = tiny_config("carle", dropout=0.0)
    m = build_model(c)
    with pytest.raises(RulError, match="MCDropout"):
        predict_point_and_interval([m], c, make_inputs(c, windows))


def test_ensemble_interval_hand_computed(windows):
    c = tiny_config("carle", interval="ensemble", n_members=3)
    members = [build_model(c.member(i)) for i in range(3)]
    x = make_inputs(c, windows)
    preds = np.stack([m.predict(x, verbose=0)[:, 0] for m in members]).astype(np.float64)
    out = predict_point_and_interval(members, c, x, level=0.9)
    mean, std = preds.mean(0), preds.std(0, ddof=1)
    np.testing.assert_allclose(out["mean"], mean)
    np.testing.assert_allclose(out["std"], std)
    np.testing.assert_allclose(out["upper"], mean + 1.6448536269514722 * std)
    np.testing.assert_allclose(out["lower"], mean - 1.6448536269514722 * std)


def test_rc_lstm_interval_from_head(windows, signals):
    c = tiny_config("rc_lstm")
    m = build_model(c)
    x = make_inputs(c, windows, signals)
    p = m.predict(x, verbose=0).astype(np.float64)
    out = predict_point_and_interval([m], c, x, level=0.95)
    np.testing.assert_allclose(out["mean"], p[:, 0])
    np.testing.assert_allclose(out["std"], p[:, 1], rtol=1e-6)
    np.testing.assert_allclose(out["upper"], p[:, 0] + 1.959963984540054 * p[:, 1], rtol=1e-6)
    # a two-member mixture: mean of means, variance = mean(sigma^2 + mu^2) - mean^2
    m2 = build_model(c.member(1))
    q = m2.predict(x, verbose=0).astype(np.float64)
    mix = predict_point_and_interval([m, m2], c, x)
    mean = (p[:, 0] + q[:, 0]) / 2
    var = (p[:, 1] ** 2 + p[:, 0] ** 2 + q[:, 1] ** 2 + q[:, 0] ** 2) / 2 - mean**2
    np.testing.assert_allclose(mix["mean"], mean)
    np.testing.assert_allclose(mix["std"], np.sqrt(var), rtol=1e-6)


def test_make_inputs_on_the_real_pipeline():
    """make_inputs agrees with WindowSet's own accessors on a synthetic run."""
    import warnings

    from rul_core.data.synthetic import synth_run
    from rul_core.signal import pipeline as pl

    run = synth_run("Bearing1_1", n_snapshots=3, seed=0)
    cfg = pl.PipelineConfig()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the wavelet-longer-than-window notice
        norm = pl.fit_normaliser([run], cfg)
        ws = pl.extract_windows(run, norm, cfg)
    sig = pl.window_signals(run, norm, cfg)
    img, tf = make_inputs(ModelConfig("multimodal"), ws)
    np.testing.assert_array_equal(img, ws.image_input())
    np.testing.assert_array_equal(tf, ws.tf_input([1]))
    (ctf,) = make_inputs(ModelConfig("carle"), ws)
    np.testing.assert_array_equal(ctf, ws.tf_input([0, 1]))
    (seq,) = make_inputs(ModelConfig("rc_lstm"), ws, sig)
    assert seq.shape == (len(ws), 7, 125, 1, 2)
    np.testing.assert_allclose(
        seq[-1, -1, :, 0, 0], sig[-1, :, 0].reshape(125, 8).mean(1), atol=1e-6
    )


def test_conformal_factor_hand_values() -> None:
    from rul_core.models.intervals import calibrated, calibration_quantiles, nonconformity

    mean = np.zeros(4)
    lower, upper = mean - 1.0, mean + 2.0
    y = np.array([-0.5, 1.0, 4.0, -3.0])
    scores = nonconformity(y, mean, lower, upper)
    np.testing.assert_allclose(scores, [0.5, 0.5, 2.0, 3.0])
    q = calibration_quantiles(scores)
    # n = 4: level 50 % -> rank ceil(5 * 0.5) = 3 -> third smallest score (2.0)
    assert q[50] == 2.0 and q[0] == 0.5 and q[100] == 3.0
    out = calibrated({"mean": mean, "lower": lower, "upper": upper, "std": mean}, q, 0.5)
    np.testing.assert_allclose(out["lower"], -2.0)  # half-width 1 x factor 2
    np.testing.assert_allclose(out["upper"], 4.0)  # half-width 2 x factor 2
    same = calibrated({"mean": mean, "lower": lower, "upper": upper}, None, 0.9)
    np.testing.assert_array_equal(same["upper"], upper)


def test_forest_leaf_size_limits_what_a_tree_can_memorise() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 3)).astype(np.float32)
    y = emb[:, 0] * 2.0 + rng.normal(scale=0.1, size=40)
    deep = ForestHead.fit(emb, y, n_trees=5, seed=0)
    # a leaf must hold >= 25 of 40 samples: no split is possible, each tree is one leaf
    stump = ForestHead.fit(emb, y, n_trees=5, seed=0, min_samples_leaf=25, max_features=0.5)
    assert all(t.tree_.node_count == 1 for t in stump.forest.estimators_)
    assert stump.forest.max_features == 0.5
    per_tree = stump.predict_trees(emb)
    assert np.allclose(per_tree, per_tree[:, :1])  # every tree predicts one constant
    assert np.corrcoef(deep.predict(emb), y)[0, 1] > 0.9
