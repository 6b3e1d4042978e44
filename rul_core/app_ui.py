"""Streamlit glue shared by the app's pages: navigation, the session's dataset and model,
caches, figure registration for the report, and readable errors.

Pages stay thin: they lay out widgets and call these helpers plus ``rul_core`` functions.
"""

from __future__ import annotations

import importlib
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from rul_core import ui_state
from rul_core.report import FigureRegistry, plain_index
from rul_core.signal.cwt import WaveletLongerThanWindowWarning


@dataclass(frozen=True)
class PageInfo:
    """One page of the app: script path, title, icon and one-line purpose."""

    path: str
    title: str
    icon: str
    description: str


HOME = PageInfo("app.py", "Home", ":material/home:", "What the workbench is and where to start.")
PAGES = (
    PageInfo("pages/1_Data.py", "Data", ":material/database:",
             "Load bearing runs (upload, server path or demo); inspect signals, trends, labels."),
    PageInfo("pages/2_Representations.py", "Representations", ":material/image:",
             "ImR raster, scalogram with cone of influence, TF features of any window."),
    PageInfo("pages/3_Train.py", "Train", ":material/model_training:",
             "Train a model in the background with live loss curves, cross-validate it over "
             "bearings, or load a bundle."),
    PageInfo("pages/4_Evaluate.py", "Evaluate", ":material/monitoring:",
             "Predicted vs true RUL with bands, time left, PHM 2012 score, metric tables, "
             "seen vs unseen, compare models."),
    PageInfo("pages/5_Noise_lab.py", "Noise lab", ":material/graphic_eq:",
             "Add noise to a window and watch features and predictions change; severity sweeps."),
    PageInfo("pages/6_Explain.py", "Explain", ":material/lightbulb:",
             "LRP, LIME and SHAP side by side on one window; faithfulness and agreement."),
    PageInfo("pages/7_Report.py", "Report", ":material/description:",
             "Pick session figures and export PNG/SVG or a self-contained HTML report."),
)


def page_info(title: str) -> PageInfo:
    """The PageInfo with this title."""
    for p in PAGES:
        if p.title == title:
            return p
    raise KeyError(title)


def header(title: str) -> None:
    """Page title plus its one-line description (the sidebar's status is drawn by
    ``app.py`` before the page runs). Keeps the widget values of other pages first
    (:func:`keep_widget_state`); quiets repeated warnings (:func:`quiet_repeated_warnings`).
    Both also run in ``app.py``, which a page can run without; so do
    :func:`keep_keras_state` and :func:`collect_trained_model`. On pages other than Train, a
    running training is followed in the sidebar (:func:`training_in_sidebar`)."""
    keep_widget_state()
    quiet_repeated_warnings()
    keep_keras_state()
    collect_trained_model()
    training_in_sidebar(title)
    info = page_info(title)
    st.title(title)
    st.caption(info.description)


def keep_widget_state() -> None:
    """Keep the values of the widgets in :data:`ui_state.PERSISTENT_KEYS` when the user goes
    to another page: Streamlit deletes a widget's value at the end of a run that did not draw
    it, unless the value was set through ``st.session_state`` during that run, as here.

    ``app.py`` calls it before every page, and :func:`header` again at the top of each page:
    a page can run without ``app.py`` (Streamlit runs the ``pages/`` folder directly until
    ``st.navigation`` has been called once in the process; AppTest does so after the first
    run). Calling it twice in a run is harmless. Values that no longer fit their widget (the
    dataset changed) are fixed by :func:`keep_valid` and :func:`clamp_state` before it is
    drawn."""
    for key in ui_state.persistent_keys(list(st.session_state.keys())):
        st.session_state[key] = st.session_state[key]


def keep_valid(key: str, options: Any, default: Any = None) -> None:
    """Before a select widget is drawn: drop the values stored under ``key`` that are not among
    ``options`` (another dataset or model list since); a list keeps the values still offered,
    and becomes ``default`` (None: the widget's own default) when none is left; a single value
    becomes ``default``."""
    if key not in st.session_state:
        return
    stored = st.session_state[key]
    value = ui_state.valid_selection(stored, options, default)
    if value is None:
        del st.session_state[key]
    elif value != stored:
        st.session_state[key] = value


