"""Hyperparameter presets and the JSON-able :class:`ModelConfig` shown in the model card.

``PRESETS[preset][model]`` is plain JSON. ``paper`` holds the published sizes (SPEC §4,
multimodal paper Table 1, CARLE paper Table 6, RC-LSTM paper Table II/III); ``quick`` is small
enough to train on the demo data on 2 CPU cores in well under two minutes.

CARLE's entry has a ``by_dataset`` block: Table 6 gives one set of filters/linear units for
XJTU-SY and one for PRONOSTIA (FEMTO); :meth:`ModelConfig.resolved` picks it by
``dataset_kind``.

Training keys (``epochs``, ``batch_size``, ``learning_rate``) are defaults for the training API.
The papers give no batch size or epoch count for Multimodal-RUL and CARLE; 32 and 100 are ours.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from rul_core.errors import InputError, RulError

MODEL_NAMES: tuple[str, ...] = ("multimodal", "carle", "rc_lstm")
ABLATIONS: dict[str, tuple[str, ...]] = {
    "multimodal": ("full", "mmv1", "mmv2", "mmv3"),
    "carle": ("full", "carl", "crle", "cale"),
    "rc_lstm": ("full",),
}
INTERVALS: tuple[str, ...] = ("mc_dropout", "ensemble", "gaussian")
DATASET_KINDS: tuple[str, ...] = ("xjtu", "femto")

_MULTIMODAL_PAPER: dict[str, Any] = {
    "image_shape": [64, 500],
    "tf_channels": [1],  # vertical channel (SPEC §4)
    "image_filters": [32, 32, 64, 64],
    "image_kernels": [5, 3, 3, 2],
    "image_dilations": [4, 3, 2, 1],
    "image_pools": [3, 3, 3, 2],
    "tf_filters": [32, 32, 64, 64],
    "tf_kernel": 2,
    "tf_dilations": [2, 2, 1, 1],
    "l2": 0.01,
    "lstm_units": [100, 64, 64],
    "attention_heads": 8,
    "attention_key_dim": 64,
    "dense_units": [64, 32],
    "forest": False,
    "forest_trees": 800,
    "forest_min_leaf": 1,  # scikit-learn's defaults, as in the authors' code
    "forest_max_features": 1.0,
    "optimizer": "rmsprop",
    "learning_rate": 1e-4,
    "loss": "mse",
    "batch_size": 32,
    "epochs": 100,
}

_CARLE_PAPER: dict[str, Any] = {
    "tf_channels": [0, 1],
    "cnn_kernels": [3, 3, 2, 2],
    "l2": 0.005,
    "attention_heads": 8,
    "attention_key_dim": 64,
    "lstm_units": [64, 64],
    "forest_trees": 800,
    "forest_min_leaf": 1,  # scikit-learn's defaults: Table 6 gives only the tree count
    "forest_max_features": 1.0,
    "optimizer": "rmsprop",
    "learning_rate": 1e-3,  # Keras RMSprop default; Table 6 gives none
    "loss": "mse",
    "batch_size": 32,
    "epochs": 100,
    "by_dataset": {
        "xjtu": {"cnn_filters": [256, 256, 128, 64], "dense_units": [128, 64, 32]},
        "femto": {"cnn_filters": [64, 64, 32, 32], "dense_units": [64, 48, 32]},
    },
}

_RC_LSTM_PAPER: dict[str, Any] = {
    "timesteps": 7,
    "window_length": 1000,
    "n_channels": 2,
    "pool": 1,  # average-pooling decimation applied in make_inputs (1 = raw signal)
    "pool_stat": "mean",  # or "mean_std": each group's standard deviation as more channels
    # k > 0: each run's signal centred and scaled by its first k snapshots (causal baseline)
    "signal_baseline_snapshots": 0,
    "res_units": 9,
    "res_filters": 256,
    "convlstm_filters": 256,
    "kernel": 3,  # 3x1 kernels
    "reduce": "flatten",  # how the last ConvLSTM map becomes a vector: flatten | pool
    "tower_units": 100,
    "loss": "L3",
    "level": 0.9,  # interval level used by the PIAW term of L3
    "sigma_epsilon": 1e-3,
    "input_bn": True,  # ours: standardise the min-max normalised input (see rc_lstm.py)
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "batch_size": 64,
    "epochs": 100,
}

#: How RC-LSTM's input pooling summarises each group of ``pool`` samples
#: (:func:`rul_core.models.inputs.pool_signals`).
POOL_STATS = ("mean", "mean_std")


def check_pool_stat(stat: Any, pool: int) -> None:
    """RC-LSTM's pooling statistic: one of :data:`POOL_STATS`, and ``mean_std`` only with
    ``pool`` >= 2 (one sample has no spread). Raises InputError (a RulError and ValueError)."""
    if stat not in POOL_STATS or (stat == "mean_std" and int(pool) < 2):
        raise InputError(f"pool_stat: expected one of {list(POOL_STATS)}, 'mean_std' with "
                         f"pool >= 2 (one sample has no spread); got {stat!r} with pool {pool}")

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        "multimodal": _MULTIMODAL_PAPER,
        "carle": _CARLE_PAPER,
        "rc_lstm": _RC_LSTM_PAPER,
    },
    "quick": {
        "multimodal": {
            **_MULTIMODAL_PAPER,
            "image_filters": [8, 8, 16, 16],
            "tf_filters": [8, 8, 16, 16],
            "lstm_units": [16, 16, 16],
            "attention_heads": 2,
            "attention_key_dim": 8,
            "dense_units": [16, 8],
            "forest_trees": 50,
            "learning_rate": 1e-3,
            "batch_size": 32,
            "epochs": 10,  # ~5 s/epoch for 640 windows on 2 CPU cores
        },
        "carle": {
            **_CARLE_PAPER,
            "attention_heads": 2,
            "attention_key_dim": 8,
            "lstm_units": [16, 16],
            "forest_trees": 50,
            "epochs": 20,
            "by_dataset": {
                "xjtu": {"cnn_filters": [32, 32, 16, 8], "dense_units": [16, 12, 8]},
                "femto": {"cnn_filters": [16, 16, 8, 8], "dense_units": [16, 12, 8]},
            },
        },
        "rc_lstm": {
            **_RC_LSTM_PAPER,
            "pool": 8,
            "res_units": 2,
            "res_filters": 8,
            "convlstm_filters": 8,
            "reduce": "pool",
            "tower_units": 16,
            # batch 16 (not the paper's 64): at quick sizes the net needs optimiser steps more
            # than epochs; FEMTO LOBO (80 snapshots/bearing, 10 epochs, 2 folds): RMSE 0.30
            # with batch 16 vs 0.49 with batch 64 (constant prediction: 0.34).
            "batch_size": 16,
            "epochs": 10,
        },
    },
}


def parse_key_values(items: Iterable[str] | None, source: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (blank items skipped), e.g. hyperparameter overrides; VALUE is read
    as JSON when it can be (numbers, lists, true), else kept as text. ``source`` (a CLI flag
    or a form field) is named in the error."""
    out: dict[str, Any] = {}
    for item in items or []:
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RulError(f"{source}: expected KEY=VALUE, got {item.strip()!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value.strip()
    return out


def _check(value: str, allowed: tuple[str, ...] | list[str], what: str) -> None:
    if value not in allowed:
        raise RulError(f"model config: {what} must be one of {list(allowed)}, got {value!r}")


@dataclass
class ModelConfig:
    """Which model, ablation and preset to build, plus overrides. Plain JSON via to_dict()."""

    name: str
    ablation: str = "full"
    preset: str = "quick"  # "paper" | "quick"
    dataset_kind: str = "femto"  # "xjtu" | "femto": picks CARLE's Table 6 set
    seed: int = 0
    # "mc_dropout" | "ensemble" | "gaussian"; rc_lstm: "gaussian" (its head) or "ensemble"
    # (n_members Gaussian heads, mixed)
    interval: str = "mc_dropout"
    n_members: int = 5
    mc_samples: int = 30
    dropout: float = 0.1
    hparams: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.name, MODEL_NAMES, "name")
        _check(self.ablation, ABLATIONS[self.name], f"ablation of {self.name!r}")
        _check(self.preset, tuple(PRESETS), "preset")
        _check(self.dataset_kind, DATASET_KINDS, "dataset_kind")
        _check(self.interval, INTERVALS, "interval")
        if self.name == "rc_lstm":
            # RC-LSTM's interval comes from its Gaussian head: one model, or a deep ensemble
            # whose equally weighted mixture gives mean and spread; MC dropout does not apply
            if self.interval != "ensemble":
                self.interval = "gaussian"
        elif self.interval == "gaussian":
            raise RulError(
                f"model config: interval 'gaussian' needs a Gaussian head (rc_lstm); "
                f"{self.name!r} takes 'mc_dropout' or 'ensemble'"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise RulError(f"model config: dropout must be in [0, 1), got {self.dropout}")
        if int(self.n_members) < 1 or int(self.mc_samples) < 2:
            raise RulError("model config: n_members must be >= 1 and mc_samples >= 2")
        known = set(self._base())
        unknown = sorted(set(self.hparams) - known)
        if unknown:
            raise RulError(
                f"model config: unknown hparams {unknown} for {self.name!r}; known: {sorted(known)}"
            )
        if self.name == "rc_lstm":
            hp = self.resolved()
            check_pool_stat(hp["pool_stat"], hp["pool"])
            k = hp["signal_baseline_snapshots"]
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise RulError(f"model config: signal_baseline_snapshots must be a whole "
                               f"number >= 0 (0: off), got {k!r}")

    def _base(self) -> dict[str, Any]:
        base = copy.deepcopy(PRESETS[self.preset][self.name])
        by_dataset = base.pop("by_dataset", None)
        if by_dataset is not None:
            base.update(by_dataset[self.dataset_kind])
        return base

    def resolved(self) -> dict[str, Any]:
        """The full hyperparameter dict: preset (dataset-specific part applied) + overrides."""
        out = self._base()
        out.update(copy.deepcopy(self.hparams))
        return out

    @property
    def uses_forest(self) -> bool:
        """True if a random forest gives the final RUL (multimodal: optional; CARLE: not CARL)."""
        if self.name == "multimodal":
            return bool(self.resolved()["forest"])
        if self.name == "carle":
            return self.ablation != "carl"
        return False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        d = asdict(self)
        json.dumps(d)  # fail early if an override is not JSON
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys and bad names raise RulError."""
        if not isinstance(d, dict):
            raise RulError(f"model config: expected a JSON object, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        extra = sorted(set(d) - names)
        if extra:
            raise RulError(f"model config: unknown keys {extra}; expected some of {sorted(names)}")
        if "name" not in d:
            raise RulError("model config: missing key 'name'")
        return cls(**copy.deepcopy(d))

    def member(self, i: int) -> ModelConfig:
        """Config of deep-ensemble member ``i`` (seed + i)."""
        d = self.to_dict()
        d["seed"] = int(self.seed) + int(i)
        return ModelConfig.from_dict(d)


def describe(config: ModelConfig) -> str:
    """Markdown table of the resolved hyperparameters (for the model card)."""
    rows = [
        ("model", config.name),
        ("ablation", config.ablation),
        ("preset", config.preset),
        ("dataset kind", config.dataset_kind),
        ("seed", config.seed),
        ("interval", config.interval),
        ("forest head", config.uses_forest),
    ]
    if config.interval == "ensemble":
        rows.append(("ensemble members", config.n_members))
    if config.interval == "mc_dropout":
        rows.append(("MC samples", config.mc_samples))
    if config.name != "rc_lstm":
        rows.append(("dropout", config.dropout))
    rows += sorted(config.resolved().items())
    lines = ["| hyperparameter | value |", "|---|---|"]
    lines += [f"| {k} | {json.dumps(v) if not isinstance(v, str) else v} |" for k, v in rows]
    return "\n".join(lines)
