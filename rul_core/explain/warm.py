"""Trace what explaining a model runs before the first "Explain" click.

An explanation calls compiled functions of its model: the prediction function
(:func:`rul_core.models.build.inference_function`: LIME, the deletion curves, SHAP's expected
value), the two halves of the image split (:func:`rul_core.explain.common.image_split`: LIME on
the TF features, the deletion curves) and SHAP's gradient function
(:func:`rul_core.explain.shap_explain.gradient_function`); its first call imports shap (0.5 s).
Each is traced once per model and kept on it, so the first explanation of a loaded model paid
for all of them: 1.4 s more than the next one on the demo CARL, 2.5 s on Multimodal-RUL (2
cores). LRP runs eagerly (0.2-0.5 s a window, Python dispatching thousands of small ops) unless
its compiled pass is ready (:func:`rul_core.explain.lrp.explain_lrp`, ``compiled``), which
takes 1.5-5 s to trace and then 0.006-0.02 s a window.

:func:`warm_up` does all of this on one window of zeros. :func:`start_warm_up` runs it in a
background thread, once per model (LRP compiled with the rule set picked when the page
opened), and the Explain page starts it after it has been drawn
(``rul_core.views.warm_explain``), so the first paint does not wait. The steps every click
needs come first; once they are done the thread marks the model *ready* and goes on to
compile LRP. :func:`rul_core.explain.compare.compare_window` waits for *ready*
(:func:`wait_warm_up`) rather than tracing the same functions beside the thread; it does not
wait for the LRP compile, and runs LRP eagerly until that is done, while the compile pauses
(:func:`foreground`): the trace is Python, and beside a click it slowed the click's own
Python-bound work (eager LRP fourfold) on 2 cores.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rul_core.progress import Cancelled, CancelToken

_LOG = logging.getLogger(__name__)
THREAD_NAME = "explain-warm-up"


@dataclass
class _Warming:
    """One model's warm-up: ``ready`` once what every explanation needs is traced."""

    thread: threading.Thread
    ready: threading.Event


_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()

# explanations running now (any model, any session): a background LRP trace waits for none
_FOREGROUND = threading.Condition()
_running = 0
_stopping = False  # the interpreter is exiting: background LRP traces stop at their next layer


@contextlib.contextmanager
def foreground() -> Iterator[None]:
    """Mark an explanation as running: background LRP traces pause at their next layer until
    none runs. A trace is Python: beside a click on 2 cores the two fought for the
    interpreter, and the click's eager LRP took four times as long."""
    global _running
    with _FOREGROUND:
        _running += 1
    try:
        yield
    finally:
        with _FOREGROUND:
            _running -= 1
            _FOREGROUND.notify_all()


class _GiveWay(CancelToken):
    """A token that cancels only when the interpreter exits (:func:`_stop_at_exit`); checking
    it waits while an explanation runs (:func:`foreground`), so a background trace gives way
    to the analyst's click."""

    @property
    def cancelled(self) -> bool:
        with _FOREGROUND:
            _FOREGROUND.wait_for(lambda: _running == 0 or _stopping)
            return _stopping


def _stop_at_exit(timeout: float = 30.0) -> None:
    """At interpreter exit: stop background LRP traces at their next layer and wait for the
    warm-up threads. A daemon thread still inside TensorFlow when the interpreter finalises
    aborts the process ("terminate called ... exception not rethrown")."""
    global _stopping
    with _FOREGROUND:
        _stopping = True
        _FOREGROUND.notify_all()
    with _LOCK:
        threads = [state.thread for state in list(_MODELS.values())]
    deadline = time.monotonic() + timeout
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(_stop_at_exit)


def _import_explainers() -> None:
    """shap (0.5 s: numba, its plots) and lime, imported by the first explanation."""
    for name in ("shap", "lime.lime_base", "lime.lime_tabular"):
        importlib.import_module(name)


def warm_up(model: Any, rules: str | None = None,
            ready: threading.Event | None = None) -> dict[str, float]:
    """Trace (or first run) everything an explanation of ``model`` runs, on one window of
    zeros: the explainers' imports, the prediction function, the image split's halves (if
    the model splits) and SHAP's gradient function of unit 0; then sets ``ready`` (if
    given) and compiles LRP with ``rules`` for one window (None: no LRP). Returns the seconds
    each step took; a step already done costs only its call."""
    from rul_core.explain.common import input_names, predict, shared_image_predictor
    from rul_core.explain.shap_explain import gradient_function

    names = input_names(model)
    zeros = [np.zeros((1, *kt.shape[1:]), dtype=np.float32) for kt in model.inputs]
    seconds: dict[str, float] = {}

    def step(name: str, fn: Any) -> None:
        t0 = time.perf_counter()
        fn()
        seconds[name] = time.perf_counter() - t0

    try:
        step("imports", _import_explainers)
        step("predict", lambda: predict(model, zeros))
        if "image" in names:
            others = {n: z for n, z in zip(names, zeros, strict=True) if n != "image"}
            step("image split", lambda: shared_image_predictor(
                model, zeros[names.index("image")])(np.zeros(1, dtype=np.intp), others))
        step("shap gradient", lambda: gradient_function(model, 0)(zeros))
    finally:
        if ready is not None:
            ready.set()
    if rules is not None:
        from rul_core.explain.lrp import explain_lrp

        if threading.current_thread().name == THREAD_NAME:  # not a caller's own thread
            _lower_priority()
        step("lrp", lambda: explain_lrp(model, zeros, rules=rules, compiled=True,
                                        cancel=_GiveWay()))
    return seconds


def _lower_priority() -> None:
    """Lower this thread's CPU priority by 10 nice levels (Linux keeps one per thread): the
    LRP compile's last 1-3 s (building the graph's executor in C++) cannot pause for a click,
    but the click's threads then get most of the cores."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: as is
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + 10))


def _run(model: Any, rules: str | None, ready: threading.Event) -> None:
    try:
        seconds = warm_up(model, rules, ready)
        _LOG.debug("explain warm-up of %s: %s", getattr(model, "name", "?"), seconds)
    except Cancelled:  # the interpreter is exiting
        pass
    except Exception:  # an optimisation only: the click traces (and reports) for itself
        _LOG.warning("explain warm-up of %s failed", getattr(model, "name", "?"),
                     exc_info=True)


def start_warm_up(model: Any, rules: str | None = None) -> bool:
    """Run :func:`warm_up` (LRP compiled with ``rules``) in a daemon thread, once per model
    (while the model lives); True when this call started it. Returns at once. Other rule
    sets picked later run LRP eagerly: a compiled pass holds 10-100 MB (the demo RC-LSTM's,
    CARL's and Multimodal-RUL's; RSS after the trace and first run)."""
    with _LOCK:
        if model in _MODELS:
            return False
        ready = threading.Event()
        thread = threading.Thread(target=_run, args=(model, rules, ready), name=THREAD_NAME,
                                  daemon=True)
        _MODELS[model] = _Warming(thread, ready)
        thread.start()
    return True


def wait_warm_up(model: Any, timeout: float | None = None, lrp: bool = False) -> bool:
    """Wait until a warm-up of ``model`` has traced what every explanation needs (``lrp``:
    until it is done, the LRP compile included); True when it has (or none was started)."""
    with _LOCK:
        state = _MODELS.get(model)
    if state is None:
        return True
    if not lrp:
        return state.ready.wait(timeout)
    if state.thread is not threading.current_thread():
        state.thread.join(timeout)
    return not state.thread.is_alive()
