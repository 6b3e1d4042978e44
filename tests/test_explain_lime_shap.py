"""LIME and SHAP wrappers: known answers on linear models, additivity, seed spread."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers as L  # noqa: N812
from sklearn.ensemble import RandomForestRegressor

from rul_core.explain.common import WindowInputs, band_segments, band_sums, image_predictor
from rul_core.explain.lime_explain import lime_image, lime_tabular
from rul_core.explain.shap_explain import (
    choose_background,
    global_importance,
    gradient_shap,
    kernel_shap_tf,
    tree_shap,
)

H, W, F = 4, 20, 7


def linear_multimodal(w_img: np.ndarray, w_tf: np.ndarray) -> keras.Model:
    """f(image, tf) = Σ w_img·image + Σ w_tf·tf (bias-free), inputs named like the real model."""
    img = keras.Input((H, W, 1), name="image")
    tf_in = keras.Input((F, 1), name="tf")
    cat = L.Concatenate()([L.Flatten()(img), L.Flatten()(tf_in)])
    dense = L.Dense(1, use_bias=False)
    model = keras.Model([img, tf_in], dense(cat))
    dense.set_weights([np.concatenate([w_img.ravel(), w_tf]).reshape(-1, 1).astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def setup():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    w_img = np.zeros((H, W))
    w_img[:, 8:12] = 1.0  # only band 2 of 5 bands (4 columns each) matters
    w_tf = np.array([0.0, 3.0, 0.0, -1.0, 0.0, 0.0, 0.5])
    model = linear_multimodal(w_img, w_tf)
    xs = [rng.random((30, H, W, 1), dtype=np.float32),
          rng.standard_normal((30, F, 1)).astype(np.float32)]
    return model, xs, w_img, w_tf


def test_band_segments_and_sums() -> None:
    seg = band_segments(500, 25)
    assert np.all(np.bincount(seg) == 20)
    a = np.zeros((1, 2, 10, 1))
    a[0, :, 3] = 1.0
    np.testing.assert_allclose(band_sums(a, 5), [[0, 2, 0, 0, 0]])


def test_lime_tabular_finds_the_weighted_features_and_reports_seed_spread(setup) -> None:
    model, xs, _, w_tf = setup
    window = WindowInputs.from_list(model, xs, 0)
    res = lime_tabular(model, window, xs[1][:, :, 0], num_samples=300)
    assert res.weights.shape == (5, F) and res.num_samples == 300
    assert res.std.shape == (F,) and np.all(np.isfinite(res.std)) and res.std.max() > 0
    top = int(np.argmax(np.abs(res.mean)))
    assert top == 1  # the feature with weight 3
    zero = np.abs(res.mean[w_tf == 0]).max()
    assert zero < 0.2 * abs(res.mean[1])
    again = lime_tabular(model, window, xs[1][:, :, 0], num_samples=300)
    np.testing.assert_allclose(res.weights, again.weights)  # seeded


def test_lime_image_on_column_bands_recovers_the_only_relevant_band(setup) -> None:
    model, xs, _, _ = setup
    window = WindowInputs.from_list(model, xs, 0)
    res = lime_image(model, window, num_samples=200, seeds=(0, 1), n_bands=5)
    assert res.weights.shape == (2, 5)
    contribution = float(xs[0][0, :, 8:12, 0].sum())  # band 2 switched off -> f drops by this
    assert int(np.argmax(res.mean)) == 2
    assert res.mean[2] == pytest.approx(contribution, rel=0.15)
    assert np.abs(np.delete(res.mean, 2)).max() < 0.1 * res.mean[2]


def test_explanations_predict_through_one_trace_for_every_batch_size(setup) -> None:
    """common.predict: Keras' predictions, from one traced function kept on the model."""
    from rul_core.explain.common import predict
    from rul_core.models.build import inference_function

    model, xs, _, _ = setup
    for n, batch_size in ((1, 256), (3, 256), (30, 7)):
        got = predict(model, [x[:n] for x in xs], batch_size=batch_size)
        want = np.asarray(model.predict_on_batch([x[:n] for x in xs])).reshape(-1)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    fn = inference_function(model)
    assert inference_function(model) is fn and fn.experimental_get_tracing_count() == 1
    # kept on the model, not keeping it alive
    import gc
    import weakref

    inp = keras.Input((3,))
    small = keras.Model(inp, L.Dense(1)(inp))
    predict(small, [np.ones((2, 3), np.float32)])
    gone = weakref.ref(small)
    del small
    gc.collect()
    assert gone() is None


