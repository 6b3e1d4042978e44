"""One training API for every model, bearing-grouped splits, and inference on a partial run.

``train(config, train_runs, ...)`` does, in order: fit the min-max :class:`Normaliser` on the
training runs only; extract windows (and, for RC-LSTM, the raw normalised windows); label them
with a scheme of :mod:`rul_core.labels`; build the model (``n_members`` seeded copies for a
deep ensemble); fit with early stopping (best weights restored), learning-rate reduction on
plateau, progress events and cancellation; then fit the random-forest head on the penultimate
layer when the configuration uses one. The result, :class:`TrainedModel`, carries everything a
bundle needs to reproduce the predictions.

Splits are always by bearing (one run = one bearing): overlapping windows of one bearing on
both sides of a split leak the answer.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from rul_core import metrics as mt
from rul_core.data.run import Run, every_nth_from_last
from rul_core.errors import Cancelled, InputError, RulError
from rul_core.job_progress import (
    Estimate,
    OverallTracker,
    TrainingEta,
    forest_chunks,
    training_plan,
)
from rul_core.progress import (
    OVERALL,
    CancelToken,
    FitEta,
    Heartbeat,
    ProgressEvent,
    ProgressFn,
    check,
    emit,
    ticked,
)
from rul_core.signal.noise import NoiseAugmentation

DEFAULT_PATIENCE = 10
DEFAULT_LEVEL = 0.9


@dataclass
class RunInfo:
    """What the model card records about one training/validation run."""

    name: str
    content_hash: str
    rpm: float
    load_n: float
    n_snapshots: int

    @classmethod
    def of(cls, run: Run) -> RunInfo:
        """Describe ``run`` (hashes its samples)."""
        return cls(
            name=run.name,
            content_hash=run.content_hash(),
            rpm=float(run.condition.rpm),
            load_n=float(run.condition.load_n),
            n_snapshots=run.n_snapshots,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(d["name"]),
            content_hash=str(d["content_hash"]),
            rpm=float(d["rpm"]),
            load_n=float(d["load_n"]),
            n_snapshots=int(d["n_snapshots"]),
        )


@dataclass
class TrainedModel:
    """A trained model with everything needed to apply it to new runs.

    ``models`` holds one Keras model, or ``n_members`` for a deep ensemble; ``forest`` the
    optional random-forest head fitted on ``embedding_model(models[0])``; ``history`` one
    Keras history dict per member; ``metrics`` validation (and training) metrics;
    ``interval_calibration`` the split-conformal factors measured on the validation runs
    (:func:`rul_core.models.intervals.calibration_quantiles`), None without validation runs.
    ``snapshot_every``: the model saw every N-th snapshot counted back from each run's last
    (:meth:`rul_core.data.run.Run.every_nth`); it predicts runs thinned the same way.
    ``augmentation``: the noisy copies of the training runs it also saw (None: none).
    """

    config: Any  # rul_core.models.ModelConfig
    models: list[Any]
    normaliser: Any  # rul_core.signal.pipeline.Normaliser
    pipeline_config: Any  # rul_core.signal.pipeline.PipelineConfig
    label_scheme: str = "piecewise"
    label_params: dict[str, Any] = field(default_factory=dict)
    forest: Any | None = None
    history: list[dict[str, list[float]]] = field(default_factory=list)
    train_runs: list[RunInfo] = field(default_factory=list)
    val_runs: list[RunInfo] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    level: float = DEFAULT_LEVEL
    interval_calibration: list[float] | None = None
    snapshot_every: int = 1
    augmentation: NoiseAugmentation | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def train_conditions(self) -> set[tuple[float, float]]:
        """(rpm, load) of every training run: the conditions this model has seen."""
        return {(r.rpm, r.load_n) for r in self.train_runs}

    @property
    def input_shapes(self) -> list[list[int]]:
        """Shapes (without the batch axis) of the first model's inputs."""
        return [[int(d) for d in t.shape[1:]] for t in self.models[0].inputs]


# --------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------
def _unique_names(run_names: Sequence[str]) -> list[str]:
    names = [str(n) for n in run_names]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RulError(f"split: run names must be unique (one run per bearing), repeated: {dup}")
    if not names:
        raise RulError("split: no runs given")
    return names


def leave_one_bearing_out(run_names: Sequence[str]) -> list[tuple[list[str], list[str]]]:
    """One fold per bearing: (every other run, [that run]), in the order given."""
    names = _unique_names(run_names)
    if len(names) < 2:
        raise RulError("leave-one-bearing-out needs at least two runs")
    return [([n for n in names if n != held], [held]) for held in names]