def reset_on_change(key: str, context: Any) -> None:
    """Before a widget is drawn: forget the value stored under ``key`` when ``context`` (e.g.
    the dataset's path) differs from the one it was chosen under, so that the widget starts
    from its default for the new context."""
    seen = f"_{key}_context"
    if st.session_state.get(seen, context) != context:
        st.session_state.pop(key, None)
    st.session_state[seen] = context


_SIDEBAR_SLOT = "_sidebar_status_slot"


def sidebar_status() -> None:
    """Sidebar: the active dataset and model of this session, in a slot of this run that
    :func:`refresh_sidebar_status` rewrites when the page changes either. ``app.py`` calls
    it on every run before the page, so the slot never outlives its run."""
    with st.sidebar:
        st.session_state[_SIDEBAR_SLOT] = st.empty()
    refresh_sidebar_status()


def refresh_sidebar_status() -> None:
    """Rewrite this run's sidebar status from the session's current dataset and model.

    Not during a fragment's rerun (the Train page's job panel): a fragment may not write
    outside itself, and the panel reruns the whole app once its job is collected."""
    slot = st.session_state.get(_SIDEBAR_SLOT)
    if slot is None or _in_fragment_rerun():
        return
    src = st.session_state.get("dataset_source")
    model = st.session_state.get("model_label")
    if not model:
        demos = {} if st.session_state.get("demo_models_loaded") else ui_state.demo_models()
        model = (f"none loaded yet (demo models: {len(demos)}, loaded by the first model page)"
                 if demos else "none loaded")
    with slot.container():
        st.caption(f"**Dataset:** {src['label'] if src else 'none loaded'}")
        st.caption(f"**Model:** {model}")


def _in_fragment_rerun() -> bool:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


_KERAS_WARM_UP = threading.Lock()


def warm_up_keras() -> None:
    """Import Keras in a background thread, once per server process, while the analyst is on
    the first pages: the first model page (Train, Evaluate, Noise lab, Explain) otherwise waits
    for the import (4 s on 2 cores). A page that needs Keras sooner simply waits for the
    import under way (Python's import lock)."""
    if "keras" in sys.modules or not _KERAS_WARM_UP.acquire(blocking=False):
        return  # imported, or a warm-up was started (the lock is never released)

    threading.Thread(target=importlib.import_module, args=("keras",), name="keras-warm-up",
                     daemon=True).start()


def keep_keras_state() -> None:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every script run
    (``script_runner._clean_problem_modules``, meant for apps that build a model in each
    run). This app builds none in the server (training runs in a child process; bundles are
    loaded once into a cache), so each clear only cost a full garbage collection (about
    0.6 s on 2 cores once TensorFlow is loaded) and emptied TensorFlow's kernel cache,
    between every click and the next rerun. Matplotlib figures are still closed as before.
    Idempotent; does nothing on a Streamlit without that hook."""
    from streamlit.runtime.scriptrunner import script_runner

    clean = getattr(script_runner, "_clean_problem_modules", None)
    if clean is None or getattr(clean, "_keeps_keras", False):
        return

    def _clean_matplotlib_only() -> None:
        # ``close`` is missing while another thread (the Keras warm-up) is still importing
        # pyplot: no figure can exist yet then
        close = getattr(sys.modules.get("matplotlib.pyplot"), "close", None)
        if close is not None:
            close("all")

    _clean_matplotlib_only._keeps_keras = True  # type: ignore[attr-defined]
    script_runner._clean_problem_modules = _clean_matplotlib_only


def quiet_repeated_warnings() -> None:
    """Keep the wavelet-longer-than-window warning out of the server log: the pages show that
    cone-of-influence notice themselves (Representations, the scalogram caption), and each
    rerun executes a page as a fresh module, so even Python's "once" (a per-module registry)
    would repeat it on every rerun. Idempotent."""
    warnings.filterwarnings("ignore", category=WaveletLongerThanWindowWarning)


def set_model_label(label: str, only_if_unset: bool = False) -> None:
    """Make ``label`` the session's current model (shown in the sidebar, preselected on
    Evaluate); with ``only_if_unset``, only when the session has none yet. A model trained or
    loaded by the user (not ``only_if_unset``) also joins Evaluate's kept model selection."""
    if only_if_unset and st.session_state.get("model_label"):
        return
    st.session_state["model_label"] = label
    chosen = st.session_state.get("eval_models")
    if not only_if_unset and isinstance(chosen, list) and label not in chosen:
        st.session_state["eval_models"] = [*chosen, label]  # called from Train, not Evaluate
    refresh_sidebar_status()


