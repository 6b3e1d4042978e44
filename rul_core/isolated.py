"""Training in a fresh child process, so that what TensorFlow keeps after a fit stays there.

Every model trained in a process leaves memory behind after it is freed (~46 MB for the quick
CARL: TensorFlow keeps the traced training step, ``bench/train_memory.py``). A long-lived
process that trains many models — the app's server, a sweep — grows without bound.
:func:`train_isolated` runs :func:`rul_core.training.train` in a spawned child process instead:
progress events and the cancel request cross over a queue and an event, the child saves the
result as a bundle (:func:`rul_core.bundle.save_bundle`) in a temporary folder, and this process
loads it back with the bundle's safety checks (``safe_mode=True``). The child's memory goes
back to the system when it exits. Cancelling asks the child to stop at its next batch; if it
does not within ``grace_s`` it is terminated.

A spawned child re-runs the parent's ``__main__`` file unless it is guarded; under Streamlit
``__main__`` is the page script itself, so the child is started with no main module at all
(:func:`_without_main_module`): its target lives in this importable module.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue as queue_mod
import signal
import sys
import tempfile
import threading
import time
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rul_core.errors import Cancelled, RulError
from rul_core.job_progress import Estimate
from rul_core.progress import ETA_KEYS, OVERALL, CancelToken, ProgressEvent, ProgressFn, emit

#: Seconds a cancelled child may take to stop at its next check before it is terminated.
CANCEL_GRACE_S = 30.0

#: The stage of the events after training's last cancel point (saving the model in the child,
#: loading it back here): a cancel from then on is too late, and the model is kept.
FINISH = "finish"


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """Hide ``__main__`` while a child is spawned, so the child imports no main script.

    The original is put back unless something else (a new Streamlit script run) replaced the
    placeholder meanwhile.
    """
    with _MAIN_LOCK:
        original = sys.modules.get("__main__")
        placeholder = types.ModuleType("__main__")
        sys.modules["__main__"] = placeholder
        try:
            yield
        finally:
            if sys.modules.get("__main__") is placeholder and original is not None:
                sys.modules["__main__"] = original


class _EventToken(CancelToken):
    """A cancel token backed by a multiprocessing event (set by the parent)."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self._shared = event

    def cancel(self) -> None:
        """Ask the operation to stop at its next check."""
        self._shared.set()

    @property
    def cancelled(self) -> bool:
        """True once the parent (or this process) asked to stop."""
        return self._shared.is_set()