def grouped_kfold(
    run_names: Sequence[str], k: int, seed: int = 0
) -> list[tuple[list[str], list[str]]]:
    """``k`` folds over bearings (seeded shuffle, sizes differ by at most one).

    Each fold is (training run names, held-out run names); every run is held out exactly once.
    """
    names = _unique_names(run_names)
    if not 2 <= k <= len(names):
        raise RulError(f"grouped k-fold: k must lie in [2, {len(names)}] (runs), got {k}")
    order = np.random.default_rng(seed).permutation(len(names))
    groups = [sorted(int(i) for i in chunk) for chunk in np.array_split(order, k)]
    folds = []
    for g in groups:
        held = [names[i] for i in g]
        folds.append(([n for n in names if n not in held], held))
    return folds


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
@dataclass
class PreparedRun:
    """Model inputs, window bookkeeping and labels of one run."""

    run: Run
    inputs: list[np.ndarray]
    snapshot_index: np.ndarray
    labels: np.ndarray | None


DEFAULT_BASELINE_SNAPSHOTS = 10


def default_pipeline_config(config: Any) -> Any:
    """The pipeline defaults for training (SPEC §2) plus a healthy baseline of 10 snapshots.

    TF features are standardised per run by its first ``DEFAULT_BASELINE_SNAPSHOTS`` snapshots
    (causally, see :func:`rul_core.signal.pipeline.baseline_standardise`), which removes most
    of the shift between operating conditions; measured on the six FEMTO learning bearings in
    ``bench/phm2012.py`` (README). No Gaussian filter: sigma 1.1 did not help there.
    """
    from rul_core.signal import pipeline as pl

    return pl.PipelineConfig(baseline_snapshots=DEFAULT_BASELINE_SNAPSHOTS)


def prepare_run(
    config: Any,
    run: Run,
    normaliser: Any,
    pipeline_config: Any,
    label_scheme: str | None = None,
    label_params: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    snapshot_every: int = 1,
    phase: int = 0,
    noise: Any | None = None,
) -> PreparedRun:
    """Windows of ``run`` as model inputs (+ window labels when ``label_scheme`` is given).

    ``snapshot_every`` N > 1 takes the windows of every N-th snapshot counted back from the
    last (:meth:`Run.every_nth`: features, baseline and sequences as if the run had been
    recorded N times less often) but labels them on the whole run, so ``snapshot_index``
    and the label parameters (``max_rul`` in snapshots) stay in the recording's units.
    ``phase`` k (0 <= k < N) counts back from the k-th snapshot before the last instead: the
    same run as if its recording had stopped k snapshots earlier (training augmentation,
    :func:`train`'s ``snapshot_phases``). RC-LSTM reads only the filtered windows, so its
    runs skip the ImR rasters and TF features the other models need. ``noise`` (a
    :class:`rul_core.signal.noise.NoiseModel`) perturbs the normalised snapshots (Noise lab).
    """
    from rul_core.models import make_inputs
    from rul_core.models.inputs import signal_input
    from rul_core.signal import pipeline as pl
    from rul_core.signal.windows import window_positions

    check(cancel)
    if int(phase) != phase or not 0 <= phase < max(1, int(snapshot_every)):
        raise RulError(f"prepare_run: phase must be a whole number in [0, {snapshot_every}), "
                       f"got {phase!r}")
    kept = every_nth_from_last(max(0, run.n_snapshots - int(phase)), snapshot_every)
    seen = run if kept.size == run.n_snapshots else run.take(kept)
    if config.name == "rc_lstm":
        window_snapshot, _ = window_positions(seen.n_snapshots, seen.n_samples,
                                              pipeline_config.window_length,
                                              pipeline_config.stride)
        signals = pl.window_signals(seen, normaliser, pipeline_config, noise=noise)
        inputs = [signal_input(config, window_snapshot, signals)]
        emit(progress, "features", len(window_snapshot), len(window_snapshot), run.name)
    else:
        windows = pl.extract_windows(seen, normaliser, pipeline_config, progress=progress,
                                     cancel=cancel, noise=noise,
                                     tf_channels=config.resolved().get("tf_channels"))
        window_snapshot = windows.snapshot_index
        inputs = [np.asarray(a) for a in make_inputs(config, windows)]
    snap = kept[np.asarray(window_snapshot, dtype=np.int64)]
    labels = None
    if label_scheme is not None:
        from rul_core import labels as lb

        try:
            per_snapshot = lb.label_run(run, label_scheme, **(label_params or {}))
        except (ValueError, TypeError) as exc:
            raise RulError(f"labels of run {run.name} ({label_scheme}): {exc}") from exc
        labels = np.asarray(lb.window_labels(per_snapshot, snap), dtype=np.float32)
    return PreparedRun(run=run, inputs=inputs, snapshot_index=snap, labels=labels)


