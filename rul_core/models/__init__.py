"""The three published models (Multimodal-RUL, CARLE, RC-LSTM), their layers and heads.

Public API::

    ModelConfig, build_model, make_inputs, custom_objects, embedding_model,
    MODEL_NAMES, ABLATIONS, PRESETS, predict_point_and_interval, describe
"""

import importlib
from typing import Any

from rul_core.models.presets import ABLATIONS, MODEL_NAMES, PRESETS, ModelConfig, describe

# Everything else needs Keras/TensorFlow (seconds to import): loaded on first use, so the
# CLI's --help and the data-only commands start fast.
_LAZY = {
    "build_model": "build", "custom_objects": "build", "embedding_model": "build",
    "make_loss": "build", "TRUSTED_TYPES": "heads", "ForestHead": "heads",
    "fit_forest_head": "heads", "make_inputs": "inputs", "mc_samples": "intervals",
    "predict_point_and_interval": "intervals", "set_mc_dropout": "intervals",
    "MCDropout": "layers", "PositiveSigma": "layers", "GaussianLoss": "rc_lstm",
    "LossScheduleCallback": "rc_lstm", "ResConvLSTM2D": "rc_lstm",
    "ResConvLSTMCell": "rc_lstm", "schedule_weights": "rc_lstm",
}


def __getattr__(name: str) -> Any:
    """Import the Keras-backed part of the public API on first access (PEP 562)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f"rul_core.models.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rul_core.models' has no attribute {name!r}")


__all__ = [
    "ABLATIONS",
    "MODEL_NAMES",
    "PRESETS",
    "TRUSTED_TYPES",
    "ForestHead",
    "GaussianLoss",
    "LossScheduleCallback",
    "MCDropout",
    "ModelConfig",
    "PositiveSigma",
    "ResConvLSTM2D",
    "ResConvLSTMCell",
    "build_model",
    "custom_objects",
    "describe",
    "embedding_model",
    "fit_forest_head",
    "make_inputs",
    "make_loss",
    "mc_samples",
    "predict_point_and_interval",
    "schedule_weights",
    "set_mc_dropout",
]
