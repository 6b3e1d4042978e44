"""Training in a fresh child process, so that what TensorFlow keeps after a fit stays there.

Every model trained in a process leaves memory behind after it is freed (~46 MB for the quick
CARL: TensorFlow keeps the traced training step, ``bench/train_memory.py``). A long-lived
process that trains many models — the app's server, a sweep — grows without bound.
:func:`train_isolated` runs :func:`rul_core.training.train` in a spawned child process instead:
progress events and the cancel request cross over a queue and an event, the child saves the
result as a bundle (:func:`rul_core.bundle.save_bundle`) in a temporary folder, and this process
loads it back with the bundle's safety checks (``safe_mode=True``) as soon as the child says it
is written, while the child exits. The child's memory goes back to the system when it exits.
Cancelling asks the child to stop at its next batch; if it does not within ``grace_s`` it is
terminated.

The child's start (spawning it, importing TensorFlow and Keras: seconds) reports little by
itself: this process sends the ``start`` stage's event again every
:data:`rul_core.progress.HEARTBEAT_S` seconds with the seconds since the spawn until the child's
training reports, and the child says when it is up and what it imports.

A spawned child re-runs the parent's ``__main__`` file unless it is guarded; under Streamlit
``__main__`` is the page script itself, so the child is started with no main module at all
(:func:`_without_main_module`): its target lives in this importable module.
"""

from __future__ import annotations

import contextlib
import gc
import logging
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

from rul_core import progress as _progress
from rul_core.errors import Cancelled, RulError
from rul_core.progress import CancelToken, ProgressEvent, ProgressFn, emit, ticked

#: Seconds a cancelled child may take to stop at its next check before it is terminated.
CANCEL_GRACE_S = 30.0

#: The stage of the events after training's last cancel point (saving the model in the child,
#: loading it back here): a cancel from then on is too late, and the model is kept.
FINISH = "finish"

#: What the events of stage ``start`` say; their ``done`` counts its steps (spawned, TensorFlow
#: and Keras imported, the forest head's format imported) of 3.
STARTING = "starting the training process"

_log = logging.getLogger(__name__)


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
    """Child process body: train, save the bundle, report the outcome on ``messages``; then
    exit without collecting what TensorFlow built (the parent has what it needs by then)."""
    try:
        _train_and_save(messages, stop, bundle_dir, kwargs)
    finally:
        # the interpreter's last garbage collection over everything TensorFlow and Keras
        # built took about a second of the exit: the memory goes back to the system anyway
        gc.freeze()


def _train_and_save(messages: Any, stop: Any, bundle_dir: str, kwargs: dict[str, Any]) -> None:
    """Train, save the bundle, report the outcome on ``messages`` (the last message)."""
    try:
        messages.put(ProgressEvent("start", 1, 3, f"{STARTING}: importing TensorFlow and Keras"))
        from rul_core.bundle import save_bundle
        from rul_core.device import import_backend_quietly
        from rul_core.training import train

        import_backend_quietly()  # each child would print TensorFlow's start-up notices again
        if kwargs["config"].uses_forest:
            messages.put(ProgressEvent("start", 2, 3, f"{STARTING}: importing skops (the "
                                                      "forest head's format)"))
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
    :func:`rul_core.job_progress.training_plan` with ``isolated``;
    :class:`rul_core.job_progress.WrappedTraining`). The child's ETA counts the hand-over at
    its reference cost; the start (no basis yet) reads 'estimating…', the hand-over itself
    shows none. :meth:`start_event` sends the start's events with the seconds since the
    spawn, which move the fraction through the start by the time."""

    def __init__(self, progress: ProgressFn, config: Any, train_runs: list[Any],
                 train_kwargs: dict[str, Any]) -> None:
        from rul_core.job_progress import WrappedTraining, training_plan

        plan = training_plan(config, train_runs, isolated=True, **train_kwargs)
        self.wrapped = WrappedTraining(progress, plan.stages)
        self.spawned = self.sent = time.monotonic()
        self.starting: ProgressEvent | None = None  # the start's last event, until training's

    def begin(self) -> None:
        """The child was spawned: the start's first event."""
        self.spawned = self.sent = time.monotonic()
        self.starting = ProgressEvent("start", 0, 3, STARTING)
        self.wrapped(ticked(self.starting, 0.0))

    def beat(self) -> None:
        """Send the start's last event again when :data:`rul_core.progress.HEARTBEAT_S`
        seconds have passed since the last (nothing, once the child's training reports)."""
        if self.starting is not None and time.monotonic() - self.sent >= _progress.HEARTBEAT_S:
            self.start_event()

    def start_event(self, event: ProgressEvent | None = None) -> None:
        """Send ``event`` of the start (None: its last one again), with the seconds since the
        spawn."""
        event = event or self.starting
        if event is None:
            return
        self.starting, self.sent = event, time.monotonic()
        self.wrapped(ticked(event, self.sent - self.spawned))

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage == "start":
            self.start_event(event)
            return
        self.starting = None  # the child's training reports by itself now
        self.wrapped(event)


def _reap(child: Any, grace_s: float) -> None:
    """Wait for a child that handed its model over to exit (all it has left to do), and
    terminate it after ``grace_s``; an exit other than 0 is logged: the model, written whole
    before the child said so and checked on loading, is kept."""
    child.join(grace_s)
    if child.is_alive():
        _log.warning("the training process had not exited %.0f s after handing its model over; "
                     "terminating it", grace_s)
        child.terminate()
        child.join()
    elif child.exitcode != 0:
        _log.warning("the training process %s after handing its model over; the model is kept",
                     describe_exit(child.exitcode))


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

    The model is loaded as soon as the child reports its bundle written, while the child
    exits (a thread reaps it: it is terminated if it has not exited ``grace_s`` later, and an
    exit other than 0 after the hand-over is logged, the model kept), so this may return
    before the child has exited.
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
            if report is not None:
                report.begin()
            while outcome is None:
                if cancel is not None and cancel.cancelled and cancelled_at is None:
                    stop.set()
                    cancelled_at = time.monotonic()
                if (cancelled_at is not None and not finishing
                        and time.monotonic() - cancelled_at > grace_s):
                    raise Cancelled("training cancelled by the user (its process was stopped)")
                if report is not None:
                    report.beat()
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
            if outcome is not None and outcome[0] == "done":
                # the bundle is written: load it while the child exits, and reap it then
                threading.Thread(target=_reap, args=(child, grace_s), name="rul-train-reaper",
                                 daemon=True).start()
            else:
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