def model_x(inputs: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """Keras input: the array itself for a one-input model, else the list."""
    return inputs[0] if len(inputs) == 1 else inputs


def _concat(prepared: list[PreparedRun]) -> tuple[list[np.ndarray], np.ndarray]:
    n_inputs = len(prepared[0].inputs)
    xs = [np.concatenate([p.inputs[i] for p in prepared], axis=0) for i in range(n_inputs)]
    ys = np.concatenate([p.labels for p in prepared if p.labels is not None], axis=0)
    return xs, ys.astype(np.float32)


def cycled_batch_indices(n: int, batch_size: int, index: int, seed: int) -> np.ndarray:
    """Sample indices of batch ``index`` of an endless stream over ``n`` samples that visits
    them in a random order, a new one each pass (pass p shuffled by ``[seed, p]``): every
    sample once per ``n`` draws, whatever the batch size."""
    pos = np.arange(index * batch_size, (index + 1) * batch_size, dtype=np.int64)
    passes, within = np.divmod(pos, n)
    out = np.empty_like(pos)
    for p in np.unique(passes):
        order = np.random.default_rng([int(seed), int(p)]).permutation(n)
        sel = passes == p
        out[sel] = order[within[sel]]
    return out


def cycled_batches(x: list[np.ndarray], y: np.ndarray, batch_size: int, seed: int) -> Any:
    """Endless training batches of (x, y) in :func:`cycled_batch_indices` order, as a Keras
    ``PyDataset``: batch ``i`` depends on ``i`` alone, so prefetching cannot change what is
    trained on. ``fit`` needs a ``steps_per_epoch``; an epoch then covers part of the
    samples and the next picks up where it stopped."""
    import keras

    class CycledBatches(keras.utils.PyDataset):
        """See :func:`cycled_batches`."""

        def __init__(self) -> None:
            super().__init__()

        @property
        def num_batches(self) -> None:
            return None  # endless

        def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
            idx = cycled_batch_indices(len(y), int(batch_size), int(index), int(seed))
            xs = [a[idx] for a in x]
            return (xs[0] if len(xs) == 1 else tuple(xs)), y[idx]

    return CycledBatches()


# --------------------------------------------------------------------------------------
# Keras callbacks
# --------------------------------------------------------------------------------------
def _progress_callback(
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    epochs: int,
    steps: int,
    member: int,
    n_members: int,
    eta: FitEta | None = None,
    monitor: str = "loss",
    patience: int = 0,
) -> Any:
    """The callback that reports a member's fit and stops it when ``cancel`` fires.

    ``eta`` (one :class:`FitEta` shared by every member) times the batches, validation
    batches and epoch ends; each event carries its estimate of the fit as ``fit_eta_s`` (None
    while it is still estimating) and ``eta_upper_bound`` (early stopping, on with
    ``patience``, may end the fit sooner); :func:`train` adds the whole training's. A member
    stopped early says so in one more event, which moves ``done`` to the member's planned end
    (the bar does not stall short of it). The fit's start is the ``compile`` stage's event
    (its first batch traces the training step; nothing reports until it ends). Messages
    name the member of an ensemble: 'member 2/5, epoch 3/20 loss 0.41' (:func:`member_label`).
    """
    import keras

    eta = eta if eta is not None else FitEta(epochs, steps, n_members)
    who = member_label(member, n_members)
    prefix = f"{who}, " if who else ""

    class ProgressAndCancel(keras.callbacks.Callback):
        """Emit a ProgressEvent after every batch; stop and raise Cancelled when cancelled."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.total = epochs * steps * n_members
            self.offset = member * epochs * steps
            self.val_loss: float | None = None
            self.done = self.offset
            self.monitored: list[float] = []

        def _emit(self, message: str, stage: str = "train", **extra: Any) -> None:
            emit(progress, stage, self.done, self.total, message, member=member,
                 n_members=n_members, epochs=epochs, val_loss=self.val_loss,
                 fit_eta_s=eta.eta(), eta_upper_bound=bool(patience), **extra)

        def on_train_begin(self, logs: dict | None = None) -> None:
            eta.member_begin(time.perf_counter())
            self._emit(f"{who + ': ' if who else ''}compiling (first batch)", stage="compile",
                       fit_start=True, within=0.0)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            eta.batch_end(time.perf_counter())
            self.done = self.offset + self.epoch * steps + batch + 1
            loss = float((logs or {}).get("loss", math.nan))
            self._emit(f"{prefix}epoch {self.epoch + 1}/{epochs} loss {loss:.4g}",
                       epoch=self.epoch + 1, batch=batch + 1, loss=loss)
            if cancel is not None and cancel.cancelled:
                self.model.stop_training = True
                raise Cancelled("training cancelled by the user")

        def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
            eta.val_batch_end(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            eta.epoch_end(time.perf_counter())
            logs = logs or {}
            self.val_loss = float(logs["val_loss"]) if "val_loss" in logs else None
            if monitor in logs:
                self.monitored.append(float(logs[monitor]))
            self._emit(f"{prefix}epoch {epoch + 1}/{epochs} done", epoch=epoch + 1, batch=steps,
                       loss=float(logs.get("loss", math.nan)), epoch_end=True)

        def on_train_end(self, logs: dict | None = None) -> None:
            eta.member_end()
            ran = self.epoch + 1
            if ran >= epochs or not patience:
                return
            best = (1 + int(np.argmin(self.monitored))) if self.monitored else ran
            self.done = self.offset + epochs * steps
            self._emit(f"{who + ' ' if who else ''}stopped early after epoch {ran}/{epochs}: "
                       f"{monitor} did not improve for {_epochs(patience)}; epoch {best}'s "
                       "weights kept", epoch=ran, batch=steps, stopped_early=True,
                       best_epoch=best)

    return ProgressAndCancel()


def member_label(member: int, n_members: int) -> str:
    """'member 2/5' for member 1 (from 0) of an ensemble of 5; '' for a single model."""
    return f"member {int(member) + 1}/{int(n_members)}" if int(n_members) > 1 else ""


def _epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


def _schedule_callback(config: Any, epochs: int) -> Any | None:
    """RC-LSTM's loss-weight schedule (paper Table III, scaled to ``epochs``)."""
    if config.name != "rc_lstm":
        return None
    from rul_core.models.rc_lstm import LossScheduleCallback

    return LossScheduleCallback(total_epochs=epochs)


def monitored_quantity(config: Any, validated: bool) -> str:
    """The history key early stopping, learning-rate reduction and best-weight restore watch:
    the loss, except for RC-LSTM, whose scheduled loss cannot compare epochs
    (:func:`rul_core.models.rc_lstm.mu_mse`); on the validation runs when there are any."""
    name = "mu_mse" if config.name == "rc_lstm" else "loss"
    return f"val_{name}" if validated else name


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow; ask TensorFlow for deterministic kernels."""
    import keras

    keras.utils.set_random_seed(int(seed))
    try:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    except Exception:
        pass


# --------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------
class _JobProgress:
    """The training's ProgressFn: each event passed on with the fraction of the whole training
    done (``overall``, :class:`rul_core.job_progress.OverallTracker`) and its ETA
    (:class:`rul_core.job_progress.TrainingEta`: ``eta_s``, ``eta_upper_bound``,
    ``eta_then``, ``eta_scope``); the forest's events also time its trees. The event of a
    stage that reports nothing while it runs (a member's build and first batch) is sent
    again every :data:`rul_core.progress.HEARTBEAT_S` seconds until the next event, from a
    :class:`rul_core.progress.Heartbeat` thread: with the seconds since it began, the
    fraction moved by them, and its ETA counted down. Calls of ``progress`` never overlap."""

    def __init__(self, progress: ProgressFn, plan: Any, eta: TrainingEta) -> None:
        self.progress, self.eta = progress, eta
        self.tracker = OverallTracker(plan.stages)
        self._trees_t: float | None = None
        self._lock = threading.Lock()
        self._last: tuple[Estimate, float] = (Estimate(None), time.perf_counter())
        self._timed = {s.name for s in plan.stages.stages if s.timed}
        self._heartbeat = Heartbeat(self._beat)

    def __call__(self, event: ProgressEvent) -> None:
        self._heartbeat.stop()  # a stage's own event ends the silence before it
        with self._lock:
            self._pass(event)
        if event.stage in self._timed:  # build, compile: nothing reports while they run
            self._heartbeat.start(event)

    def quiet(self) -> None:
        """Stop re-sending a silent stage's event (its call into Keras raised)."""
        self._heartbeat.stop()

    def _beat(self, event: ProgressEvent, elapsed_s: float) -> None:
        """``event`` of a stage still running, ``elapsed_s`` after it began: the fraction by
        the time, the ETA of the stage's own event counted down."""
        with self._lock:
            t = time.perf_counter()
            tick = ticked(event, elapsed_s)
            overall = self.tracker.update(tick)
            last, at = self._last
            eta = last.eta_s if last.eta_s is None else max(0.0, last.eta_s - (t - at))
            estimate = Estimate(eta, last.upper_bound, last.then, last.scope)
            extra = {k: v for k, v in tick.extra.items() if k not in ("within", "windows")}
            self.progress(ProgressEvent(tick.stage, tick.done, tick.total, tick.message,
                                        {**extra, OVERALL: overall, **estimate.extra()}))

    def _pass(self, event: ProgressEvent) -> None:
        t = time.perf_counter()
        self.eta.stage_started(event.stage, t)
        if event.stage == "prepare" and "windows" in event.extra:
            self.eta.windows_done(int(event.extra["windows"]), t)
        if event.stage == "forest" and event.done >= 1:
            if self._trees_t is None:
                self._trees_t = t
                self.eta.embedded(t)
            else:
                self.eta.trees_done(event.done - 1, t - self._trees_t, t)
        overall = self.tracker.update(event)
        estimate = Estimate(0.0) if overall >= 1.0 else self.eta.estimate(event.stage, t)
        self._last = (estimate, t)
        extra = {k: v for k, v in event.extra.items() if k not in ("within", "windows")}
        self.progress(ProgressEvent(event.stage, event.done, event.total, event.message,
                                    {**extra, OVERALL: overall, **estimate.extra()}))


def preparation_jobs(
    train_runs: Sequence[Run],
    val_runs: Sequence[Run],
    snapshot_phases: int = 1,
    augmentation: NoiseAugmentation | None = None,
    seed: int = 0,
) -> list[tuple[Run, int, Any]]:
    """What :func:`train` prepares, in order, as (run, phase, noise model or None): phase 0 of
    every training run, then of every validation run, then the other phases of the training
    runs long enough to have them, then ``augmentation``'s noisy copies of every training
    phase (copy by copy). Validation runs are never noisy."""
    later = [(run, k) for k in range(1, snapshot_phases) for run in train_runs
             if run.n_snapshots > k]
    fitting = [(run, 0) for run in train_runs] + later
    jobs: list[tuple[Run, int, Any]] = [(run, 0, None) for run in train_runs]
    jobs += [(run, 0, None) for run in val_runs] + [(run, k, None) for run, k in later]
    if augmentation is not None:
        jobs += [(run, k, augmentation.noise_model(seed, c, run.name))
                 for c in range(1, int(augmentation.copies) + 1) for run, k in fitting]
    return jobs


def train(
    config: Any,
    train_runs: list[Run],
    *,
    val_runs: list[Run] | None = None,
    label_scheme: str = "piecewise",
    label_params: dict[str, Any] | None = None,
    pipeline_config: Any | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    patience: int | None = DEFAULT_PATIENCE,
    level: float = DEFAULT_LEVEL,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    seed: int | None = None,
    snapshot_every: int = 1,
    snapshot_phases: int = 1,
    augmentation: NoiseAugmentation | None = None,
) -> TrainedModel:
    """Train ``config`` on ``train_runs`` (optionally validated on ``val_runs``).

    ``epochs``/``batch_size`` default to the preset's values. Early stopping and the
    learning-rate reduction watch ``val_loss`` when validation runs are given, else ``loss``
    (RC-LSTM: the squared error of its mean, :func:`monitored_quantity`);
    the best epoch's weights are restored. ``patience`` 0 or None trains a fixed budget: all
    ``epochs`` at the optimiser's rate (no reduction on plateau), the last epoch's weights
    kept (validation runs are then only measured and calibrate the interval). Validation runs
    also calibrate the predictive
    interval (split conformal, ``interval_calibration``). ``seed`` (default ``config.seed``)
    makes the whole run reproducible on one machine. ``snapshot_every`` N trains on every N-th
    snapshot counted back from each run's failure (:func:`prepare_run`; N times fewer windows
    per epoch, labels and ``label_params`` still in the recording's snapshots); the model then
    predicts runs thinned the same way. ``snapshot_phases`` K (1..N) also trains on the
    thinnings that end 1..K-1 snapshots before each training run's last (K times more
    distinct windows; ``prepare_run``'s ``phase``); an epoch still takes as many batches as
    one thinning gives, drawn without replacement from all of them (:func:`cycled_batches`),
    so the epoch budget, early stopping and the loss schedule keep their meaning.
    ``augmentation`` (a :class:`rul_core.signal.noise.NoiseAugmentation`) adds that many noisy
    copies of every training run (and phase) to the pool the batches are drawn from, again
    without adding batches per epoch; validation runs stay clean. Raises
    :class:`Cancelled` when ``cancel`` fires before the training ends (it is checked after
    every batch, the forest head and the validation metrics: the last check is the last
    statement before the return) and :class:`RulError` on unusable input. ``progress`` gets
    the events of every stage (``prepare``; per member ``build``, ``compile`` (its first
    batch), ``train`` per batch and epoch; ``forest``, ``validate``; build and compile, which
    report nothing while they run, again every :data:`rul_core.progress.HEARTBEAT_S` seconds
    with the seconds since they began, from another thread), each with the fraction of the
    whole training done (``overall``) and its
    ETA (``eta_s``, ``eta_then``, ...: :mod:`rul_core.job_progress`); the fit's own ETA is
    ``fit_eta_s`` (:class:`rul_core.progress.FitEta`).
    """
    import keras

    from rul_core.models import build_model, predict_point_and_interval
    from rul_core.models.intervals import calibration_quantiles, nonconformity
    from rul_core.models.presets import ModelConfig
    from rul_core.signal import pipeline as pl

    if not train_runs:
        raise RulError("train: no training runs given")
    names = [r.name for r in train_runs] + [r.name for r in (val_runs or [])]
    _unique_names(names)  # a bearing on both sides of the split leaks
    empty = [r.name for r in list(train_runs) + list(val_runs or []) if r.n_snapshots == 0]
    if empty:
        raise InputError(f"train: run(s) {', '.join(empty)} hold no snapshots")
    if seed is not None and int(seed) != int(config.seed):
        d = config.to_dict()
        d["seed"] = int(seed)
        config = ModelConfig.from_dict(d)
    seed = int(config.seed)
    hp = config.resolved()
    epochs = int(epochs if epochs is not None else hp.get("epochs", 20))
    batch_size = int(batch_size if batch_size is not None else hp.get("batch_size", 32))
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value < 1:
            raise RulError(f"train: {name} must be a whole number >= 1, got {value}")
    used = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if k in hp}
    if any(hp[k] != v for k, v in used.items()):
        # the bundle's card states the budget training used, not the preset's default
        d = config.to_dict()
        d["hparams"] = {**d.get("hparams", {}), **used}
        config = ModelConfig.from_dict(d)
    label_params = dict(label_params or {})
    pipeline_config = pipeline_config or default_pipeline_config(config)
    if int(snapshot_every) != snapshot_every or snapshot_every < 1:
        raise RulError(f"train: snapshot_every must be a whole number >= 1, got {snapshot_every!r}")
    snapshot_every = int(snapshot_every)
    if int(snapshot_phases) != snapshot_phases or not 1 <= snapshot_phases <= snapshot_every:
        raise RulError(f"train: snapshot_phases must be a whole number from 1 to snapshot_every "
                       f"({snapshot_every}), got {snapshot_phases!r}")
    snapshot_phases = int(snapshot_phases)
    if augmentation is not None and not isinstance(augmentation, NoiseAugmentation):
        raise RulError(f"train: augmentation must be a NoiseAugmentation or None, got "
                       f"{type(augmentation).__name__}")

    set_determinism(seed)
    plan = training_plan(config, train_runs, val_runs, epochs=epochs, batch_size=batch_size,
                         snapshot_every=snapshot_every, snapshot_phases=snapshot_phases,
                         augmentation=augmentation, pipeline_config=pipeline_config, seed=seed)
    jobs = plan.jobs  # what to prepare, as the plan counted it
    # the fit's ETA, then the whole training's; no report without a progress callback
    fit_eta = FitEta(epochs, plan.steps, plan.members, val_steps=0)
    job_eta = TrainingEta(plan, fit_eta, batch_size, batch_size, upper_bound=bool(patience))
    report = _JobProgress(progress, plan, job_eta) if progress is not None else None
    emit(report, "prepare", 0, len(jobs), "fitting normaliser", within=0.0, windows=0)
    normaliser = pl.fit_normaliser([r.every_nth(snapshot_every) for r in train_runs],
                                   pipeline_config)
    prepared = []
    all_windows = max(1, plan.windows)
    windows_before = 0
    for i, (run, phase, noise) in enumerate(jobs):
        check(cancel)
        what = (f"windows of {run.name}" + (f" (phase {phase})" if phase else "")
                + (f" ({noise.kind} noise)" if noise is not None else ""))

        def windows(event: ProgressEvent, i: int = i, before: int = windows_before,
                    what: str = what) -> None:
            if 0 < event.done < event.total:  # within a long run (its end is reported below)
                emit(report, "prepare", i, len(jobs), f"{what} ({event.done}/{event.total})",
                     within=min(1.0, (before + event.done) / all_windows),
                     windows=before + event.done)

        prepared.append(
            prepare_run(
                config, run, normaliser, pipeline_config, label_scheme, label_params,
                progress=windows if report is not None else None, cancel=cancel,
                snapshot_every=snapshot_every, phase=phase, noise=noise,
            )
        )
        windows_before += len(prepared[-1].snapshot_index)
        emit(report, "prepare", i + 1, len(jobs), what,
             within=min(1.0, windows_before / all_windows), windows=windows_before)
    n_train, n_val = len(train_runs), len(val_runs or [])
    tr, va = prepared[:n_train], prepared[n_train : n_train + n_val]
    phase0_windows = sum(len(p.snapshot_index) for p in tr)  # > 0: no run is empty
    x_train, y_train = _concat(tr + prepared[n_train + n_val :])  # every phase, concatenated once
    validation = _concat(va) if va else None
    steps = math.ceil(phase0_windows / batch_size)  # per epoch: one thinning's windows

    n_members = plan.members
    monitor = monitored_quantity(config, validation is not None)
    cycled = not (snapshot_phases == 1 and augmentation is None)
    # validation batches: of batch_size, or Keras's default of 32 when fit gets no batch_size
    val_batch = 32 if cycled else batch_size
    val_steps = math.ceil(len(validation[1]) / val_batch) if validation else 0
    # counted from the plan before the windows were made; now as made
    fit_eta.steps, fit_eta.n_members, fit_eta.val_steps = steps, n_members, val_steps
    job_eta.val_batch_size = val_batch
    forest_kw = {"n_trees": plan.trees, "min_samples_leaf": int(hp.get("forest_min_leaf", 1)),
                 "max_features": float(hp.get("forest_max_features", 1.0))}
    forest_calls = 1
    models, histories = [], []
    try:  # build and compile re-send their events while they run: stop that if they raise
        for m in range(n_members):
            who = member_label(m, n_members)
            emit(report, "build", m, n_members, f"{who + ': ' if who else ''}building the model",
                 member=m, n_members=n_members, within=0.0)
            if m == 0 and config.uses_forest and report is not None:
                # time the trees before the fit: its ETA
                from rul_core.models.heads import calibrate_forest

                width = int((hp.get("dense_units") or [32])[-1])
                per_tree, per_call = calibrate_forest(len(y_train), width, y_train, seed=seed,
                                                      **forest_kw)
                job_eta.forest_calibrated(per_tree, per_call)
                forest_calls = forest_chunks(per_tree * plan.trees)
            member_cfg = config.member(m) if n_members > 1 else config
            set_determinism(int(member_cfg.seed))
            model = build_model(member_cfg)
            callbacks: list[Any] = [] if not patience else [
                keras.callbacks.EarlyStopping(
                    monitor=monitor, mode="min", patience=patience, restore_best_weights=True
                ),
                keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor, mode="min", factor=0.5, patience=max(1, patience // 2),
                    min_lr=1e-6,
                ),
            ]
            sched = _schedule_callback(config, epochs)
            if sched is not None:
                callbacks.append(sched)
            callbacks.append(_progress_callback(report, cancel, epochs, steps, m, n_members,
                                                fit_eta, monitor, int(patience or 0)))
            data: dict[str, Any] = (
                {"x": model_x(x_train), "y": y_train, "batch_size": batch_size, "shuffle": True}
                if not cycled else
                {"x": cycled_batches(x_train, y_train, batch_size, int(member_cfg.seed)),
                 "steps_per_epoch": steps, "shuffle": False}
            )
            hist = model.fit(
                **data,
                validation_data=(model_x(validation[0]), validation[1]) if validation else None,
                epochs=epochs,
                callbacks=callbacks,
                verbose=0,
            )
            check(cancel)
            models.append(model)
            histories.append({k: [float(v) for v in vals] for k, vals in hist.history.items()})
    finally:
        if report is not None:
            report.quiet()

    forest = None
    if config.uses_forest:
        from rul_core.models.heads import fit_forest_head

        forest = fit_forest_head(
            models[0],
            model_x(x_train),
            y_train,
            seed=seed,
            progress=report,
            cancel=cancel,
            chunks=forest_calls,
            **forest_kw,
        )
        check(cancel)  # the trees do not check while a fit call runs

    trained = TrainedModel(
        config=config,
        models=models,
        normaliser=normaliser,
        pipeline_config=pipeline_config,
        label_scheme=label_scheme,
        label_params=label_params,
        forest=forest,
        history=histories,
        train_runs=[RunInfo.of(r) for r in train_runs],
        val_runs=[RunInfo.of(r) for r in (val_runs or [])],
        seed=seed,
        level=level,
        snapshot_every=snapshot_every,
        augmentation=augmentation,
    )
    trained.metrics["train_windows"] = float(len(y_train))
    if snapshot_phases > 1:
        trained.metrics["snapshot_phases"] = float(snapshot_phases)
    trained.metrics["epochs_run"] = float(len(histories[0].get("loss", [])))
    trained.metrics["patience"] = float(patience or 0)  # 0: a fixed budget
    if validation is not None:
        emit(report, "validate", 0, 1, "validation metrics")
        pred = predict_point_and_interval(
            models, config, model_x(validation[0]), forest=forest, level=level, seed=seed
        )
        y_val = validation[1]
        trained.metrics.update(
            {f"val_{k}": v for k, v in mt.point_metrics(y_val, pred["mean"]).items()}
        )
        trained.metrics.update(
            {
                f"val_{k}_uncalibrated": v
                for k, v in mt.interval_metrics(y_val, pred["lower"], pred["upper"], level).items()
            }
        )
        trained.interval_calibration = calibration_quantiles(
            nonconformity(y_val, pred["mean"], pred["lower"], pred["upper"])
        )
        emit(report, "validate", 1, 1, "validation metrics done")
    check(cancel)  # the last cancel point: a cancel after it finds the training finished
    return trained


def stopping_note(trained: TrainedModel) -> str:
    """One sentence when early stopping ended the training before its planned epochs (why the
    progress stopped short of them), e.g. 'Stopped early after 12 of 20 epochs: val_loss did
    not improve for 10 epochs; epoch 2's weights are kept.'; '' otherwise."""
    planned = int(trained.config.resolved().get("epochs", 0) or 0)
    patience = int(trained.metrics.get("patience", 0) or 0)
    runs = [len(h.get("loss", [])) for h in trained.history]
    if not planned or not patience or not runs or min(runs) >= planned:
        return ""
    monitor = monitored_quantity(trained.config, bool(trained.val_runs))
    why = f"{monitor} did not improve for {_epochs(patience)}"
    if len(runs) > 1:
        return (f"Stopped early: the {len(runs)} members trained {', '.join(map(str, runs))} of "
                f"{planned} epochs ({why}); each keeps its best epoch's weights.")
    values = trained.history[0].get(monitor) or []
    best = f"epoch {1 + int(np.argmin(values))}'s" if values else "the best epoch's"
    return f"Stopped early after {runs[0]} of {planned} epochs: {why}; {best} weights are kept."


# --------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------
def predict_inputs(
    trained: TrainedModel, inputs: list[np.ndarray], level: float | None = None
) -> dict[str, np.ndarray]:
    """Mean, lower, upper and std of prepared model inputs, with the calibrated interval.

    Every prediction the product shows goes through here, so the band is the same
    (conformally calibrated when the model was validated) on every page. The band is clipped
    to the labels' range [0, 1] (widened only to keep the mean inside it).
    """
    from rul_core.models import predict_point_and_interval
    from rul_core.models.intervals import calibrated

    level = trained.level if level is None else float(level)
    out = predict_point_and_interval(
        trained.models,
        trained.config,
        model_x(inputs),
        forest=trained.forest,
        level=level,
        seed=trained.seed,
    )
    out = calibrated(out, trained.interval_calibration, level)
    # labels live in [0, 1]: a band beyond that (wide calibrated bands do) claims nothing more
    mean = np.asarray(out["mean"], dtype=np.float64)
    out["lower"] = np.maximum(out["lower"], np.minimum(mean, 0.0))
    out["upper"] = np.minimum(out["upper"], np.maximum(mean, 1.0))
    return out


def quantile_band(quantile: float) -> tuple[float | None, str]:
    """(interval level, column) of ``predict_run`` output that holds the ``quantile``.

    0.5 is the point estimate (``rul``, level None: the model's default band). Below 0.5 it is
    the lower bound of the central band at level ``1 - 2q`` (``upper`` of level ``2q - 1``
    above 0.5): the ``q`` quantile when the band is calibrated and symmetric in probability.
    """
    q = float(quantile)
    if not 0.0 < q < 1.0:
        raise RulError(f"RUL estimate: quantile must lie strictly between 0 and 1, got {quantile}")
    if q == 0.5:
        return None, "rul"
    if q < 0.5:
        return 1.0 - 2.0 * q, "lower"
    return 2.0 * q - 1.0, "upper"


def predict_windows(
    trained: TrainedModel,
    run: Run,
    upto: int | None = None,
    level: float | None = None,
    with_labels: bool = False,
    quantiles: Sequence[float] = (),
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Per-window predictions of ``run`` (its first ``upto`` snapshots when given).

    Columns: snapshot, window, rul, lower, upper, std (and ``y_true`` with ``with_labels``,
    labelled with the model's own scheme over the *whole* run), and ``q<q>`` for each of
    ``quantiles``: the band bound that holds it (:func:`quantile_band`), from the same
    feature pass. A model trained on every N-th snapshot (``snapshot_every``) predicts every
    N-th snapshot counted back from the last one given; ``snapshot`` indexes ``run``.
    """
    level = trained.level if level is None else float(level)
    part = run
    if upto is not None:
        if upto < 1:
            raise RulError(f"predict: upto must be >= 1 snapshot, got {upto}")
        part = run.head(min(int(upto), run.n_snapshots))
    prep = prepare_run(
        trained.config,
        part,
        trained.normaliser,
        trained.pipeline_config,
        progress=progress,
        snapshot_every=trained.snapshot_every,
    )
    if len(prep.snapshot_index) == 0:
        raise RulError(f"predict: run {run.name} yields no windows")
    out = predict_inputs(trained, prep.inputs, level)
    df = pd.DataFrame(
        {
            "snapshot": prep.snapshot_index,
            "window": np.arange(len(prep.snapshot_index)),
            "rul": np.asarray(out["mean"], dtype=np.float64),
            "lower": np.asarray(out["lower"], dtype=np.float64),
            "upper": np.asarray(out["upper"], dtype=np.float64),
            "std": np.asarray(out["std"], dtype=np.float64),
        }
    )
    if with_labels:
        from rul_core import labels as lb

        per_snapshot = lb.label_run(run, trained.label_scheme, **trained.label_params)
        df["y_true"] = np.asarray(lb.window_labels(per_snapshot, prep.snapshot_index), float)
    for q in quantiles:
        q_level, column = quantile_band(q)
        band = out if q_level is None else predict_inputs(trained, prep.inputs, q_level)
        df[f"q{q:g}"] = np.asarray(band["mean" if column == "rul" else column], np.float64)
    return df


def aggregate_snapshots(windows: pd.DataFrame, run: Run) -> pd.DataFrame:
    """Mean over each snapshot's windows (quantile columns ``q<q>`` included); adds ``time_s``
    from the run's timestamps."""
    cols = [c for c in ("rul", "lower", "upper", "std", "y_true") if c in windows.columns]
    cols += [c for c in windows.columns if c.startswith("q")]
    agg = windows.groupby("snapshot", sort=True)[cols].mean().reset_index()
    ts = np.asarray(run.timestamps, dtype=np.float64)
    agg.insert(1, "time_s", ts[agg["snapshot"].to_numpy()])
    return agg


def predict_run(
    trained: TrainedModel, run: Run, upto: int | None = None, level: float = DEFAULT_LEVEL,
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """RUL estimate and interval at every snapshot recorded so far (the first ``upto``).

    One row per snapshot (per N-th snapshot counted back from ``upto`` for a model trained
    with ``snapshot_every`` N): snapshot, time_s, rul, lower, upper, std — the mean over the
    snapshot's windows. Only the snapshots up to ``upto`` are read, so no future data leaks.
    ``progress`` follows the feature extraction, the long part on a long run.
    """
    win = predict_windows(trained, run, upto=upto, level=level, progress=progress)
    return aggregate_snapshots(win, run)[["snapshot", "time_s", "rul", "lower", "upper", "std"]]


def copy_config(config: Any, **changes: Any) -> Any:
    """A ModelConfig with some fields changed (deep copy)."""
    from rul_core.models.presets import ModelConfig

    d = copy.deepcopy(config.to_dict())
    d.update(changes)
    return ModelConfig.from_dict(d)