def _lime_library_image(model, window, num_samples, seed, n_seg, segmentation_fn,
                        batch_size=64):
    """The former path: lime.lime_image with one deep copy per sample (the reference)."""
    from lime.lime_image import LimeImageExplainer

    f = image_predictor(model, window, batch_size)
    exp = LimeImageExplainer(random_state=seed).explain_instance(
        window.arrays["image"][0, ..., 0].astype(np.float64), lambda ims: f(ims)[:, None],
        labels=(0,), top_labels=None, hide_color=0.0, num_features=n_seg,
        num_samples=num_samples, batch_size=batch_size, segmentation_fn=segmentation_fn,
        random_seed=seed)
    weights = np.zeros(n_seg)
    for j, v in exp.local_exp[0]:
        weights[j] = v
    return weights, float(exp.intercept[0]), float(np.ravel(exp.local_pred)[0])


@pytest.mark.parametrize("n_bands,blocks", [(5, False), (10, False), (8, True)])
def test_lime_image_gives_lime_librarys_weights(n_bands: int, blocks: bool) -> None:
    """The vectorised sampler draws, masks, weighs and fits as lime.lime_image does: the same
    weights, intercept and local prediction per seed, on a non-linear model, for column bands
    (5 bands: lime's forward selection; 10: its highest weights) and for other segments."""
    keras.utils.set_random_seed(3)
    img = keras.Input((H, W, 1), name="image")
    tf_in = keras.Input((F, 1), name="tf")
    x = L.Flatten()(L.Conv2D(3, 3, padding="same", activation="tanh")(img))
    model = keras.Model([img, tf_in], L.Dense(1)(L.Concatenate()([x, L.Flatten()(tf_in)])))
    rng = np.random.default_rng(3)
    window = WindowInputs({"image": rng.random((1, H, W, 1), dtype=np.float32),
                           "tf": rng.standard_normal((1, F, 1)).astype(np.float32)})
    seg = (np.arange(H)[:, None] // 2) * 4 + np.arange(W)[None, :] // 5  # 2 x 4 blocks
    segmentation_fn = (lambda image: seg.copy()) if blocks else (
        lambda image: np.broadcast_to(band_segments(W, n_bands), image.shape[:2]).copy())
    res = lime_image(model, window, num_samples=90, seeds=(0, 4), n_bands=n_bands,
                     segmentation_fn=segmentation_fn if blocks else None, batch_size=32)
    assert res.weights.shape == (2, n_bands)
    for i, seed in enumerate((0, 4)):
        weights, intercept, local = _lime_library_image(model, window, 90, seed, n_bands,
                                                        segmentation_fn, batch_size=32)
        assert np.abs(weights).max() > 1e-3  # a real answer, not all zeros
        np.testing.assert_allclose(res.weights[i], weights, rtol=1e-9, atol=1e-12)
        assert res.intercepts[i] == pytest.approx(intercept, rel=1e-9, abs=1e-12)
        assert res.local_predictions[i] == pytest.approx(local, rel=1e-9, abs=1e-12)


def test_gradient_shap_on_a_linear_model_is_w_times_x_minus_background(setup) -> None:
    model, xs, w_img, w_tf = setup
    bg = [x[5:6] for x in xs]  # one background sample: expected gradients are then exact
    res = gradient_shap(model, [x[:2] for x in xs], bg, nsamples=20)
    np.testing.assert_allclose(res.values["tf"][..., 0], w_tf * (xs[1][:2, :, 0] - bg[1][:, :, 0]),
                               atol=1e-4)
    np.testing.assert_allclose(res.values["image"][..., 0],
                               w_img * (xs[0][:2, ..., 0] - bg[0][:, ..., 0]), atol=1e-4)
    np.testing.assert_allclose(res.additivity_gap, 0.0, atol=1e-4)
    assert not res.additivity_exact


def test_gradient_shap_single_input_model() -> None:
    keras.utils.set_random_seed(1)
    tf_in = keras.Input((14, 1), name="tf")
    model = keras.Model(tf_in, L.Dense(1)(L.Flatten()(L.Dense(4, activation="relu")(tf_in))))
    x = np.random.default_rng(1).standard_normal((3, 14, 1)).astype(np.float32)
    res = gradient_shap(model, [x], choose_background([x], 2, seed=0), nsamples=50)
    assert res.values["tf"].shape == x.shape


def test_gradient_explainer_is_reused_across_backgrounds_and_freed_with_the_model() -> None:
    """One explainer per model, pointed at each call's background: its gradient function
    (traced once) is kept, and another background gives what a fresh explainer gives."""
    import gc
    import weakref

    import shap

    from rul_core.explain import shap_explain

    keras.utils.set_random_seed(2)
    tf_in = keras.Input((14, 1), name="tf")
    model = keras.Model(tf_in, L.Dense(1)(L.Flatten()(L.Dense(4, activation="relu")(tf_in))))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 14, 1)).astype(np.float32)
    bg_a = [rng.standard_normal((4, 14, 1)).astype(np.float32)]
    bg_b = [rng.standard_normal((4, 14, 1)).astype(np.float32)]
    first = gradient_shap(model, [x], bg_a, nsamples=30, seed=3)
    explainer = getattr(model, shap_explain._EXPLAINER_ATTR)
    again = gradient_shap(model, [x], bg_a, nsamples=30, seed=3)
    assert getattr(model, shap_explain._EXPLAINER_ATTR) is explainer  # reused
    np.testing.assert_array_equal(again.values["tf"], first.values["tf"])
    # another background (same shape): the same explainer, the values a fresh one gives
    other = gradient_shap(model, [x], bg_b, nsamples=30, seed=3)
    assert getattr(model, shap_explain._EXPLAINER_ATTR) is explainer
    fresh = shap.GradientExplainer(model, bg_b[0], batch_size=50).shap_values(
        x, nsamples=30, rseed=3)
    np.testing.assert_allclose(other.values["tf"],
                               shap_explain._squeeze_output_axis(fresh, x.ndim), rtol=1e-6)
    assert not np.allclose(other.values["tf"], first.values["tf"])
    assert other.expected_value == pytest.approx(float(np.mean(model(bg_b[0]))), rel=1e-6)
    assert shap_explain.gradient_function(model).experimental_get_tracing_count() == 1
    gone = weakref.ref(model)
    del model, explainer
    gc.collect()
    assert gone() is None  # the cached explainer does not keep the model alive


