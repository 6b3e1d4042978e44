"""Trace what explaining a model runs before the first "Explain" click.

An explanation calls compiled functions of its model: the prediction function
(:func:`rul_core.models.build.inference_function`, for LIME, the deletion curves and SHAP's
expected value), the two halves of the image split (:func:`rul_core.explain.common.image_split`:
LIME on the TF features, the deletion curves), SHAP's gradient function
(:func:`rul_core.explain.shap_explain.gradient_function`), and LRP's eager pass, whose first
run creates every TensorFlow kernel it uses (and the first imports shap, 0.5 s). Each is
traced once per model and kept on it,
so only the first explanation of a loaded model paid for them: about 1.4 s of the demo
CARL's first click on 2 cores, 2.5 s of Multimodal-RUL's, against 0.4 s and 2.4 s for
every click after.

:func:`warm_up` runs each of them once on one window of zeros. :func:`start_warm_up` does
that in a background thread, once per model, and the Explain page starts it after it has
been drawn (``rul_core.views.warm_explain``), so the first paint does not wait and the
analyst's first click finds the functions traced. An explanation of a model waits for a
warm-up of that model still under way (:func:`wait_warm_up`, called by
:func:`rul_core.explain.compare.compare_window`) instead of tracing the same functions beside
it: a click that comes at once costs what it cost before, one that comes later less.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

import numpy as np

_LOG = logging.getLogger(__name__)
_THREADS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
THREAD_NAME = "explain-warm-up"


def warm_up(model: Any, rules: str | None = None) -> dict[str, float]:
    """Trace (or first run) everything an explanation of ``model`` runs, on one window of
    zeros: the explainers' imports, the prediction function, the image split's halves (if
    the model splits), SHAP's gradient function of unit 0 and LRP with ``rules`` (None: no
    LRP pass). Returns the seconds each step took; a step already done costs only its
    call."""
    from rul_core.explain.common import input_names, predict, shared_image_predictor
    from rul_core.explain.shap_explain import gradient_function

    names = input_names(model)
    zeros = [np.zeros((1, *kt.shape[1:]), dtype=np.float32) for kt in model.inputs]
    seconds: dict[str, float] = {}

    def step(name: str, fn: Any) -> None:
        t0 = time.perf_counter()
        fn()
        seconds[name] = time.perf_counter() - t0

    step("imports", _import_explainers)
    step("predict", lambda: predict(model, zeros))
    if "image" in names:
        others = {n: z for n, z in zip(names, zeros, strict=True) if n != "image"}
        step("image split", lambda: shared_image_predictor(
            model, zeros[names.index("image")])(np.zeros(1, dtype=np.intp), others))
    step("shap gradient", lambda: gradient_function(model, 0)(zeros))
    if rules is not None:
        from rul_core.explain.lrp import explain_lrp

        step("lrp", lambda: explain_lrp(model, zeros, rules=rules))
    return seconds


def _import_explainers() -> None:
    """shap (0.5 s: numba, its plots) and lime, imported by the first explanation."""
    import importlib

    for name in ("shap", "lime.lime_base", "lime.lime_tabular"):
        importlib.import_module(name)


def _run(model: Any, rules: str | None) -> None:
    try:
        seconds = warm_up(model, rules)
        _LOG.debug("explain warm-up of %s: %s", getattr(model, "name", "?"), seconds)
    except Exception:  # an optimisation only: the click traces (and reports) for itself
        _LOG.warning("explain warm-up of %s failed", getattr(model, "name", "?"),
                     exc_info=True)


def start_warm_up(model: Any, rules: str | None = None) -> bool:
    """Run :func:`warm_up` in a daemon thread, once per model (while the model lives);
    True when this call started it. Returns at once."""
    with _LOCK:
        if model in _THREADS:
            return False
        thread = threading.Thread(target=_run, args=(model, rules), name=THREAD_NAME,
                                  daemon=True)
        _THREADS[model] = thread
        thread.start()
    return True


def wait_warm_up(model: Any, timeout: float | None = None) -> bool:
    """Wait for a warm-up of ``model`` under way (not from inside it); True when none is
    running any more."""
    with _LOCK:
        thread = _THREADS.get(model)
    if thread is None or thread is threading.current_thread():
        return True
    thread.join(timeout)
    return not thread.is_alive()