#: Labels of the session's models trained here and not yet saved as a bundle (removing one
#: loses it).
UNSAVED_MODELS = "unsaved_models"


def unsaved_models(labels: list[str] | None = None) -> list[str]:
    """The session's models (among ``labels``) trained here and not saved as a bundle."""
    unsaved = st.session_state.get(UNSAVED_MODELS, set())
    return [m for m in (labels if labels is not None else session_models()) if m in unsaved]


def mark_saved(trained: Any) -> None:
    """Record that the session model ``trained`` was saved as a bundle."""
    labels = [k for k, m in session_models().items() if m is trained]
    st.session_state.setdefault(UNSAVED_MODELS, set()).difference_update(labels)


def remove_session_models(labels: list[str]) -> list[str]:
    """Take ``labels`` out of this session's models (their bundles on disk and in the catalog
    stay; the pages' kept model choices drop them through :func:`keep_valid`); the current
    model moves to the first one left. Returns the labels removed."""
    models = session_models()
    removed = [label for label in labels if models.pop(label, None) is not None]
    st.session_state.setdefault(UNSAVED_MODELS, set()).difference_update(removed)
    if st.session_state.get("model_label") in removed:
        st.session_state.pop("model_label")
        if models:
            set_model_label(next(iter(models)), only_if_unset=True)
    refresh_sidebar_status()
    return removed


TRAIN_JOB = "train_job"
TRAIN_JOB_COLLECTED = "train_job_collected"


def collect_trained_model() -> str | None:
    """Put the model of the Train page's job into the session once the job is done, and make
    it the current model: on whatever page the analyst is when the training ends (``app.py``
    calls it before every page), not only when the Train page runs again. Returns the new
    model's label, None when there was nothing to collect (no job, still running, failed,
    cancelled, collected already, or a cross-validation, which the Train page saves with its
    dataset's name)."""
    job = st.session_state.get(TRAIN_JOB)
    if (job is None or job.status != "done" or st.session_state.get(TRAIN_JOB_COLLECTED)
            or ui_state.job_kind(job) != "Training" or job.result is None):
        return None
    label = ui_state.model_label(job.result)
    session_models()[label] = job.result
    st.session_state.setdefault(UNSAVED_MODELS, set()).add(label)
    set_model_label(label)
    st.session_state[TRAIN_JOB_COLLECTED] = True
    return label


def training_in_sidebar(page_title: str) -> None:
    """On the pages other than Train: while the Train page's job runs, a line in the sidebar
    follows it (re-drawn every second), and once it ends the whole page reruns, which
    collects the model (:func:`collect_trained_model`) so that this page lists it."""
    job = st.session_state.get(TRAIN_JOB)
    if page_title == "Train" or job is None or not job.running:
        return
    with st.sidebar:
        _training_progress()


@st.fragment(run_every=1.0)
def _training_progress() -> None:
    job = st.session_state.get(TRAIN_JOB)
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")  # collects the model and stops this polling
    st.caption(f"{ui_state.job_kind(job)} {job.name}: {ui_state.progress_line(job, compact=True)}")


CANCEL_NOTICE = "train_cancel_notice"


def request_cancel() -> None:
    """The Train page's Cancel button (an ``on_click``, so the click reaches the job even
    when it ended between the button's drawing and the click: the job then records a late
    cancel instead of the click being lost); what the toast should say is kept for the page."""
    job = st.session_state.get(TRAIN_JOB)
    if job is None:
        return
    st.session_state[CANCEL_NOTICE] = ui_state.cancel_notice(job)
    job.cancel()