def test_kernel_shap_is_additive(setup) -> None:
    model, xs, _, w_tf = setup
    window = WindowInputs.from_list(model, xs, 3)
    res = kernel_shap_tf(model, window, xs[1][:, :, 0], nsamples=200, n_background=10)
    assert res.additivity_exact
    assert abs(res.additivity_gap[0]) < 1e-5
    # linear model, independent features: φ_f = w_f (x_f − E[bg_f])
    bg = choose_background([xs[1][:, :, 0].astype(np.float64)], 10, method="kmeans")[0]
    # (shap.kmeans weights centres by cluster size)
    import shap

    weights = shap.kmeans(xs[1][:, :, 0].astype(np.float64), 10).weights
    mean_bg = (bg * weights[:, None]).sum(axis=0) / weights.sum()
    np.testing.assert_allclose(res.values["tf"][0, :, 0], w_tf * (xs[1][3, :, 0] - mean_bg),
                               atol=1e-4)


def test_tree_shap_on_forest_head_is_exactly_additive() -> None:
    rng = np.random.default_rng(2)
    emb = rng.random((80, 5))
    y = 2 * emb[:, 0] - emb[:, 3]
    forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(emb, y)
    res = tree_shap(forest, emb[:10])
    assert res.additivity_exact
    np.testing.assert_allclose(res.additivity_gap, 0.0, atol=1e-9)
    imp = global_importance(res.values["embedding"], [f"e{i}" for i in range(5)])
    assert imp["feature"].iloc[0] == "e0"


def test_global_importance_is_mean_absolute_value() -> None:
    v = np.array([[1.0, -2.0], [-3.0, 0.0]])
    df = global_importance(v, ["a", "b"])
    assert df.to_dict("list") == {"feature": ["a", "b"], "importance": [2.0, 1.0]}


def test_choose_background_is_seeded_subset() -> None:
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    a = choose_background([x], 4, seed=3)[0]
    b = choose_background([x], 4, seed=3)[0]
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 2) and set(a[:, 0]).issubset(set(x[:, 0]))
