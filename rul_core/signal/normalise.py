"""Min–max normalisation fitted on training runs and applied clipped (SPEC §2 step 2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Normaliser:
    """Per-channel min–max scaling to [0, 1] with constants taken from *training* data.

    ``transform`` maps ``(x - minimum) / (maximum - minimum)`` and clips to [0, 1], so new
    data outside the training range lands on the borders. A channel whose training range is
    zero (a constant signal) maps every value to 0.5: there is nothing to scale by, and the
    middle of the range claims no information (no division by zero, no NaN).
    """

    minimum: tuple[float, ...]
    maximum: tuple[float, ...]
    channel_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        lo = np.asarray(self.minimum, dtype=np.float64)
        hi = np.asarray(self.maximum, dtype=np.float64)
        if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
            raise ValueError(
                "minimum/maximum: expected two equal-length non-empty per-channel lists, "
                f"got {lo.shape} and {hi.shape}"
            )
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("minimum/maximum: expected finite values")
        if np.any(hi < lo):
            raise ValueError("maximum: expected maximum >= minimum for every channel")
        if self.channel_names and len(self.channel_names) != lo.size:
            raise ValueError(
                f"channel_names: expected {lo.size} names, got {len(self.channel_names)}"
            )
        object.__setattr__(self, "minimum", tuple(float(v) for v in lo))
        object.__setattr__(self, "maximum", tuple(float(v) for v in hi))
        object.__setattr__(self, "channel_names", tuple(str(n) for n in self.channel_names))

    @property
    def n_channels(self) -> int:
        """Number of channels the constants were fitted on."""
        return len(self.minimum)

    @classmethod
    def fit(
        cls, signals: Iterable[np.ndarray], channel_names: Iterable[str] = ()
    ) -> Normaliser:
        """Fit on arrays whose last axis is the channel axis (e.g. each run's snapshots).

        Arrays are reduced one at a time (never concatenated). NaN/inf raise ValueError.
        """
        lo: np.ndarray | None = None
        hi: np.ndarray | None = None
        for i, arr in enumerate(signals):
            a = np.asarray(arr)
            if a.ndim == 0 or a.size == 0:
                raise ValueError(f"signals[{i}]: expected a non-empty array, got shape {a.shape}")
            flat = a.reshape(-1, a.shape[-1])
            a_lo = flat.min(axis=0).astype(np.float64)
            a_hi = flat.max(axis=0).astype(np.float64)
            if not (np.all(np.isfinite(a_lo)) and np.all(np.isfinite(a_hi))):
                raise ValueError(f"signals[{i}]: contains NaN or infinite values")
            if lo is None or hi is None:
                lo, hi = a_lo, a_hi
            elif a_lo.shape != lo.shape:
                raise ValueError(
                    f"signals[{i}]: expected {lo.size} channels, got {a_lo.size}"
                )
            else:
                lo, hi = np.minimum(lo, a_lo), np.maximum(hi, a_hi)
        if lo is None or hi is None:
            raise ValueError("signals: expected at least one training array")
        return cls(tuple(lo), tuple(hi), tuple(channel_names))

    def transform(self, signal: np.ndarray) -> np.ndarray:
        """Scale ``signal`` (..., channels) to float32 in [0, 1], clipped. Input untouched."""
        x = np.asarray(signal)
        if x.ndim == 0 or x.shape[-1] != self.n_channels:
            raise ValueError(
                f"signal: expected last axis of {self.n_channels} channels, got shape {x.shape}"
            )
        lo = np.asarray(self.minimum, dtype=np.float64)
        span = np.asarray(self.maximum, dtype=np.float64) - lo
        constant = span <= 0
        scale = np.where(constant, 0.0, 1.0 / np.where(constant, 1.0, span))
        offset = np.where(constant, 0.5, -lo * scale)
        out = x.astype(np.float32) * scale.astype(np.float32) + offset.astype(np.float32)
        np.clip(out, 0.0, 1.0, out=out)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready representation (stored in model cards and features.json)."""
        return {
            "kind": "minmax",
            "minimum": list(self.minimum),
            "maximum": list(self.maximum),
            "channel_names": list(self.channel_names),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normaliser:
        """Inverse of :meth:`to_dict`; raises ValueError naming the bad field."""
        if not isinstance(data, dict):
            raise ValueError(f"normaliser: expected a dict, got {type(data).__name__}")
        if data.get("kind", "minmax") != "minmax":
            raise ValueError(f"normaliser.kind: expected 'minmax', got {data.get('kind')!r}")
        for key in ("minimum", "maximum"):
            if key not in data:
                raise ValueError(f"normaliser.{key}: missing")
        return cls(
            tuple(data["minimum"]), tuple(data["maximum"]), tuple(data.get("channel_names", ()))
        )