def optional(module: str, attr: str | None = None) -> Any:
    """Import ``module`` (and get ``attr``) or return None when that part of the core does not
    exist yet, so pages can show a notice instead of crashing."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    if attr is None:
        return mod
    return getattr(mod, attr, None)


def not_available(what: str) -> None:
    """Notice for a part of the core that is not installed/implemented yet."""
    st.info(f"{what} is not available yet in this build of rul_core.")


def require_modules(what: str, *parts: str) -> list[Any]:
    """Each part (``"module"`` or ``"module:attr"``) via :func:`optional`; when any is missing,
    say that ``what`` is not available and stop the page."""
    found = [optional(*part.split(":", 1)) for part in parts]
    if any(f is None for f in found):
        not_available(what)
        st.stop()
    return found


def show_error(exc: BaseException, context: str = "") -> None:
    """A readable error message (never a traceback)."""
    msg = ui_state.friendly_error(exc)
    st.error(f"{context}: {msg}" if context else msg)


def guarded(fn: Callable[..., Any], *args: Any, context: str = "", **kwargs: Any) -> Any:
    """Call ``fn``; on failure show the error and return None."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # every failure is shown, none crashes the page
        show_error(exc, context)
        return None


# --------------------------------------------------------------------------- figures / report


def registry() -> FigureRegistry:
    """This session's figure registry (for the Report page)."""
    if "figure_registry" not in st.session_state:
        st.session_state["figure_registry"] = FigureRegistry()
    return st.session_state["figure_registry"]


def show_figure(fig: go.Figure, key: str, page: str, caption: str = "") -> None:
    """Render a plotly figure and register it for the report under ``page/key``."""
    st.plotly_chart(fig, key=f"chart-{key}", config={"displaylogo": False})
    registry().add_figure(f"{page}/{key}", fig, page=page, caption=caption)


def show_table(df: Any, key: str, title: str, page: str) -> None:
    """Render a table under its title (without a 0, 1, 2... index column) and register it
    for the report under the same title."""
    st.caption(f"**{title}**")
    st.dataframe(df, hide_index=plain_index(df) or None)
    registry().add_table(f"{page}/{key}", df, title, page=page)


# --------------------------------------------------------------------------- dataset


@st.cache_resource(max_entries=4, show_spinner="Loading dataset…")
def _load_dataset(path: str, layout: str | None, fingerprint: str) -> Any:
    """Load once per (path, layout, content fingerprint); shared read-only across sessions."""
    from rul_core.data import load_dataset

    return load_dataset(path, layout=layout, cache_dir=ui_state.uploads_dir().parent / "cache")


def set_dataset(path: str | Path, label: str, layout: str | None = None) -> None:
    """Make ``path`` the session's dataset (loaded lazily by :func:`current_dataset`)."""
    st.session_state["dataset_source"] = {"path": str(path), "layout": layout, "label": label}
    refresh_sidebar_status()


def current_dataset(default_to_demo: bool = True) -> Any:
    """The session's Dataset (the demo when nothing was chosen and it exists), or None.

    Errors are shown on the page; the choice is kept, so every page says why it has no
    dataset until another is chosen.
    """
    if optional("rul_core.data", "load_dataset") is None:
        not_available("Reading datasets")
        return None
    src = st.session_state.get("dataset_source")
    if src is None and default_to_demo:
        demo = ui_state.demo_data_path()
        if demo is not None:
            set_dataset(demo, "demo (synthetic FEMTO layout)")
            src = st.session_state["dataset_source"]
    if src is None:
        return None
    try:
        return _load_dataset(src["path"], src.get("layout"), ui_state.path_fingerprint(src["path"]))
    except Exception as exc:
        show_error(exc, f"could not load {src['label']}")
        return None



def require_dataset() -> Any:
    """The session's Dataset; otherwise a pointer to the Data page and the page stops here."""
    dataset = current_dataset()
    if dataset is None:
        st.info("Load a dataset on the Data page first.")
        st.stop()
    return dataset

def pick_run(dataset: Any, key: str, label: str = "Run (bearing)") -> Any:
    """A run selector shared by pages (remembers the choice across pages)."""
    names = dataset.run_names
    state_key = "selected_run"
    default = st.session_state.get(state_key)
    index = names.index(default) if default in names else 0
    name = st.selectbox(label, names, index=index, key=key)
    st.session_state[state_key] = name
    return dataset.run(name)


