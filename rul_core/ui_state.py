"""Non-UI helpers for the app: background jobs with progress and cancellation, storing uploads
in the workspace, locating the demo assets, per-snapshot summary statistics and readable
error messages. Nothing here imports Streamlit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rul_core.config import UPLOAD_RECORD, workspace_dir
from rul_core.errors import Cancelled, RulError
from rul_core.progress import CancelToken, ProgressEvent
from rul_core.signal.noise import NOISE_KINDS, NoiseAugmentation

REPO_ROOT = Path(__file__).resolve().parent.parent
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


# --------------------------------------------------------------------------- background jobs


@dataclass
class Job:
    """A long operation running in a daemon thread.

    ``target(progress, cancel)`` is called in the thread; its return value becomes ``result``.
    The page polls ``status``, ``last`` (the latest :class:`ProgressEvent`, received at
    ``last_time``) and ``events``; ``cancel()`` asks the operation to stop at its next
    ``check`` and records when (``cancel_requested``), even once the job has ended: a job
    ``done`` with a cancel requested finished before the cancel could stop it
    (:attr:`late_cancel`). Nothing blocks the caller.
    """

    name: str
    target: Callable[..., Any]
    status: str = "pending"  # pending | running | done | failed | cancelled
    result: Any = None
    error: str = ""
    detail: str = ""
    started: float = 0.0
    finished: float = 0.0
    last: ProgressEvent | None = None
    last_time: float = 0.0
    cancel_requested: float = 0.0
    events: list[ProgressEvent] = field(default_factory=list)
    token: CancelToken = field(default_factory=CancelToken)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    max_events: int = 5000

    def start(self) -> Job:
        """Start the thread (once)."""
        if self._thread is not None:
            return self
        self.status = "running"
        self.started = time.time()
        self._thread = threading.Thread(target=self._run, name=f"job-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _progress(self, event: ProgressEvent) -> None:
        with self._lock:
            self.last, self.last_time = event, time.time()
            self.events.append(event)
            if len(self.events) > self.max_events:
                del self.events[: len(self.events) - self.max_events]

    def _run(self) -> None:
        try:
            result = self.target(progress=self._progress, cancel=self.token)
        except Cancelled:
            self.status = "cancelled"
            self.error = "cancelled by the user"
        except RulError as exc:
            self.status = "failed"
            self.error = str(exc)
        except Exception as exc:  # shown to the user as one line; detail kept for the log
            self.status = "failed"
            self.error = friendly_error(exc)
            self.detail = traceback.format_exc()
        else:
            self.result = result
            self.status = "done"
        finally:
            self.finished = time.time()

    def cancel(self) -> None:
        """Ask the job to stop (and remember when first asked)."""
        if not self.cancel_requested:
            self.cancel_requested = time.time()
        self.token.cancel()

    @property
    def late_cancel(self) -> bool:
        """True when a cancel was asked for but the job finished anyway: it came after the
        operation's last cancel point (or after its end), and the result is kept."""
        return self.status == "done" and bool(self.cancel_requested)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (tests and CLI only; pages poll instead)."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self.status in ("pending", "running")

    @property
    def elapsed(self) -> float:
        """Seconds since start (until finish)."""
        if not self.started:
            return 0.0
        return (self.finished or time.time()) - self.started

    def snapshot_events(self, stage: str | None = None) -> list[ProgressEvent]:
        """A copy of the events so far (optionally of one stage)."""
        with self._lock:
            evs = list(self.events)
        return [e for e in evs if stage is None or e.stage == stage]

    def epoch_history(self) -> dict[str, list[float]]:
        """Per-epoch losses from the training events (``extra`` with ``epoch_end``):
        ``loss``/``val_loss``, suffixed with the member for deep ensembles and with the fold
        for a cross-validation."""
        hist: dict[str, list[float]] = {}
        for e in self.snapshot_events():
            if not e.extra.get("epoch_end"):
                continue
            member = int(e.extra.get("member", 0) or 0)
            fold = e.extra.get("fold")
            tags = ([f"fold {fold}"] if fold else []) + ([f"member {member + 1}"] if member
                                                         else [])
            for k in ("loss", "val_loss"):
                v = e.extra.get(k)
                if isinstance(v, (int, float)) and np.isfinite(v):
                    key = f"{k} ({', '.join(tags)})" if tags else k
                    hist.setdefault(key, []).append(float(v))
        return hist


