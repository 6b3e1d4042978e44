"""The three published models (Multimodal-RUL, CARLE, RC-LSTM), their layers and heads.

Public API::

    ModelConfig, build_model, make_inputs, custom_objects, embedding_model,
    MODEL_NAMES, ABLATIONS, PRESETS, predict_point_and_interval, describe
"""

from rul_core.models.build import build_model, custom_objects, embedding_model, make_loss
from rul_core.models.heads import TRUSTED_TYPES, ForestHead, fit_forest_head
from rul_core.models.inputs import make_inputs
from rul_core.models.intervals import mc_samples, predict_point_and_interval, set_mc_dropout
from rul_core.models.layers import MCDropout, PositiveSigma
from rul_core.models.presets import ABLATIONS, MODEL_NAMES, PRESETS, ModelConfig, describe
from rul_core.models.rc_lstm import (
    GaussianLoss,
    LossScheduleCallback,
    ResConvLSTM2D,
    ResConvLSTMCell,
    schedule_weights,
)

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
