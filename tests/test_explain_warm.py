"""Explain's speed-ups keep their answers: the image split (LIME on the TF features, the
deletion curves), SHAP's one-trace gradient function, and the warm-up that traces before
the first click."""

from __future__ import annotations

import gc
import threading
import weakref

import keras
import numpy as np
import pytest
from keras import layers as L  # noqa: N812

from rul_core.explain import common, compare, warm
from rul_core.explain.common import WindowInputs, image_split, input_names
from rul_core.explain.compare import CompareSettings, FeatureSpace, compare_window
from rul_core.explain.lime_explain import lime_tabular
from rul_core.explain.shap_explain import _squeeze_output_axis, gradient_function, gradient_shap
from rul_core.models import ModelConfig, build_model
from rul_core.models.build import inference_function

IMAGE = [16, 60]


def _multimodal(ablation: str = "full", seed: int = 0) -> keras.Model:
    return build_model(ModelConfig("multimodal", ablation=ablation, preset="quick", seed=seed,
                                   hparams={"image_shape": IMAGE}))


def _inputs(model: keras.Model, n: int, seed: int = 0) -> list[np.ndarray]:
    """Random inputs in the model's ranges: a sparse binary raster, standardised features."""
    rng = np.random.default_rng(seed)
    out = []
    for kt in model.inputs:
        shape = (n, *kt.shape[1:])
        out.append((rng.random(shape) > 0.85).astype(np.float32) if kt.name == "image"
                   else rng.standard_normal(shape).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def mm():
    return _multimodal()


@pytest.mark.parametrize("ablation", ["full", "mmv1", "mmv2", "mmv3"])
def test_image_split_is_the_model_cut_after_its_image_branch(ablation: str) -> None:
    """branch then rest = the model (to float32 rounding), built from the model's own layers:
    no weight copied, no Lambda layer, the image read by the branch only."""
    keras.utils.set_random_seed(1)
    model = _multimodal(ablation, seed=1)
    split = image_split(model)
    assert split is not None and image_split(model) is split  # built once per model
    assert split.others == ("tf",) and split.cut == 1
    own = {id(w) for w in model.weights}
    used = [w for part in (split.branch, split.rest) for w in part.weights]
    assert {id(w) for w in used} == own and len(used) == len(own)  # every weight, once
    layers = [*split.branch.layers, *split.rest.layers]
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in layers)
    assert "img_conv1" in {la.name for la in split.branch.layers}
    assert not {la.name for la in split.rest.layers} & {"image", "img_conv1"}
    assert {la.name for la in split.rest.layers} >= {"tf_conv1", "fusion_concat", "rul"}
    xs = _inputs(model, 40, seed=2)
    want = np.asarray(model.predict_on_batch(xs))
    got = np.asarray(split.rest.predict_on_batch([split.branch.predict_on_batch(xs[0]), xs[1]]))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_models_without_an_image_beside_other_inputs_do_not_split() -> None:
    tf_in = keras.Input((7, 1), name="tf")
    carle_like = keras.Model(tf_in, L.Dense(1)(L.Flatten()(tf_in)))
    img = keras.Input((4, 6, 1), name="image")
    image_only = keras.Model(img, L.Dense(1)(L.Flatten()(img)))
    assert image_split(carle_like) is None and image_split(image_only) is None