def start_job(name: str, target: Callable[..., Any]) -> Job:
    """Create and start a :class:`Job`."""
    return Job(name=name, target=target).start()


# --------------------------------------------------------------------------- uploads


def uploads_dir(root: Path | None = None) -> Path:
    """Folder holding uploaded datasets: <workspace>/uploads."""
    return (root or workspace_dir()) / "uploads"


def _safe_relpath(name: str) -> Path:
    """An uploaded file's relative path with no absolute part, drive or '..'."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if not parts:
        raise RulError(f"uploaded file name {name!r} is empty after removing unsafe parts")
    return Path(*parts)


def save_uploads(files: Iterable[tuple[str, bytes]], root: Path | None = None) -> Path:
    """Write uploaded files (relative name, content) into ``uploads/<hash>`` and return the
    path to load: the single archive when one archive was uploaded, else the folder.

    The folder name is the SHA-256 of names and contents, so uploading the same data twice
    reuses it. The folder is written to a temporary sibling first and renamed (atomic).
    """
    items = [(str(_safe_relpath(n)), bytes(b)) for n, b in files]
    if not items:
        raise RulError("no files uploaded")
    seen: set[str] = set()
    twice = sorted({n for n, _ in items if n in seen or seen.add(n)})
    if twice:
        raise RulError(f"uploaded files: expected distinct names, found {twice[:5]} more than "
                       "once (files from different folders? upload the folder or an archive "
                       "so each keeps its folder)")
    h = hashlib.sha256()
    for name, data in sorted(items):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    digest = h.hexdigest()[:16]
    base = uploads_dir(root)
    final = base / digest
    if not final.exists():
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=base))
        try:
            for name, data in items:
                dest = tmp / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            (tmp / UPLOAD_RECORD).write_text(json.dumps({"files": [n for n, _ in items]}))
            try:
                os.rename(tmp, final)
            except OSError:  # another session won the race with the same content
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    names = [n for n, _ in items]
    if len(names) == 1 and names[0].lower().endswith(ARCHIVE_SUFFIXES):
        return final / names[0]
    return final


# --------------------------------------------------------------------------- demo assets


def demo_dir() -> Path:
    """The demo assets folder: $RUL_DEMO_DIR or <repo>/assets/demo."""
    env = os.environ.get("RUL_DEMO_DIR")
    return Path(env).resolve() if env else REPO_ROOT / "assets" / "demo"


def demo_manifest(path: Path | None = None) -> dict[str, Any] | None:
    """The demo's MANIFEST.json as a dict, or None when the demo has not been built."""
    f = (path or demo_dir()) / "MANIFEST.json"
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return None


def demo_data_path(
    manifest: dict[str, Any] | None = None, root: Path | None = None
) -> Path | None:
    """Path of the demo dataset (None when absent)."""
    root = root or demo_dir()
    manifest = manifest if manifest is not None else demo_manifest(root)
    if not manifest:
        return None
    p = root / manifest.get("dataset", "data")
    return p if p.exists() else None


def default_geometry(layout: str, dataset_path: str | Path | None) -> tuple[str, str]:
    """The Data page's bearing-geometry choice to start from, and why: the demo's synthetic
    bearings are generated with LDK UER204 (:mod:`rul_core.data.synthetic`), XJTU-SY's
    bearing is that one, other layouts start with the shaft harmonics only."""
    from rul_core.signal import spectrum

    demo = demo_data_path()
    if demo is not None and dataset_path is not None and \
            Path(dataset_path).resolve() == demo.resolve():
        return spectrum.UER204_PRESET, "the demo's synthetic bearings are generated with it"
    preset = spectrum.default_preset(layout)
    if preset is not None:
        return preset, "the XJTU-SY bearing"
    return spectrum.SHAFT_ONLY, ""


def demo_model_path(
    manifest: dict[str, Any] | None = None, root: Path | None = None
) -> Path | None:
    """Path of the demo model bundle (None when absent)."""
    root = root or demo_dir()
    manifest = manifest if manifest is not None else demo_manifest(root)
    if not manifest or not manifest.get("model"):
        return None
    p = root / manifest["model"]
    return p if p.exists() else None


