"""Resident memory after repeated trainings: is it ours or TensorFlow's?

Builds and trains a fresh model ``--repeats`` times in one process (16 batches of 32 each),
freeing it every time (``clear_session``, ``gc.collect``, glibc ``malloc_trim``), and prints the
resident size after each round and the mean growth per model. Models: bare Keras stacks (one
Dense, one LSTM, one MultiHeadAttention layer) and the quick CARL from ``rul_core``. If the bare
stacks grow too, the growth is TensorFlow keeping traced training functions, not a reference
held by this package (the model objects are verified to be freed).

The last two rows do what the app does per model: ``rul_core.training.train`` on two small
synthetic runs (one epoch) and ``predict_run`` on a third, once in this process and once with
``rul_core.isolated.train_isolated`` (trained in a child process, loaded back from its bundle,
predicted here); RSS is this process's.

    python bench/train_memory.py --repeats 6
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rul_core  # noqa: F401  (sets the Keras backend and TF log level)


def rss_mb() -> float:
    """This process's resident set size (MB)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bare(kind: str) -> Callable[[], object]:
    """A factory of a one-layer Keras regressor on (14, 1) inputs."""
    import keras

    def make() -> object:
        inp = keras.Input((14, 1))
        if kind == "dense":
            h = keras.layers.Flatten()(keras.layers.Dense(8)(inp))
        elif kind == "lstm":
            h = keras.layers.LSTM(8)(inp)
        else:
            h = keras.layers.Flatten()(keras.layers.MultiHeadAttention(2, 4)(inp, inp))
        model = keras.Model(inp, keras.layers.Dense(1)(h))
        model.compile("rmsprop", "mse")
        return model

    return make


def carl() -> object:
    """The quick CARL (CARLE without its forest) for FEMTO."""
    from rul_core.models import ModelConfig, build_model

    return build_model(ModelConfig("carle", ablation="carl", preset="quick"))


def release(ref: weakref.ref) -> bool:
    """Clear Keras's session, collect garbage and return freed heap to the OS; True when the
    object behind ``ref`` (already ``del``-ed by the caller) is gone."""
    import keras

    keras.backend.clear_session()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return ref() is None


def measure(make: Callable[[], object], repeats: int) -> tuple[list[float], bool]:
    """RSS after each train-and-free round, and whether every model object was freed."""
    rng = np.random.default_rng(0)
    x = rng.random((512, 14, 1), dtype=np.float32)
    y = rng.random(512, dtype=np.float32)
    sizes, freed = [], True
    for _ in range(repeats):
        model = make()
        for b in range(0, 512, 32):
            model.train_on_batch(x[b : b + 32], y[b : b + 32])
        ref = weakref.ref(model)
        del model
        freed = release(ref) and freed
        sizes.append(rss_mb())
    return sizes, freed


def measure_workflow(isolated: bool, repeats: int) -> tuple[list[float], bool]:
    """RSS after each train-predict-free round of the app's workflow (quick CARL)."""
    from rul_core.data.synthetic import synth_run
    from rul_core.isolated import train_isolated
    from rul_core.models import ModelConfig
    from rul_core.training import predict_run, train

    runs = [synth_run(f"Bearing1_{i}", n_snapshots=8, seed=i) for i in (1, 2, 3)]
    fit = train_isolated if isolated else train
    sizes, freed = [], True
    for _ in range(repeats):
        trained = fit(ModelConfig("carle", ablation="carl", preset="quick"), runs[:2], epochs=1)
        predict_run(trained, runs[2])
        ref = weakref.ref(trained.models[0])
        del trained
        freed = release(ref) and freed
        sizes.append(rss_mb())
    return sizes, freed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=6)
    args = p.parse_args(argv)
    print("| model | RSS after each round (MB) | growth per model (MB) | models freed |")
    print("|---|---|---|---|")
    for name, make in [("Dense", bare("dense")), ("LSTM", bare("lstm")),
                       ("MultiHeadAttention", bare("mha")), ("CARL quick (rul_core)", carl),
                       ("CARL quick: train + predict_run here", False),
                       ("CARL quick: train_isolated (child) + predict_run here", True)]:
        if isinstance(make, bool):
            sizes, freed = measure_workflow(make, args.repeats)
        else:
            sizes, freed = measure(make, args.repeats)
        growth = (sizes[-1] - sizes[0]) / max(1, len(sizes) - 1)
        print(f"| {name} | {' '.join(f'{s:.0f}' for s in sizes)} | {growth:.1f} | {freed} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