def test_lime_tabular_runs_the_image_branch_once_and_keeps_its_weights(mm, monkeypatch) -> None:
    """LIME on the TF features holds the image fixed: its branch runs on that one image, the
    ~900 perturbed rows only through the rest, and the weights per seed are the ones the
    whole model gives (the same draws, the same predictions to float32 rounding)."""
    xs = _inputs(mm, 30, seed=3)
    window = WindowInputs.from_list(mm, xs, 0)
    calls: list[tuple[str, int]] = []
    real = common.predict

    def spy(model, inputs, *args, **kwargs):
        calls.append((model.name, len(inputs[0])))
        return real(model, inputs, *args, **kwargs)

    monkeypatch.setattr(common, "predict", spy)
    outputs = common._batched_outputs

    def spy_branch(model, inputs, batch_size):
        calls.append((model.name, len(inputs[0])))
        return outputs(model, inputs, batch_size)

    monkeypatch.setattr(common, "_batched_outputs", spy_branch)
    split = lime_tabular(mm, window, xs[1][:, :, 0], num_samples=150, seeds=(0, 1, 2))
    branch, rest = image_split(mm).branch.name, image_split(mm).rest.name
    assert (branch, 1) in calls and sum(n for m, n in calls if m == branch) == 1
    assert sum(n for m, n in calls if m == rest) == 3 * 150 + 1
    assert not [c for c in calls if c[0] == mm.name]  # the whole model never ran

    monkeypatch.setattr(common, "image_split", lambda model: None)
    whole = lime_tabular(mm, window, xs[1][:, :, 0], num_samples=150, seeds=(0, 1, 2))
    assert np.abs(whole.weights).max() > 1e-4  # a real answer
    # (bit-identical on the development machine; float32 rounding allowed elsewhere)
    np.testing.assert_allclose(split.weights, whole.weights, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(split.intercepts, whole.intercepts, rtol=1e-6, atol=1e-9)
    assert split.prediction == pytest.approx(whole.prediction, rel=1e-6, abs=1e-9)


def test_deletion_curves_and_comparison_unchanged_by_the_split(mm, monkeypatch) -> None:
    xs = _inputs(mm, 30, seed=4)
    settings = CompareSettings(methods=("lrp",), rules="epsilon", n_bands=6, n_random=3)
    space = FeatureSpace.for_model(mm, xs, settings.n_bands)
    window = WindowInputs.from_list(mm, xs, 5)
    keep = np.random.default_rng(4).random((50, len(space.names))) > 0.5
    keep[25:, 7:] = keep[:25, 7:]  # rows 25-49: the images of rows 0-24, other TF features
    images = len(np.unique(keep[:, 7:], axis=0))
    branch_rows: list[int] = []
    outputs = common._batched_outputs
    monkeypatch.setattr(common, "_batched_outputs", lambda model, inputs, batch_size: (
        branch_rows.append(len(inputs[0])) or outputs(model, inputs, batch_size)))
    split_preds = space.predict_masked(mm, window, keep)
    assert branch_rows == [images] and images <= 25  # the image branch: once per image
    monkeypatch.setattr(common, "_batched_outputs", outputs)
    got = compare_window(mm, xs, 5, xs, settings)
    monkeypatch.setattr(common, "image_split", lambda model: None)
    monkeypatch.setattr(compare, "image_split", lambda model: None)
    whole_preds = space.predict_masked(mm, window, keep)
    np.testing.assert_allclose(whole_preds, compare.predict(mm, space.masked_inputs(
        mm, window, keep)), rtol=0, atol=0)  # the fallback is the old path
    np.testing.assert_allclose(split_preds, whole_preds, rtol=1e-5, atol=1e-6)
    want = compare_window(mm, xs, 5, xs, settings)
    assert got.prediction == pytest.approx(want.prediction, rel=1e-5, abs=1e-6)
    assert got.baseline_prediction == pytest.approx(want.baseline_prediction, rel=1e-5,
                                                     abs=1e-6)
    for method in ("lrp", "random"):
        for key in ("deletion_pred", "insertion_pred"):
            np.testing.assert_allclose(got.curves[method][key], want.curves[method][key],
                                       rtol=1e-5, atol=1e-6)


def _fresh_shap(model, x, background, nsamples, seed):
    import shap

    multi = len(model.inputs) > 1
    raw = shap.GradientExplainer(model, background if multi else background[0],
                                 batch_size=50).shap_values(x if multi else x[0],
                                                            nsamples=nsamples, rseed=seed)
    return [_squeeze_output_axis(v, a.ndim) for v, a in zip(raw if multi else [raw], x,
                                                            strict=True)]


def test_shap_gradient_is_traced_once_per_model_for_any_background_and_batch(mm) -> None:
    """shap's own gradient function was traced again for each background and batch shape;
    this one once per model, with the values a fresh shap explainer gives."""
    xs = _inputs(mm, 40, seed=5)
    x = [a[:1] for a in xs]
    runs = [(xs[0][10:20], xs[1][10:20], 30), (xs[0][20:35], xs[1][20:35], 65)]  # 50 + 15
    for img_bg, tf_bg, nsamples in runs:
        res = gradient_shap(mm, x, [img_bg, tf_bg], nsamples=nsamples, seed=7)
        want = _fresh_shap(mm, x, [img_bg, tf_bg], nsamples, 7)
        for name, w in zip(input_names(mm), want, strict=True):
            assert np.abs(w).max() > 0
            np.testing.assert_allclose(res.values[name], w, rtol=1e-4,
                                       atol=1e-6 * np.abs(w).max())
        assert res.expected_value == pytest.approx(
            float(np.mean(compare.predict(mm, [img_bg, tf_bg]))), rel=1e-6)
    assert gradient_function(mm, 0).experimental_get_tracing_count() == 1


def test_shap_differentiates_the_rul_unit_only_with_unit_0s_values() -> None:
    """RC-LSTM's second unit (its sigma) was differentiated too and thrown away."""
    keras.utils.set_random_seed(6)
    tf_in = keras.Input((14, 1), name="tf")
    hidden = L.Dense(4, activation="tanh")(L.Flatten()(tf_in))
    model = keras.Model(tf_in, L.Dense(2)(hidden))  # (mu, sigma)
    rng = np.random.default_rng(6)
    x = [rng.standard_normal((2, 14, 1)).astype(np.float32)]
    bg = [rng.standard_normal((6, 14, 1)).astype(np.float32)]
    res = gradient_shap(model, x, bg, nsamples=40, seed=2)
    np.testing.assert_allclose(res.values["tf"], _fresh_shap(model, x, bg, 40, 2)[0],
                               rtol=1e-5, atol=1e-7)
    from rul_core.explain import shap_explain

    assert list(getattr(model, shap_explain._GRADIENTS_ATTR)) == [0]


def test_shap_state_kept_on_the_model_goes_with_it() -> None:
    keras.utils.set_random_seed(2)
    tf_in = keras.Input((14, 1), name="tf")
    model = keras.Model(tf_in, L.Dense(1)(L.Flatten()(L.Dense(4, activation="relu")(tf_in))))
    x = np.random.default_rng(2).standard_normal((6, 14, 1)).astype(np.float32)
    gradient_shap(model, [x[:1]], [x[1:]], nsamples=10)
    image_split(model)
    warm.start_warm_up(model)
    warm.wait_warm_up(model)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None


def _trace_counts(model: keras.Model) -> dict[str, int]:
    """How many times each function an explanation runs has been traced (LRP: each compiled
    pass kept on the model)."""
    from rul_core.explain.lrp import engine

    split = image_split(model)
    fns = {"predict": inference_function(model), "shap": gradient_function(model, 0)}
    if split is not None:
        fns |= {"branch": inference_function(split.branch),
                "rest": inference_function(split.rest)}
    counts = {k: f.experimental_get_tracing_count() for k, f in fns.items()}
    for (rules, unit, shapes), fn in getattr(model, engine._COMPILED_ATTR, {}).items():
        counts[f"lrp {rules.name} {unit} {shapes[0][0]}"] = fn.fn.experimental_get_tracing_count()
    return counts


ONCE = {"predict": 1, "shap": 1, "branch": 1, "rest": 1}


def test_warm_up_traces_what_the_click_runs_once_and_the_click_reuses_it(monkeypatch) -> None:
    """The Explain page warms a model up in a background thread; a click that comes while it
    runs waits for what every explanation needs (not for the LRP compile: LRP runs eagerly
    until that is ready), and nothing is traced twice."""
    from rul_core.explain.lrp import engine

    model = _multimodal(seed=3)
    xs = _inputs(model, 30, seed=7)
    assert warm.start_warm_up(model, "epsilon")
    assert not warm.start_warm_up(model, "epsilon")  # once per model
    assert [t for t in threading.enumerate() if t.name == warm.THREAD_NAME]
    settings = CompareSettings(rules="epsilon", n_bands=5, lime_samples=20, lime_seeds=(0,),
                               shap_samples=10, shap_background=5, n_random=2)
    comp = compare_window(model, xs, 0, xs, settings)  # at once: waits for "ready"
    assert warm.wait_warm_up(model, timeout=0)
    assert warm.wait_warm_up(model, timeout=300, lrp=True)
    assert _trace_counts(model) == ONCE | {"lrp epsilon 0 1": 1}
    ran = []
    real = engine._CompiledRelevance.__call__
    monkeypatch.setattr(engine._CompiledRelevance, "__call__",
                        lambda self, batch: ran.append(1) or real(self, batch))
    again = compare_window(model, xs, 0, xs, settings)
    assert ran == [1]  # the click's LRP ran the warm-up's compiled pass
    assert _trace_counts(model) == ONCE | {"lrp epsilon 0 1": 1}
    assert set(comp.raw) == set(again.raw) == {"lrp", "lime", "shap"}
    for m in ("lrp", "shap"):  # the same window: the same attributions, eager LRP or not
        np.testing.assert_array_equal(again.raw[m], comp.raw[m])
    # another rule set picked later: no second compile (10-100 MB a graph), LRP eagerly
    assert not warm.start_warm_up(model, "conservative")
    other = compare_window(model, xs, 0, xs, CompareSettings(
        methods=("lrp",), rules="conservative", n_bands=5, n_random=1))
    assert ran == [1] and other.details["lrp"].rules == "conservative"
    assert _trace_counts(model) == ONCE | {"lrp epsilon 0 1": 1}


def test_warm_up_steps_and_a_failing_one_does_not_break_the_click(monkeypatch) -> None:
    model = _multimodal(seed=4)
    ready = threading.Event()
    seconds = warm.warm_up(model, "epsilon", ready)
    assert ready.is_set()
    assert list(seconds) == ["imports", "predict", "image split", "shap gradient", "lrp"]
    assert _trace_counts(model) == ONCE | {"lrp epsilon 0 1": 1}
    assert list(warm.warm_up(model)) == ["imports", "predict", "image split", "shap gradient"]
    assert _trace_counts(model) == ONCE | {"lrp epsilon 0 1": 1}

    broken = _multimodal(seed=5)

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(common, "shared_image_predictor", fail)
    assert warm.start_warm_up(broken, "epsilon")
    assert warm.wait_warm_up(broken, timeout=120, lrp=True)  # failed, and said so in the log
    monkeypatch.undo()
    assert not [k for k in _trace_counts(broken) if k.startswith("lrp")]  # stopped there
    xs = _inputs(broken, 10, seed=8)
    comp = compare_window(broken, xs, 0, xs, CompareSettings(methods=("lrp",), n_bands=5,
                                                              n_random=1))
    assert np.isfinite(comp.prediction)


def test_background_lrp_compile_gives_way_to_a_running_explanation(monkeypatch) -> None:
    """The LRP trace is Python: beside a click it slowed the click's own work. It pauses at
    its next layer while any explanation runs, goes on after, and stops when the interpreter
    exits (a daemon thread inside TensorFlow at exit aborts the process)."""
    from rul_core.errors import Cancelled
    from rul_core.explain.lrp import engine, explain_lrp

    model = _multimodal(seed=6)
    warm.warm_up(model)  # what every click needs, not LRP
    with warm.foreground():
        assert warm.start_warm_up(model, "epsilon")
        assert warm.wait_warm_up(model, timeout=60)  # ready at once: traced already
        assert not warm.wait_warm_up(model, timeout=1.5, lrp=True)  # paused meanwhile
        assert not getattr(model, engine._COMPILED_ATTR, {})
    assert warm.wait_warm_up(model, timeout=300, lrp=True)
    assert len(getattr(model, engine._COMPILED_ATTR)) == 1

    monkeypatch.setattr(warm, "_stopping", True)
    assert warm._GiveWay().cancelled
    zeros = [np.zeros((1, *kt.shape[1:]), dtype=np.float32) for kt in model.inputs]
    with pytest.raises(Cancelled):
        explain_lrp(model, zeros, rules="paper", compiled=True, cancel=warm._GiveWay())
    assert len(getattr(model, engine._COMPILED_ATTR)) == 1  # the stopped one is not kept


def test_the_lrp_compile_runs_at_a_lower_priority_in_its_own_thread_only() -> None:
    import os

    if not hasattr(os, "setpriority"):
        pytest.skip("no per-thread priority here")
    seen = {}

    def probe() -> None:
        before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        warm._lower_priority()
        seen["delta"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - before

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert seen["delta"] == min(19, mine + 10) - mine  # 10 nice levels (Linux: per thread)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