def demo_models(
    manifest: dict[str, Any] | None = None, root: Path | None = None
) -> dict[str, Path]:
    """Every demo model bundle that exists: label -> path (primary first)."""
    root = root or demo_dir()
    manifest = manifest if manifest is not None else demo_manifest(root)
    if not manifest:
        return {}
    out = {}
    for label, info in (manifest.get("models") or {}).items():
        p = root / str(info.get("path", ""))
        if info.get("path") and (p / "card.json").is_file():
            out[label] = p
    return out


# The project's shared real data sits beside the repository (../shared/data/real).
REAL_FEMTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "femto"


def catalogued_paths() -> dict[str, Path]:
    """Known server-side datasets that exist on this machine (label -> path)."""
    out: dict[str, Path] = {}
    env = os.environ.get("RUL_DATA_PATHS", "")
    for item in [p for p in env.split(os.pathsep) if p]:
        out[Path(item).name] = Path(item)
    for sub in ("Learning_set/Bearing3_1", "Full_Test_Set/Bearing1_4"):
        p = REAL_FEMTO / sub
        if p.is_dir():
            out[f"FEMTO {sub} (real, read-only)"] = p
    return out


# --------------------------------------------------------------------------- summaries


def snapshot_stats(snapshots: np.ndarray) -> dict[str, np.ndarray]:
    """Per-snapshot RMS, peak and Pearson kurtosis per channel: each (snapshots, channels)."""
    x = np.asarray(snapshots, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, :, None]
    mean = x.mean(axis=1, keepdims=True)
    centred = x - mean
    var = (centred**2).mean(axis=1)
    m4 = (centred**4).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kurt = np.where(var > 0, m4 / np.where(var > 0, var, 1.0) ** 2, 0.0)
    return {
        "rms": np.sqrt((x**2).mean(axis=1)),
        "peak": np.abs(x).max(axis=1),
        "kurtosis": kurt,
    }