# --------------------------------------------------------------------------- models


@st.cache_resource(max_entries=6, show_spinner="Loading model…")
def _load_bundle(path: str, fingerprint: str) -> Any:
    from rul_core.bundle import load_bundle

    return load_bundle(path)


def load_model(path: str | Path) -> Any:
    """A bundle loaded once per content fingerprint (shared across sessions)."""
    return _load_bundle(str(path), ui_state.path_fingerprint(path))


def session_models() -> dict[str, Any]:
    """Models available in this session: label -> TrainedModel (trained here or loaded)."""
    if "models" not in st.session_state:
        st.session_state["models"] = {}
    models = st.session_state["models"]
    if not st.session_state.get("demo_models_loaded") and optional(
        "rul_core.bundle", "load_bundle"
    ) is not None:
        st.session_state["demo_models_loaded"] = True
        for label, path in ui_state.demo_models().items():
            try:
                models[label] = load_model(path)
                set_model_label(label, only_if_unset=True)
            except Exception as exc:
                show_error(exc, f"could not load {label}")
    return models


def pick_model(key: str, label: str = "Model") -> tuple[str, Any] | tuple[None, None]:
    """Select one of the session's models; (None, None) when there is none."""
    models = session_models()
    if not models:
        st.info("No model yet: train one on the Train page or load a bundle there.")
        return None, None
    names = list(models)
    default = st.session_state.get("model_label")
    index = names.index(default) if default in names else 0
    name = st.selectbox(label, names, index=index, key=key)
    st.session_state["model_label"] = name
    return name, models[name]


# --------------------------------------------------------------------------- cached computations


@st.cache_data(max_entries=32, show_spinner=False)
def run_stats(run_hash: str, _run: Any) -> dict[str, Any]:
    """Per-snapshot RMS/peak/kurtosis of a run, cached on its content hash."""
    return ui_state.snapshot_stats(_run.snapshots)


def label_schemes() -> list[str]:
    """Label schemes offered by rul_core.labels (empty when the module is missing)."""
    labels = optional("rul_core.labels")
    if labels is None:
        return []
    schemes = getattr(labels, "SCHEMES", None)
    if schemes:
        return list(schemes)
    return [s for s in ("linear", "piecewise", "capped", "fpt") if hasattr(labels, s)]


