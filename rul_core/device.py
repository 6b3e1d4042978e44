"""Which Keras backend and device the models compute on, and that device's peak memory.

The product pins ``tensorflow-cpu``; Keras 3 runs the same models on JAX (checked; PyTorch is
not), so a GPU is used by setting ``KERAS_BACKEND=jax`` where a CUDA build of JAX is installed
(README, "Training on a GPU"). These helpers only report; they never select a device.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile

# TensorFlow's C++ start-up notices, printed on import whatever TF_CPP_MIN_LOG_LEVEL says
# (absl logs before it is initialised): informative once, noise on every command.
STARTUP_NOTICES = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
)


def import_backend_quietly() -> None:
    """Import Keras (and its backend) with TensorFlow's start-up notices kept off stderr.

    Everything else the import writes to stderr (a real error, a warning) is passed on.
    Where stderr is not a file descriptor, or Keras is already imported, it just imports.
    """
    if "keras" in sys.modules:
        return
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        import keras
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), stderr_fd)
        try:
            import keras  # noqa: F401
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines()
                    if line.strip() and not any(n in line for n in STARTUP_NOTICES)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def _jax_device() -> object:
    import jax

    return jax.devices()[0]


def compute_device() -> str:
    """The backend and its first device, e.g. ``"jax, NVIDIA H100 80GB HBM3"`` or
    ``"tensorflow, CPU"``."""
    import keras

    backend = keras.backend.backend()
    name = "CPU"
    try:
        if backend == "jax":
            dev = _jax_device()
            if getattr(dev, "platform", "cpu") != "cpu":
                name = str(getattr(dev, "device_kind", dev))
        elif backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                name = str(tf.config.experimental.get_device_details(gpus[0]).get(
                    "device_name", "GPU"))
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                name = torch.cuda.get_device_name(0)
    except Exception:  # a broken accelerator stack still trains on the CPU: say so, don't fail
        name = "CPU (accelerator query failed)"
    return f"{backend}, {name}"


def peak_device_memory_mb() -> float:
    """Peak memory in use on the accelerator since the process started, in MiB; NaN on a CPU
    (use the process's resident memory there)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            stats = _jax_device().memory_stats() or {}
            peak = stats.get("peak_bytes_in_use")
        elif backend == "tensorflow":
            import tensorflow as tf

            if not tf.config.list_physical_devices("GPU"):
                return math.nan
            peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        elif backend == "torch":
            import torch

            peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        else:
            peak = None
    except Exception:
        peak = None
    return math.nan if peak is None else float(peak) / 2**20