def _child(messages: Any, stop: Any, bundle_dir: str, kwargs: dict[str, Any]) -> None:
    """Child process body: train, save the bundle, report the outcome on ``messages``."""
    try:
        from rul_core.bundle import save_bundle
        from rul_core.device import import_backend_quietly
        from rul_core.training import train

        import_backend_quietly()  # each child would print TensorFlow's start-up notices again
        if kwargs["config"].uses_forest:
            import skops.io  # noqa: F401  saving the forest imports it: now, not at the end

        trained = train(progress=messages.put, cancel=_EventToken(stop), **kwargs)
        # past train()'s last cancel point: what follows only hands the model over
        emit(messages.put, FINISH, 0, 2, "training finished; saving the model")
        save_bundle(trained, bundle_dir)
    except Cancelled as exc:
        messages.put(("cancelled", str(exc), ""))
    except RulError as exc:
        messages.put(("failed", str(exc), ""))
    except BaseException as exc:  # reported to the parent, which raises it as a RulError
        messages.put(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    else:
        messages.put(("done", bundle_dir, ""))


def describe_exit(code: int | None) -> str:
    """How a child process ended, in words: its exit code, or the signal that killed it (a
    SIGKILL nobody sent on purpose is, on Linux, the kernel's out-of-memory killer)."""
    if code is None or code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    if -code == signal.SIGKILL:
        return (f"was killed ({name}; usually the kernel's out-of-memory killer: the model or "
                "the data did not fit in this machine's memory)")
    return f"was killed ({name})"


class _Report:
    """The parent's ProgressFn: the child's events and its own, with the fraction of the whole
    job done (``overall``: the child's training between this job's start and hand-over,
    :func:`rul_core.job_progress.training_plan` with ``isolated``). The child's ETA counts
    the hand-over at its reference cost; the start (no basis yet) reads 'estimating…', the
    hand-over itself shows none."""

    def __init__(self, progress: ProgressFn, config: Any, train_runs: list[Any],
                 train_kwargs: dict[str, Any]) -> None:
        from rul_core.job_progress import FINISH_S, OverallTracker, training_plan

        self.progress = progress
        plan = training_plan(config, train_runs, isolated=True, **train_kwargs)
        self.tracker = OverallTracker(plan.stages)
        self.finish_s = FINISH_S

    def __call__(self, event: ProgressEvent) -> None:
        extra = dict(event.extra)
        if event.stage in ("start", FINISH):
            extra[OVERALL] = self.tracker.update(event)
            if event.stage == "start":
                extra.update(Estimate(None).extra())
            else:
                for key in ETA_KEYS:
                    extra.pop(key, None)
        elif OVERALL in extra:
            extra[OVERALL] = self.tracker.nested(float(extra[OVERALL]))
            if isinstance(extra.get("eta_s"), (int, float)):
                extra["eta_s"] = float(extra["eta_s"]) + self.finish_s
        self.progress(ProgressEvent(event.stage, event.done, event.total, event.message, extra))


def train_isolated(
    config: Any,
    train_runs: list[Any],
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    grace_s: float = CANCEL_GRACE_S,
    poll_s: float = 0.1,
    **train_kwargs: Any,
) -> Any:
    """:func:`rul_core.training.train` in a spawned child process; returns the TrainedModel
    loaded back from the bundle the child saved (the same weights, forest, normaliser, interval
    calibration, history and metrics), checked like any bundle.

    Same arguments as ``train`` (``val_runs``, ``label_scheme``, ``epochs``, ...). Raises
    :class:`Cancelled` when ``cancel`` fires before training's last cancel point, and
    :class:`RulError` when training fails or the child dies (its exit code is named). A cancel
    after that point is too late: the events of stage :data:`FINISH` say so, the child is no
    longer stopped after ``grace_s``, and the model is returned.
    """
    from rul_core.bundle import load_bundle

    report = _Report(progress, config, train_runs, train_kwargs) if progress is not None else None
    ctx = multiprocessing.get_context("spawn")
    messages = ctx.Queue()
    stop = ctx.Event()
    with tempfile.TemporaryDirectory(prefix="rul-train-") as tmp:
        bundle_dir = str(Path(tmp) / "bundle")
        kwargs = {"config": config, "train_runs": list(train_runs), **train_kwargs}
        child = ctx.Process(target=_child, args=(messages, stop, bundle_dir, kwargs),
                            name="rul-train", daemon=True)
        with _without_main_module():
            child.start()
        outcome: tuple[str, str, str] | None = None
        cancelled_at: float | None = None
        finishing = False  # the child passed its last cancel point
        try:
            emit(report, "start", 0, 1, "starting the training process")
            while outcome is None:
                if cancel is not None and cancel.cancelled and cancelled_at is None:
                    stop.set()
                    cancelled_at = time.monotonic()
                if (cancelled_at is not None and not finishing
                        and time.monotonic() - cancelled_at > grace_s):
                    raise Cancelled("training cancelled by the user (its process was stopped)")
                try:
                    message = messages.get(timeout=poll_s)
                except queue_mod.Empty:
                    if not child.is_alive() and messages.empty():
                        raise RulError(
                            f"the training process {describe_exit(child.exitcode)} before "
                            "reporting a result") from None
                    continue
                if isinstance(message, ProgressEvent):
                    finishing = finishing or message.stage == FINISH
                    if report is not None:
                        report(message)
                else:
                    outcome = message
        finally:
            child.join(timeout=grace_s if outcome is not None else 0.0)
            if child.is_alive():
                child.terminate()
                child.join()
            messages.close()
        kind, text, detail = outcome
        if kind == "cancelled":
            raise Cancelled(text)
        if kind == "failed":
            raise RulError(text)
        if kind != "done":
            error = RulError(f"training failed: {text}")
            error.add_note(f"traceback in the training process:\n{detail}")
            raise error
        emit(report, FINISH, 1, 2, "training finished; loading the model back")
        trained = load_bundle(bundle_dir)
        emit(report, FINISH, 2, 2, "training finished; model ready")
        return trained