@st.cache_data(max_entries=64, show_spinner=False)
def run_labels(run_hash: str, scheme: str, _run: Any) -> Any:
    """Per-snapshot labels of a run under ``scheme`` (cached on content hash + scheme)."""
    from rul_core.labels import label_run

    params = {"max_rul": max(1, _run.n_snapshots // 2)} if scheme == "capped" else {}
    return label_run(_run, scheme, **params)


@st.cache_resource(max_entries=16, show_spinner=False)
def display_normaliser(run_hash: str, _run: Any, _settings: Any, settings_key: str) -> Any:
    """The display normaliser of one run (fitted on the run itself), cached on its hash."""
    from rul_core import views

    return views.fit_display_normaliser([_run], _settings)


@st.cache_data(max_entries=16, show_spinner="Computing TF features of the run…")
def tf_trend(run_hash: str, settings_key: str, _run: Any, _normaliser: Any,
             _settings: Any) -> tuple[Any, Any]:
    """TF features of every window of a run (cached on run hash + settings)."""
    from rul_core import views

    return views.run_tf_trend(_run, _normaliser, _settings)


@st.cache_data(max_entries=64, show_spinner=False)
def window_view(run_hash: str, snapshot: int, window: int, settings_key: str, _run: Any,
                _normaliser: Any, _settings: Any) -> Any:
    """One window's ImR, scalogram and TF features (cached)."""
    from rul_core import views

    return views.window_view(_run, snapshot, window, _normaliser, _settings)


@st.cache_data(max_entries=64, show_spinner=False)
def snapshot_spectrum(run_hash: str, snapshot: int, channel: int, settings_key: str, _run: Any,
                      _settings: Any) -> Any:
    """The spectrum (:class:`rul_core.signal.spectrum.SpectrumSettings`) of one channel of one
    snapshot, cached on the run's content hash, the snapshot, channel and settings."""
    from rul_core.signal.spectrum import compute_spectrum

    return compute_spectrum(_run.snapshots[int(snapshot), :, int(channel)], _run.fs, _settings)


@st.cache_data(max_entries=256, show_spinner=False)
def _spectrum_rows(run_hash: str, channel: int, rows_key: str, settings_key: str,
                   _stack: Any, _fs: float, _settings: Any) -> Any:
    """The spectra of a chunk of snapshots (one step of :func:`life_spectrum`), cached."""
    from rul_core.signal.spectrum import compute_spectrum

    return compute_spectrum(_stack, _fs, _settings)


def life_spectrum(run: Any, channel: int, settings: Any, db: bool,
                  progress: Any = None) -> Any:
    """:func:`rul_core.signal.spectrum.run_spectrum_over_life` of one channel with its chunks
    cached (on the run's content hash, the chunk's snapshots and the settings): a cached
    function cannot draw a progress bar (Streamlit replays what it draws, and a bar made
    outside it cannot be replayed), so the bar moves between the cached chunks instead."""
    from rul_core.signal.spectrum import run_spectrum_over_life

    key, skey = run_key(run), repr(settings)

    def compute(stack: Any, rows: Any, fs: float, s: Any) -> Any:
        return _spectrum_rows(key, int(channel), ui_state.content_key(rows), skey, stack, fs, s)

    return run_spectrum_over_life(run, int(channel), settings, db=db, progress=progress,
                                  compute=compute)


#: Session key of the Data page's last band suggested by the kurtogram: the run's hash, the
#: snapshots and channel it was computed on, the band (or the error met).
KURTOGRAM_PICK = "spec_kurtogram_pick"


@st.cache_data(max_entries=64, show_spinner=False)
def snapshot_kurtogram(run_hash: str, snapshots: tuple[int, ...], channel: int,
                       _run: Any) -> Any:
    """The fast kurtogram (:func:`rul_core.signal.kurtogram.kurtogram`) of one channel of one
    snapshot, or the mean of several snapshots' maps, cached on the run's content hash, the
    snapshots and the channel."""
    from rul_core.signal.kurtogram import kurtogram

    rows = [int(s) for s in snapshots]
    x = _run.snapshots[rows, :, int(channel)]
    return kurtogram(x[0] if len(rows) == 1 else x, _run.fs)


def suggest_kurtogram_band(run: Any, snapshots: tuple[int, ...], channel: int) -> None:
    """The Data page's "Suggest a band" button (an ``on_click``: it runs before the page, so
    it may set the band inputs, which Streamlit forbids once they are drawn): the kurtogram's
    best band (:func:`rul_core.signal.kurtogram.envelope_band`) into ``spec_band_lo`` and
    ``spec_band_hi``, the band-pass switched on, and the suggestion kept under
    :data:`KURTOGRAM_PICK` for the page to show its kurtogram (or the error met)."""
    from rul_core.signal.kurtogram import envelope_band

    where = {"run": run_key(run), "snapshots": tuple(int(s) for s in snapshots),
             "channel": int(channel)}
    try:
        kg = snapshot_kurtogram(where["run"], where["snapshots"], where["channel"], run)
        band, note = envelope_band(kg.best, run.fs)
    except Exception as exc:  # shown by the page, as guarded() would
        st.session_state[KURTOGRAM_PICK] = {**where, "error": ui_state.friendly_error(exc)}
        return
    st.session_state.update({"spec_bandpass": True, "spec_band_lo": band[0],
                             "spec_band_hi": band[1]})
    st.session_state[KURTOGRAM_PICK] = {**where, "band": band, "note": note}


def kurtogram_pick(run: Any, channel: int) -> dict[str, Any] | None:
    """The last band suggested (:func:`suggest_kurtogram_band`) for this run and channel,
    None when there is none (or it was for another run or channel)."""
    pick = st.session_state.get(KURTOGRAM_PICK)
    if not pick or pick["run"] != run_key(run) or pick["channel"] != int(channel):
        return None
    return pick


def show_kurtogram_pick(run: Any, channel: int, max_hz: float, page: str) -> None:
    """The kurtogram of the last band suggested for this run and channel (the snapshot or
    snapshots it was computed on, named in its title), the band outlined, described below it
    (:func:`rul_core.signal.kurtogram.describe`; ``max_hz``: the envelope spectrum's upper
    frequency) and registered for the report; or the error the suggestion met; nothing when
    there was none for this run and channel."""
    from rul_core import plots
    from rul_core.signal.kurtogram import describe

    pick = kurtogram_pick(run, channel)
    if pick is None:
        return
    if "error" in pick:
        st.error(f"kurtogram: {pick['error']}")
        return
    rows = pick["snapshots"]
    kg = snapshot_kurtogram(pick["run"], rows, int(channel), run)
    of = f"snapshot {rows[0]}" if len(rows) == 1 else f"snapshots {rows[0]}–{rows[-1]} (mean)"
    freqs, grid = kg.grid()
    best = kg.best
    fig = plots.kurtogram_figure(freqs, kg.levels, grid,
                                 (best.level, best.low, best.high, best.kurtosis),
                                 f"{run.name}: kurtogram of {of}, "
                                 f"{run.channel_names[int(channel)]}")
    about = describe(kg, pick["band"], pick["note"], max_hz)
    show_figure(fig, "kurtogram", page, caption=about)
    st.caption(about)


def model_key(label: str, trained: Any) -> str:
    """A cache key of a session model: its label and when it was trained (a model trained or
    loaded again under the same label is another model)."""
    return f"{label}|{getattr(trained, 'created', '')}"


@st.cache_data(max_entries=512, show_spinner=False)
def window_prediction(key: str, run_hash: str, snapshot: int, window: int, noise_key: str,
                      _trained: Any, _run: Any, _noise: Any = None) -> dict[str, float]:
    """:func:`rul_core.views.window_prediction` of one window, cached on the model's
    :func:`model_key`, the run's content hash, the window and ``noise_key`` (the noise
    recipe's repr; "" for none): the Noise lab predicts every model on the clean and the
    noisy window on every rerun, and the clean ones do not change with the noise. The
    prediction is deterministic (MC-dropout samples are seeded), so a cached one is the same
    numbers."""
    from rul_core import views

    return views.window_prediction(_trained, _run, snapshot, window, _noise)


def view_context(run: Any) -> tuple[Any, Any, str]:
    """(settings, normaliser, settings_key) for displaying ``run``."""
    from rul_core import views

    settings = views.ViewSettings.for_run(run)
    key = repr(settings)
    return settings, display_normaliser(run_key(run), run, settings, key), key


_RUN_KEYS: dict[int, tuple[Any, str]] = {}


def run_key(run: Any) -> str:
    """The run's content hash, computed once per Run object (runs are shared read-only)."""
    import weakref

    hit = _RUN_KEYS.get(id(run))
    if hit is not None and hit[0]() is run:
        return hit[1]
    key = run.content_hash()
    if len(_RUN_KEYS) > 256:
        _RUN_KEYS.clear()
    _RUN_KEYS[id(run)] = (weakref.ref(run), key)
    return key


def index_slider(label: str, count: int, key: str, default: int = 0, **kwargs: Any) -> int:
    """A 0..count-1 slider; a caption instead when there is only one position."""
    if count <= 1:
        st.caption(f"{label}: 0 (only one)")
        return 0
    clamp_state(key, count - 1)  # another run with fewer positions was picked
    return int(st.slider(label, 0, count - 1, min(max(default, 0), count - 1), key=key,
                         **kwargs))


_WINDOW = "selected_window"


def pick_window(label: str, count: int, key: str, where: Any = None, slider: bool = True,
                **kwargs: Any) -> int:
    """A window-over-life picker (0..count-1) shared by the pages like :func:`pick_run`: it
    starts on the window last chosen on any page (Representations, Noise lab, Explain),
    clamped to this run's windows, and remembers this page's choice for the others.
    ``slider=False``: a number box, in ``where`` (a column; default ``st``)."""
    default = min(max(int(st.session_state.get(_WINDOW, 0)), 0), max(count - 1, 0))
    if slider:
        idx = index_slider(label, count, key, default=default, **kwargs)
    else:
        clamp_state(key, count - 1)
        idx = int((where or st).number_input(label, 0, max(count - 1, 0), default, key=key,
                                             **kwargs))
    st.session_state[_WINDOW] = int(idx)
    return int(idx)


def clamp_state(key: str, upper: int) -> None:
    """Lower a number widget's stored value to ``upper`` before the widget is drawn (its
    maximum follows another widget, e.g. phase offsets <= every N-th snapshot)."""
    if st.session_state.get(key, 0) > upper:
        st.session_state[key] = upper


# --------------------------------------------------------------------------- cross-validation


@st.cache_resource(max_entries=4, show_spinner="Loading cross-validation…")
def _load_cross_validation(path: str, fingerprint: str) -> Any:
    from rul_core.crossval import load

    return load(path)


def load_cross_validation(path: str | Path) -> Any:
    """A saved cross-validation, read once per content fingerprint (shared across sessions;
    the result is only read, never changed)."""
    return _load_cross_validation(str(path), ui_state.path_fingerprint(path))


def show_cross_validation(result: Any, saved: Path | str | None, page: str,
                          key: str = "cv") -> None:
    """A cross-validation's pooled out-of-fold scores, tables, one bearing's out-of-fold
    predictions over life, and a download of all of them (:mod:`rul_core.crossval`).
    ``key`` prefixes the widget and figure keys (two results on one page)."""
    from rul_core import plots, views

    ev, summary = result.evaluation, result.summary()
    config = result.settings.get("config", {})
    where = f" — saved to {saved}" if saved else ""
    st.success(f"Cross-validated {config.get('name')}/{config.get('ablation')} over "
               f"{len(result.settings.get('runs', []))} bearings in {len(result.folds)} folds"
               f"{where}")
    level = round(100 * ev.level)
    calibrated = bool(result.settings.get("inner_val"))
    shown = {
        "rmse": ("Out-of-fold RMSE", "Of the normalised RUL, over every held-out window."),
        "mae": ("MAE", "Mean absolute error of the normalised RUL."),
        "picp": ("PICP (band coverage)",
                 f"Share of the held-out labels inside the {level} % band; "
                 + ("calibrated on each fold's validation bearing." if calibrated else
                    "uncalibrated: tick 'A validation bearing in every fold' to calibrate it.")),
        "grid_proxy": ("PHM 2012 grid proxy",
                       "Mean challenge accuracy A of the time left at 13 cuts over 50–98 % of "
                       "each held-out bearing's life (1 = perfect)."),
    }
    cols = st.columns(len(shown))
    for col, (metric, (label, about)) in zip(cols, shown.items(), strict=True):
        value = summary.get(metric)
        col.metric(label, "—" if value is None else f"{value:.3f}", help=about)
    over = "over snapshots" if ev.on == "snapshot" else "over windows"
    tables = {
        f"{key}-table": (f"Out-of-fold metrics per bearing × condition ({over})", ev.table),
        f"{key}-seen": (f"Seen vs unseen conditions ({over}; seen: a training bearing of the "
                        "same fold ran at that speed and load)", ev.seen_unseen),
        f"{key}-folds": ("Folds", result.folds),
        f"{key}-replay": ("PHM 2012 replay of each held-out bearing (mean accuracy A at the "
                      "challenge's cuts, and at 13 cuts over 50–98 % of life)", result.replay),
    }
    for table_key, (title, df) in tables.items():
        if len(df):
            show_table(df.round(4), table_key, f"Cross-validation: {title}", page)
    runs = list(dict.fromkeys(ev.snapshots["run"]))
    run = st.selectbox("Bearing", runs, key=f"{key}_run_pick")
    fold = int(ev.snapshots.loc[ev.snapshots["run"] == run, "fold"].iloc[0])
    fig = plots.rul_figure([views.rul_curve(ev.snapshots, run, f"fold {fold}'s model")],
                           f"{run}: out-of-fold prediction (fold {fold})")
    show_figure(fig, f"{key}-rul-{run}", page,
                caption=f"Predicted by the model of fold {fold}, which never saw {run}; band: "
                        f"{level} % interval.")
    st.download_button("Download the out-of-fold predictions (CSV)",
                       ev.snapshots.to_csv(index=False), file_name="crossval_predictions.csv",
                       mime="text/csv", key=f"{key}_download")
