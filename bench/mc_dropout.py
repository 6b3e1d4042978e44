"""MC-dropout interval speed: sampling the whole model against sampling only its head.

Usage::

    python bench/mc_dropout.py [--windows 512] [--samples 10] [--presets quick paper]
        [--models multimodal carle] [--threads 2]

For the two models whose interval is MC dropout (Multimodal-RUL, CARLE without its forest),
builds each at each preset (untrained: the cost does not depend on the weights), and times
``rul_core.models.intervals.mc_samples`` on random inputs of the model's shapes two ways:

- **whole**: the inputs tiled ``samples`` times through the whole model (the product before
  session 18);
- **head only**: the deterministic trunk once per window, then only the head (from the first
  MCDropout layer on) on the tiled trunk outputs (``mc_split``).

Best of two timed calls after one warm-up call each. Also checks, on one batch small enough
for both paths to draw the same masks, that the two give the same samples. Prints a markdown
table and the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _time(fn, repeats: int = 2) -> float:
    fn()  # warm-up: tracing, first-call allocation
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(name: str, preset: str, n_windows: int, n_samples: int) -> dict[str, object]:
    """One row: seconds whole / head only, windows per second, speed-up, samples equal."""
    from rul_core.models import ModelConfig, build_model
    from rul_core.models import intervals as iv

    config = ModelConfig(name, preset=preset, mc_samples=n_samples)
    model = build_model(config)
    rng = np.random.default_rng(0)
    x = [rng.random((n_windows, *[int(d) for d in t.shape[1:]])).astype(np.float32)
         for t in model.inputs]
    split = iv.mc_split(model)
    if split is None:
        raise SystemExit(f"{name}/{preset}: the model does not split at its first MCDropout")
    small = [a[:8] for a in x]
    fast_small = iv.mc_samples(model, small, n_samples, seed=1)
    head_only = _time(lambda: iv.mc_samples(model, x, n_samples, seed=1))
    real_split = iv.mc_split
    iv.mc_split = lambda m: None  # the pre-split path: tile the inputs through everything
    try:
        whole_small = iv.mc_samples(model, small, n_samples, seed=1)
        whole = _time(lambda: iv.mc_samples(model, x, n_samples, seed=1))
    finally:
        iv.mc_split = real_split
    return {
        "model": name, "preset": preset, "windows": n_windows, "samples": n_samples,
        "whole (s)": whole, "head only (s)": head_only,
        "windows/s whole": n_windows / whole, "windows/s head only": n_windows / head_only,
        "speed-up": whole / head_only,
        "same samples": bool(np.allclose(fast_small, whole_small, rtol=1e-4, atol=1e-5)),
    }


def main(argv: list[str] | None = None) -> int:
    """Print the table; returns 1 if the two paths disagree anywhere."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=512)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--presets", nargs="+", default=["quick", "paper"])
    ap.add_argument("--models", nargs="+", default=["multimodal", "carle"])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from phm2012 import machine_line, markdown

    rows = [bench(m, p, args.windows, args.samples) for p in args.presets for m in args.models]
    print("# MC-dropout interval: whole model against head only "
          f"({args.windows} windows, {args.samples} samples each)\n")
    print(markdown(rows, list(rows[0])))
    print(f"\n{machine_line()}")
    return 0 if all(r["same samples"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
