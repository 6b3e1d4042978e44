"""Noise for robustness tests, applied to the normalised signal (SPEC §6).

Defaults are the papers': uniform on [-0.003, 0.05]; Gaussian mu 0, sigma 0.03 (multimodal
paper; CARLE uses 0.1, see ``CARLE_GAUSSIAN_SIGMA``); salt-and-pepper with 10 % of samples set
to the data's maximum (salt) and 20 % to its minimum (pepper). :class:`NoiseModel` reads "the
data" as each snapshot's channel (its own maximum and minimum, after normalisation), and each
sample is replaced independently, so the realised fractions scatter around 10 % and 20 %.

``severity`` (>= 0) scales the disturbance so a sweep gives a robustness curve:

* uniform: the noise is ``severity * U(low, high)`` (amplitude multiplier);
* gaussian: sigma becomes ``severity * sigma`` (amplitude multiplier);
* salt-and-pepper: the fractions become ``severity * salt`` and ``severity * pepper``
  (fraction multiplier, capped so that salt + pepper <= 1).

Severity 0 returns an unchanged copy. Every function is pure: it returns a new float array
and never modifies its input. ``seed`` is an int, a ``numpy.random.Generator`` or None.
The result is not clipped: downstream the ImR clips to its 64 rows, the TF features see the
noisy values as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

UNIFORM_LOW = -0.003
UNIFORM_HIGH = 0.05
GAUSSIAN_SIGMA = 0.03
CARLE_GAUSSIAN_SIGMA = 0.1
SALT_FRACTION = 0.10
PEPPER_FRACTION = 0.20

Seed = int | np.random.Generator | None


def _prepare(signal: np.ndarray, severity: float) -> np.ndarray:
    x = np.asarray(signal)
    if x.size == 0:
        raise ValueError("signal: expected a non-empty array")
    if not np.isfinite(severity) or severity < 0:
        raise ValueError(f"severity: expected a finite value >= 0, got {severity!r}")
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return np.array(x, dtype=dtype, copy=True)


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def uniform_noise(
    signal: np.ndarray,
    severity: float = 1.0,
    seed: Seed = None,
    low: float = UNIFORM_LOW,
    high: float = UNIFORM_HIGH,
) -> np.ndarray:
    """``signal + severity * U(low, high)`` sample by sample."""
    if not low < high:
        raise ValueError(f"low/high: expected low < high, got {low!r}, {high!r}")
    out = _prepare(signal, severity)
    if severity > 0:
        out += (severity * _rng(seed).uniform(low, high, size=out.shape)).astype(out.dtype)
    return out


def gaussian_noise(
    signal: np.ndarray,
    severity: float = 1.0,
    seed: Seed = None,
    sigma: float = GAUSSIAN_SIGMA,
    mean: float = 0.0,
) -> np.ndarray:
    """``signal + N(mean * severity, (severity * sigma)²)`` sample by sample."""
    if not sigma >= 0:
        raise ValueError(f"sigma: expected a value >= 0, got {sigma!r}")
    out = _prepare(signal, severity)
    if severity > 0:
        noise = _rng(seed).normal(mean * severity, severity * sigma, size=out.shape)
        out += noise.astype(out.dtype)
    return out


def salt_and_pepper(
    signal: np.ndarray,
    severity: float = 1.0,
    seed: Seed = None,
    salt: float = SALT_FRACTION,
    pepper: float = PEPPER_FRACTION,
    high: float | None = None,
    low: float | None = None,
) -> np.ndarray:
    """Replace a fraction ``severity*salt`` of samples by ``high`` and ``severity*pepper`` by
    ``low`` (defaults: the maximum and minimum of ``signal``). The samples are drawn without
    overlap; each sample is salted with probability p_s and peppered with p_p."""
    if not (0 <= salt <= 1 and 0 <= pepper <= 1):
        raise ValueError(f"salt/pepper: expected fractions in [0, 1], got {salt!r}, {pepper!r}")
    out = _prepare(signal, severity)
    p_salt, p_pepper = severity * salt, severity * pepper
    total = p_salt + p_pepper
    if total > 1:
        p_salt, p_pepper = p_salt / total, p_pepper / total
    if total == 0:
        return out
    hi = out.max() if high is None else high
    lo = out.min() if low is None else low
    u = _rng(seed).random(out.shape)
    out[u < p_salt] = hi
    out[(u >= p_salt) & (u < p_salt + p_pepper)] = lo
    return out


NOISE_KINDS: dict[str, Callable[..., np.ndarray]] = {
    "uniform": uniform_noise,
    "gaussian": gaussian_noise,
    "salt_and_pepper": salt_and_pepper,
}


@dataclass(frozen=True)
class NoiseModel:
    """A seeded noise recipe for :func:`rul_core.signal.pipeline.extract_windows`.

    Called as ``model(signal, snapshot_index)`` on normalised snapshots (k, samples,
    channels). Each (snapshot, channel) gets its own generator seeded from
    ``(seed, snapshot, channel)`` and, for salt-and-pepper, its own max/min, so the result
    does not depend on how snapshots are chunked.
    """

    kind: str
    severity: float = 1.0
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"kind: expected one of {sorted(NOISE_KINDS)}, got {self.kind!r}")

    def __call__(self, signal: np.ndarray, snapshot_index: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(signal)
        if x.ndim != 3:
            raise ValueError(f"signal: expected (snapshots, samples, channels), got {x.shape}")
        idx = np.arange(x.shape[0]) if snapshot_index is None else np.asarray(snapshot_index)
        func = NOISE_KINDS[self.kind]
        out = np.empty(x.shape, dtype=x.dtype if np.issubdtype(x.dtype, np.floating) else float)
        for i, snap in enumerate(idx):
            for ch in range(x.shape[2]):
                rng = np.random.default_rng([self.seed, int(snap), ch])
                out[i, :, ch] = func(x[i, :, ch], self.severity, rng, **self.params)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {"kind": self.kind, "severity": self.severity, "seed": self.seed,
                "params": dict(self.params)}


@dataclass(frozen=True)
class NoiseAugmentation:
    """Training augmentation: ``copies`` noisy copies of every training run, each perturbed
    by ``kind`` noise at ``severity`` (:class:`NoiseModel`) on top of the clean run.

    Copy ``c`` of a run draws its own noise, seeded from (training seed, c, run name), so runs
    and copies never share a pattern and the same seed trains the same model. Validation
    runs stay clean.
    """

    kind: str
    severity: float = 1.0
    copies: int = 1

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"kind: expected one of {sorted(NOISE_KINDS)}, got {self.kind!r}")
        if not (np.isfinite(self.severity) and self.severity > 0):
            raise ValueError(f"severity: expected a finite value > 0, got {self.severity!r}")
        if int(self.copies) != self.copies or self.copies < 1:
            raise ValueError(f"copies: expected a whole number >= 1, got {self.copies!r}")

    def noise_model(self, seed: int, copy: int, run_name: str) -> NoiseModel:
        """The noise of copy ``copy`` (1-based) of run ``run_name`` under training seed ``seed``."""
        words = [int(seed) & 0xFFFFFFFF, int(copy), *str(run_name).encode("utf-8")]
        derived = int(np.random.SeedSequence(words).generate_state(1)[0])
        return NoiseModel(self.kind, float(self.severity), derived)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (what the model card stores)."""
        return {"kind": self.kind, "severity": float(self.severity), "copies": int(self.copies)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseAugmentation:
        """Inverse of :meth:`to_dict`; raises ValueError naming the field that is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"augmentation: expected an object with kind, severity and "
                             f"copies, got {data!r}")
        unknown = set(data) - {"kind", "severity", "copies"}
        if unknown:
            raise ValueError(f"augmentation: unknown field(s) {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("augmentation: field 'kind' is missing")
        try:
            severity = float(data.get("severity", 1.0))
        except (TypeError, ValueError):
            raise ValueError(f"augmentation: field 'severity' is {data.get('severity')!r}, "
                             "expected a number > 0") from None
        return cls(str(data["kind"]), severity, data.get("copies", 1))

    def describe(self) -> str:
        """One line for model cards and logs."""
        copies = "one noisy copy" if self.copies == 1 else f"{self.copies} noisy copies"
        return (f"{copies} of each training run with {self.kind.replace('_', '-')} noise at "
                f"severity {self.severity:g}")
