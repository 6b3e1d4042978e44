"""Shared helpers of the bench scripts: best-of-n timing and a one-line machine description."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The shortest of ``repeat`` timed calls, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def machine_line() -> str:
    """'machine: <CPU model>, <n> CPUs, Python x.y.z, numpy x.y.z'."""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor())
    except OSError:
        cpu = platform.processor()
    return (f"machine: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"numpy {np.__version__}")