def friendly_error(exc: BaseException) -> str:
    """One readable sentence for the user (no traceback)."""
    if isinstance(exc, RulError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"file or folder not found: {exc.filename or exc}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, MemoryError):
        return "not enough memory for this operation; try fewer snapshots or a smaller preset"
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def content_key(*parts: object) -> str:
    """A short stable hash of strings/bytes/arrays (cache keys for pages)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
        elif isinstance(p, bytes):
            h.update(p)
        else:
            h.update(repr(p).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:20]


def path_fingerprint(path: str | Path, limit: int = 20000) -> str:
    """A cheap fingerprint of a file or folder: names, sizes and mtimes (cache key)."""
    p = Path(path)
    h = hashlib.sha256(str(p.resolve()).encode())
    if p.is_file():
        st = p.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    elif p.is_dir():
        for n, f in enumerate(sorted(p.rglob("*"))):
            if n >= limit:
                break
            if f.is_file():
                st = f.stat()
                h.update(f"{f.relative_to(p)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


# --------------------------------------------------------------------------- models


HPARAMS_FIELD = "Hyperparameter overrides"


def train_config(model: str, ablation: str, preset: str, dataset_kind: str, seed: int,
                 interval: str, n_members: int, overrides: str) -> Any:
    """The Train page's :class:`~rul_core.models.presets.ModelConfig`; ``overrides`` holds
    one ``KEY=VALUE`` per line (the CLI's ``--hparam``). Unknown keys raise RulError."""
    from rul_core.models import presets

    hparams = presets.parse_key_values(overrides.splitlines(), HPARAMS_FIELD)
    return presets.ModelConfig(name=model, ablation=ablation, preset=preset,
                               dataset_kind=dataset_kind, seed=int(seed), interval=interval,
                               n_members=max(int(n_members), 1), hparams=hparams)


#: The Train page's choice of no noise augmentation, and the noise kinds it offers.
NO_AUGMENTATION = "none"
AUGMENTATION_KINDS = (NO_AUGMENTATION, *NOISE_KINDS)


def train_augmentation(kind: str, severity: float, copies: int) -> NoiseAugmentation | None:
    """The Train page's :class:`~rul_core.signal.noise.NoiseAugmentation` (None for
    :data:`NO_AUGMENTATION`); a bad value raises RulError naming the field."""
    if kind == NO_AUGMENTATION:
        return None
    try:
        return NoiseAugmentation(kind, float(severity), int(copies))
    except ValueError as exc:
        raise RulError(f"Noise augmentation: {exc}") from None


def overrides_text(hparams: dict[str, Any]) -> str:
    """``KEY=VALUE`` lines of hyperparameter overrides (JSON values), as the Train page's
    field and the CLI's ``--hparam`` take them."""
    return "\n".join(f"{k}={json.dumps(v)}" for k, v in hparams.items())


#: The Train page's two kinds of run.
TRAIN_ONE = "Train one model"
CROSS_VALIDATE = "Cross-validate over bearings"


def challenge_train_state(run_names: list[str]) -> dict[str, Any]:
    """Train-page widget values (by key) for :data:`rul_core.phm2012.CHALLENGE_TRAINING`:
    every run trains, none validates."""
    from rul_core import phm2012

    s = phm2012.CHALLENGE_TRAINING
    return {
        "train_model": s["model"], "train_ablation": s["ablation"], "train_preset": s["preset"],
        "train_scheme": s["label_scheme"], "train_cap_min": s["cap_minutes"],
        "train_log_min": s["log_scale_minutes"],
        "train_interval": s["interval"], "train_epochs": s["epochs"],
        "train_patience": s["patience"], "train_every": s["snapshot_every"],
        "train_phases": s["snapshot_phases"], "train_members": s["n_members"],
        "train_hparams": overrides_text(s["hparams"]),
        "train_runs": list(run_names), "val_runs": [], "train_mode": TRAIN_ONE,
        "train_aug_kind": NO_AUGMENTATION,
    }


def challenge_short_runs_notice(runs: Iterable[Any], cap_minutes: float, every: int,
                                min_snapshots: int = 30) -> str | None:
    """Why capped labels of ``cap_minutes`` and every ``every``-th snapshot (the PHM 2012
    challenge settings) make little sense on ``runs``, or None when they fit.

    They do not fit when the longest run lasts less than the cap (every label of every run is
    capped, so the labels no longer fall over most of a run's life) or when the thinning leaves
    fewer than ``min_snapshots`` snapshots of some run. Durations come from the runs'
    timestamps (seconds since their first snapshot)."""
    runs = list(runs)
    if not runs:
        return None
    from rul_core.data.run import every_nth_from_last

    minutes = [float(r.timestamps[-1] - r.timestamps[0]) / 60.0 if r.n_snapshots else 0.0
               for r in runs]
    left = [len(every_nth_from_last(r.n_snapshots, int(every))) for r in runs]
    longest, fewest = max(minutes), min(left)
    problems = []
    if longest < cap_minutes:
        problems.append(f"the longest run lasts {longest:.1f} min, less than the "
                        f"{cap_minutes:g}-minute cap, so every label is capped")
    if fewest < min_snapshots:
        spread = f"{fewest}" if fewest == max(left) else f"{fewest} to {max(left)}"
        n = int(every)
        suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        nth = f"{n}{suffix}"
        problems.append(f"every {nth} snapshot leaves {spread} snapshot"
                        f"{'' if max(left) == 1 else 's'} per run (fewer than {min_snapshots})")
    if not problems:
        return None
    return ("The PHM 2012 challenge settings were chosen for FEMTO runs of hours; on these "
            f"{len(runs)} runs " + " and ".join(problems) + ". Lower the cap and 'Use every "
            "N-th snapshot' for this dataset.")


CROSSVAL_JOB_PREFIX = "crossval-"  # the Train page's cross-validation jobs are named so


def job_kind(job: Any) -> str:
    """'Cross-validation' or 'Training': what the Train page's job is, for its messages."""
    return "Cross-validation" if job.name.startswith(CROSSVAL_JOB_PREFIX) else "Training"


_STAGE_WORDS = {"start": "while starting the training process",
                "prepare": "while preparing the windows", "build": "while building the model",
                "compile": "while compiling (the first batch)",
                "forest": "while fitting the forest head",
                "validate": "while computing the validation metrics",
                "scoring": "while scoring a fold"}


def cancelled_message(job: Any, what: str = "Training") -> str:
    """What a cancelled job got through, e.g. 'Training cancelled after 3 of 20 epochs (12 s);
    no model was kept.' (of the planned epochs when one model trained; a deep ensemble names
    its member: 'after member 2/5, epoch 3/20'; a cross-validation counts every epoch it
    finished), and in which stage when not between batches ('..., while fitting the forest
    head'; a member's build and first batch name it: 'while compiling member 3/5's first
    batch')."""
    events = job.snapshot_events()
    ends = [e for e in events if e.extra.get("epoch_end")]
    kept = "no model was kept" if what == "Training" else "no result was kept"
    n = len(ends)
    last_end = ends[-1].extra if ends else {}
    planned = last_end.get("epochs")
    members = int(last_end.get("n_members", 1) or 1)
    trained = what == "Training" and ends and not any(e.extra.get("fold") for e in ends)
    of = f"of {planned} " if trained and members == 1 and isinstance(planned, int) else ""
    plural = "" if n == 1 and not of else "s"
    done = f"after {n} {of}epoch{plural}" if n else "before its first epoch"
    if trained and members > 1 and isinstance(planned, int):
        done = (f"after member {int(last_end.get('member', 0)) + 1}/{members}, epoch "
                f"{last_end.get('epoch', '?')}/{planned}")
    last = events[-1] if events else None
    where = _STAGE_WORDS.get(last.stage) if last is not None else None
    if where and last is not None and last.stage in ("build", "compile"):
        n_members = int(last.extra.get("n_members", 1) or 1)
        if n_members > 1 and not last.extra.get("fold"):
            who = f"member {int(last.extra.get('member', 0)) + 1}/{n_members}"
            where = (f"while building {who}" if last.stage == "build"
                     else f"while compiling {who}'s first batch")
    return f"{what} cancelled {done}{', ' + where if where else ''} ({job.elapsed:.0f} s); {kept}."


def late_cancel_message(job: Any, what: str = "Training") -> str:
    """Why a job the analyst cancelled still delivered its result: it finished before the
    cancel could stop it (past its last cancel point the model is only saved and handed over),
    or the cancel reached it after it had ended."""
    kept = "the model is kept" if what == "Training" else "the result is kept"
    ahead = (job.finished or time.time()) - job.cancel_requested
    when = (f"{ahead:.1f} s before the end, after its last cancel point" if ahead > 0
            else "after it had ended")
    return f"{what} finished before the cancel arrived — {kept} (the cancel came {when})."


def cancel_notice(job: Any) -> str:
    """What the Cancel button's toast says: whether the cancel can still stop the job."""
    if not job.running:
        return "Too late to cancel: it has already finished; its result is kept."
    last = job.last
    from rul_core.isolated import FINISH

    if last is not None and last.stage == FINISH and not last.extra.get("fold"):
        return ("Too late to cancel: the training has finished and its model is being handed "
                "over; it will be kept.")
    stage = last.stage if last is not None else ""
    return {"train": "Cancelling after the current batch…",
            "build": "Cancelling after the first batch…",
            "compile": "Cancelling after the first batch (it is being compiled)…",
            "start": "Cancelling once the training process has started…",
            "forest": "Cancelling once the forest's trees are fitted…"}.get(
        stage, "Cancelling at the next check…")


def progress_line(job: Any, now: float | None = None, compact: bool = False) -> str:
    """The progress text of a job: 'running · 12 s · train: member 2/5, epoch 3/20 loss 0.41 ·
    ETA 30 s' (``compact``: without the status and stage, for the sidebar). The stage is the
    last event's (a cross-validation's events name the whole run instead: their ``label``).
    While the job runs, the ETA its last event carries (the whole job's: a training's,
    across its stages, or a cross-validation's, across its folds) counts down from when it
    was received; 'ETA estimating…' without an estimate yet; '≤' when early stopping may end
    it sooner; the stages it leaves out named after it ('windows ETA 3 s, then the fit')."""
    from rul_core.progress import eta_of

    now = time.time() if now is None else now
    last = job.last
    elapsed = max(0.0, (job.finished or now) - job.started) if job.started else 0.0
    text = f"{elapsed:.0f} s" if compact else f"{job.status} · {elapsed:.0f} s"
    if last is None:
        return text
    label = last.extra.get("label") or last.stage
    text += f" · {last.message}" if compact else f" · {label}: {last.message}"
    eta = eta_of(last.extra, now - job.last_time) if job.running else None
    return f"{text} · {eta}" if eta else text


# Widget keys whose values survive a visit to another page (app_ui.keep_widget_state; Streamlit
# drops a widget's value when a run does not draw it). Not here, on purpose: buttons, file
# uploaders and download buttons (their values cannot be set); the run and model pickers and
# the window pickers (pick_run / pick_model / pick_window share one choice between pages through
# selected_run / model_label / selected_window); widgets tied to one result (bundle_name,
# bundle_replace, the cross-validation's bearing pick); the Report's figure choice (kept as the
# items removed from it, report_exclusions, so that new figures join it).
# tests/test_ui_state.py checks every widget key of the pages is sorted.
PERSISTENT_KEYS: tuple[str, ...] = (
    # Data
    "data_source", "upload_mode", "upload_subfolder", "server_path", "server_layout",
    "catalog_pick", "data_snapshot", "data_full", "data_schemes",
    "spec_channel", "spec_kind", "spec_bandpass", "spec_band_lo", "spec_band_hi",
    "spec_geometry", "spec_harmonics", "spec_balls", "spec_ball_mm", "spec_pitch_mm",
    "spec_angle", "spec_life", "spec_db", "spec_kurtogram_of",
    # Train
    "train_mode", "train_model", "train_ablation", "train_preset", "train_scheme",
    "train_interval", "train_members", "train_epochs", "train_runs", "val_runs", "train_knee",
    "train_cap_min", "train_log_min", "train_seed", "train_patience", "train_every",
    "train_phases", "train_aug_kind", "train_aug_severity", "train_aug_copies",
    "train_hparams", "cv_runs", "cv_split", "cv_folds", "cv_inner_val", "cv_jobs",
    "bundle_pick", "bundle_path", "cv_past_pick",
    # Evaluate
    "eval_models", "eval_runs", "eval_on", "eval_run_pick", "eval_time_model",
    "eval_time_upto", "eval_phm_model", "eval_side_metric",
    # Noise lab
    "noise_kind", "noise_severity", "noise_seed", "sweep_models", "sweep_runs",
    "sweep_levels",
    # Explain (plus explain_rules_<default rules>: one choice per models' default)
    "explain_methods", "explain_lime_n", "explain_lime_seeds", "explain_shap_n",
    "explain_bands", "explain_global_n",
    # Report
    "report_title", "report_engine", "report_formats", "report_one_fmt", "report_scale",
)
PERSISTENT_PREFIXES: tuple[str, ...] = ("explain_rules_", "spec_max_hz_", "spec_rpm_")


def persistent_keys(keys: Iterable[Any]) -> list[str]:
    """The keys among ``keys`` whose widget values are kept across pages."""
    return [k for k in keys if isinstance(k, str)
            and (k in PERSISTENT_KEYS or k.startswith(PERSISTENT_PREFIXES))]


def valid_selection(stored: Any, options: Iterable[Any], default: Any = None) -> Any:
    """``stored`` made valid for a select widget offering ``options``: a multiselect's list
    keeps the values still offered (``default`` when none is left of a non-empty list); a
    single value no longer offered becomes ``default`` (None: drop it)."""
    opts = list(options)
    if isinstance(stored, (list, tuple)):
        kept = [v for v in stored if v in opts]
        return kept if kept or not stored else default
    return stored if stored in opts else default


def report_labels(items: Iterable[Any]) -> dict[str, str]:
    """Report page choice labels ('Data · RMS over life (figure)') mapped to registry keys;
    the key is appended where page, title and kind are shared."""
    labels: dict[str, str] = {}
    for item in items:
        label = f"{item.page} · {item.title} ({item.kind})"
        labels[label if label not in labels else f"{label} [{item.key}]"] = item.key
    return labels


def report_default_choice(labels: dict[str, str], excluded: Iterable[str]) -> list[str]:
    """The Report's figure choice when the page opens: every item except those the user
    removed (registry keys in ``excluded``), so figures viewed since join it and removals
    survive a visit to another page."""
    left_out = set(excluded)
    return [label for label, key in labels.items() if key not in left_out]


def report_exclusions(labels: dict[str, str], chosen: Iterable[str],
                      previous: Iterable[str] = ()) -> set[str]:
    """Registry keys the user removed from the Report's choice: those offered but not chosen,
    plus earlier removals of items no longer offered (a figure re-registered later stays out)."""
    picked = {labels[c] for c in chosen if c in labels}
    offered = set(labels.values())
    return (offered - picked) | (set(previous) - offered)


def bundles_dir(root: Path | None = None) -> Path:
    """Folder for bundles saved from the app: <workspace>/bundles."""
    from rul_core.workspace import BUNDLES_DIR

    return (root or workspace_dir()) / BUNDLES_DIR


def model_label(trained: Any) -> str:
    """A short human label of a model trained in this session, e.g. 'carle/full (quick)
    14:03:27' (the training's UTC time of day; legends show several of them side by side)."""
    cfg = trained.config
    created = str(getattr(trained, "created", ""))
    when = created[11:19] if len(created) >= 19 else created
    return f"{cfg.name}/{cfg.ablation} ({cfg.preset}) {when}".rstrip()


def bundle_choice_label(row: dict[str, Any]) -> str:
    """The Load tab's label of a catalogued bundle row, marked when the bundle is gone or
    damaged (:func:`rul_core.bundle.bundle_status`) or its catalog row is."""
    from rul_core.bundle import bundle_status

    status = bundle_status(row["path"])
    marks = [status] if status else []
    if row.get("problem"):
        marks.append(f"catalog {row['problem']}")
    return (f"{row['model']}/{row['ablation']} {row['preset']} — {row['path']}"
            + "".join(f" ({mark})" for mark in marks))


#: Longest bundle folder name, in UTF-8 bytes (file systems allow 255 per name).
MAX_BUNDLE_NAME_BYTES = 100


def bundle_path(name: str, root: Path | None = None) -> Path:
    """Where a bundle named ``name`` is saved: ``<workspace>/bundles/<name, file-safe>``
    (cut to :data:`MAX_BUNDLE_NAME_BYTES`)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    safe = safe.encode()[:MAX_BUNDLE_NAME_BYTES].decode(errors="ignore")
    return bundles_dir(root) / (safe.strip("._") or "model")


def save_model(trained: Any, name: str, root: Path | None = None, replace: bool = False) -> Path:
    """Save ``trained`` as a bundle in the workspace and catalog it; returns its folder.

    An existing bundle of that name is replaced only when ``replace`` is set.
    """
    from rul_core.bundle import save_bundle
    from rul_core.errors import BundleError
    from rul_core.workspace import Workspace

    path = bundle_path(name, root)
    if path.exists() and not replace:
        raise BundleError(f"{path}: a bundle of this name exists; choose another name or "
                          "replace it explicitly")
    path = save_bundle(trained, path, replace=replace)
    cfg = trained.config
    catalog = Workspace(root) if root is not None else Workspace()
    catalog.add_bundle(path, cfg.name, cfg.ablation, cfg.preset, metrics=dict(trained.metrics))
    return path


def record_cross_validation(result: Any, dataset: str, root: Path | None = None) -> Path:
    """Save a cross-validation under ``<workspace>/crossval`` and catalog it
    (:func:`rul_core.crossval.record`); returns its folder."""
    from rul_core.crossval import record
    from rul_core.workspace import Workspace

    return record(result, Workspace(root) if root is not None else Workspace(), dataset)


def cross_validation_table(root: Path | None = None) -> pd.DataFrame:
    """The workspace's catalogued cross-validations, newest first, indexed by id: model,
    bearings, pooled out-of-fold RMSE and grid proxy, dataset, date and folder."""
    from rul_core.workspace import Workspace

    rows = (Workspace(root) if root is not None else Workspace()).list_cross_validations()
    table = pd.DataFrame([{
        "id": r["id"], "model": f"{r['model']}/{r['ablation']} ({r['preset']})",
        "dataset": r["dataset"], "bearings": len(r["runs"]),
        "rmse": r["metrics"].get("rmse"), "grid_proxy": r["metrics"].get("grid_proxy"),
        "created": r["created"], "path": r["path"],
    } for r in reversed(rows)], columns=["id", "model", "dataset", "bearings", "rmse",
                                         "grid_proxy", "created", "path"])
    return table.set_index("id")


def bundle_from_upload(files: Iterable[tuple[str, bytes]], root: Path | None = None) -> Path:
    """Store an uploaded bundle (its files, or one .zip of the folder) and return the bundle
    directory (the folder holding card.json)."""
    stored = save_uploads(files, root)
    if stored.is_file():  # an archive: extract it safely next to itself
        from rul_core.data.archives import extract_archive

        dest = stored.parent / "extracted"
        if not dest.exists():
            tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=stored.parent))
            try:
                extract_archive(stored, tmp)
                os.rename(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        stored = dest
    cards = sorted(stored.rglob("card.json"))
    if not cards:
        raise RulError(f"uploaded bundle: no card.json found in {len(list(stored.rglob('*')))} "
                       "uploaded files; expected a model bundle folder")
    return cards[0].parent
