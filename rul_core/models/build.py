"""build_model / custom_objects / embedding_model: the entry points of rul_core.models."""

from __future__ import annotations

import weakref
from typing import Any

import keras

from rul_core.models.carle import build_carle
from rul_core.models.layers import MCDropout, PositiveSigma
from rul_core.models.multimodal import build_multimodal
from rul_core.models.presets import ModelConfig
from rul_core.models.rc_lstm import (
    GaussianLoss,
    LossScheduleCallback,
    ResConvLSTM2D,
    ResConvLSTMCell,
    build_rc_lstm,
    mu_mse,
)

_CUSTOM = (
    MCDropout,
    PositiveSigma,
    ResConvLSTMCell,
    ResConvLSTM2D,
    GaussianLoss,
    LossScheduleCallback,
    mu_mse,
)


def _optimizer(hp: dict[str, Any]) -> keras.optimizers.Optimizer:
    name = str(hp.get("optimizer", "rmsprop")).lower()
    lr = float(hp["learning_rate"])
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    raise ValueError(f"hparam optimizer must be 'rmsprop' or 'adam', got {name!r}")


def make_loss(config: ModelConfig) -> Any:
    """The paper's loss: MSE for Multimodal/CARLE, :class:`GaussianLoss` (L1/L2/L3) for RC-LSTM."""
    hp = config.resolved()
    if config.name == "rc_lstm":
        return GaussianLoss(kind=str(hp["loss"]), level=float(hp["level"]))
    return "mse"


def build_model(config: ModelConfig) -> keras.Model:
    """Build and compile the configured model (seeded with ``config.seed``).

    Calls ``keras.utils.set_random_seed(config.seed)`` first, so the initial weights are a
    function of the config alone.
    """
    hp = config.resolved()
    keras.utils.set_random_seed(int(config.seed))
    if config.name == "multimodal":
        model = build_multimodal(config.ablation, hp, float(config.dropout), int(config.seed))
    elif config.name == "carle":
        model = build_carle(config.ablation, hp, float(config.dropout), int(config.seed))
    else:
        model = build_rc_lstm(hp, int(config.seed))
    metrics = [mu_mse] if config.name == "rc_lstm" else ["mae"]
    model.compile(optimizer=_optimizer(hp), loss=make_loss(config), metrics=metrics)
    return model


def custom_objects() -> dict[str, Any]:
    """Every registered rul_core object, by short and ``rul_core>`` name (for load_model)."""
    out: dict[str, Any] = {}
    for cls in _CUSTOM:
        out[cls.__name__] = cls
        out[f"rul_core>{cls.__name__}"] = cls
    return out


_EMBEDDINGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def embedding_model(model: keras.Model) -> keras.Model:
    """Sub-model from the inputs to the layer named ``embedding`` (penultimate representation).

    Built once per model (it shares the model's layers), so its compiled predict function is
    traced once, not on every forest-head prediction (0.4 s a call on a quick CARLE).
    """
    cached = _EMBEDDINGS.get(model)
    if cached is not None:
        return cached
    try:
        layer = model.get_layer("embedding")
    except ValueError as exc:
        raise ValueError(f"model {model.name!r} has no layer named 'embedding'") from exc
    sub = keras.Model(model.inputs, layer.output, name=f"{model.name}_embedding")
    _EMBEDDINGS[model] = sub
    return sub


_INFERENCE_ATTR = "_rul_inference_function"


def inference_function(model: keras.Model) -> Any:
    """``model(inputs, training=False)`` compiled once, for any batch size: ``fn(*arrays)``.

    Keras' ``predict_on_batch`` traces its predict function for the first batch's shape and
    again, relaxed, for the next one (0.5 s each on Multimodal-RUL); the app predicts one
    window (Noise lab), 256 (a run), and an explanation 1, 2, 64, 66, 256 ... at a time.
    This one is traced once, with the batch axis left open, and kept on the model (a plain
    attribute outside Keras's tracking: a reference cycle that goes with the model). Other
    Keras backends get ``predict_on_batch``.
    """
    fn = getattr(model, _INFERENCE_ATTR, None)
    if fn is not None:
        return fn
    multi = isinstance(model.input, list)  # a list-input model wants a list, even of one
    if keras.backend.backend() != "tensorflow":
        def fn(*xs: Any) -> Any:
            return model.predict_on_batch(list(xs) if multi else xs[0])
    else:
        import tensorflow as tf

        specs = [tf.TensorSpec((None, *kt.shape[1:]), tf.float32) for kt in model.inputs]

        @tf.function(input_signature=specs)
        def fn(*xs: Any) -> Any:
            return model(list(xs) if multi else xs[0], training=False)

    object.__setattr__(model, _INFERENCE_ATTR, fn)
    return fn
