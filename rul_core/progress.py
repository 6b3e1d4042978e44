"""Progress reporting and cancellation shared by every long operation.

Long functions take ``progress: ProgressFn | None`` and ``cancel: CancelToken | None``.
They call ``emit(progress, stage, done, total)`` as they go and ``check(cancel)`` between
units of work; ``check`` raises :class:`rul_core.errors.Cancelled`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rul_core.errors import Cancelled


@dataclass(frozen=True)
class ProgressEvent:
    """One progress update: ``done`` of ``total`` units of ``stage``."""

    stage: str
    done: int
    total: int
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Completed fraction in [0, 1] (1 when total is 0)."""
        return 1.0 if self.total <= 0 else min(1.0, max(0.0, self.done / self.total))


ProgressFn = Callable[[ProgressEvent], None]


class CancelToken:
    """Thread-safe cancellation flag handed to long operations."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the operation to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()


def emit(
    progress: ProgressFn | None,
    stage: str,
    done: int,
    total: int,
    message: str = "",
    **extra: Any,
) -> None:
    """Send a progress event if a callback was given."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, message, dict(extra)))


def check(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if the token was cancelled."""
    if cancel is not None and cancel.cancelled:
        raise Cancelled("operation cancelled by the user")


class TqdmProgress:
    """A ProgressFn that drives one tqdm bar per stage (used by the CLI)."""

    def __init__(self, **tqdm_kwargs: Any) -> None:
        self._bars: dict[str, Any] = {}
        self._kwargs = tqdm_kwargs
        self._t0 = time.perf_counter()

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        bar = self._bars.get(event.stage)
        if bar is None:
            bar = tqdm(total=event.total, desc=event.stage, **self._kwargs)
            self._bars[event.stage] = bar
        if event.total != bar.total:
            bar.total = event.total
        bar.n = event.done
        if event.message:
            bar.set_postfix_str(event.message, refresh=False)
        bar.refresh()

    def close(self) -> None:
        """Close every bar."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
