"""One progress fraction and one ETA for a whole job: a training across its stages, a
cross-validation across its folds.

**The fraction.** A job is a fixed sequence of stages (:class:`StagePlan`); each weighs the
seconds it is predicted to take on the reference machine (the project's 2-core AMD EPYC), from
the job's size and the per-unit costs below. The fraction done is the weight of the stages
finished plus the current stage's weight times its own fraction, over the total, and never
less than it was (:class:`OverallTracker`). A training (:func:`training_plan`) is:

* ``start`` (only in a child process, :mod:`rul_core.isolated`): spawning it and importing
  TensorFlow, Keras and what saving needs: :data:`START_S` (and :data:`FOREST_IMPORT_S` with
  the forest head);
* ``prepare``: the normaliser and every window's model inputs: ImR rasters and TF features
  (CARLE, Multimodal-RUL) or the filtered signal (RC-LSTM), :data:`PREPARE_MS` per window;
* per member (an ensemble's members one after the other, each through the three):
  ``build``, building the model (and, before the first, timing the forest head's trees):
  :attr:`ModelCosts.build_s`; ``compile``, its first batch's one-offs (tracing the training
  step): :attr:`ModelCosts.compile_s`; ``train``, every batch at :attr:`ModelCosts.window_ms`
  per training window and every epoch's end (a validation pass at :data:`FORWARD_SHARE` of
  that per window, and :data:`EPOCH_END_S` of callbacks), and the fit's later one-offs
  (:data:`FIT_ONEOFF_S`);
* ``forest`` (when the model has the forest head): one prediction pass over the training
  windows (:func:`prediction_s`) and the trees (:func:`tree_s`: :data:`TREE_FIXED_S` and
  :data:`TREE_NS` per sample x log2 sample x feature considered, each);
* ``validate`` (with validation runs): one prediction pass over them per member;
* ``finish`` (only in a child process): saving the bundle there and loading it back here
  while the child exits, :data:`FINISH_S`; ``save`` (``python -m rul_core train``): writing
  the bundle and cataloguing it, :data:`SAVE_S` (each with :data:`FOREST_IMPORT_S` more with
  the forest head).

``start``, ``build`` and ``compile`` report nothing while they run (imports, one call into
Keras): their events are sent again every :data:`rul_core.progress.HEARTBEAT_S` seconds with
the seconds since the stage began (:class:`rul_core.progress.Heartbeat`), and the fraction
within such a stage moves with that time against the stage's reference seconds, never past
:data:`TIMED_CAP` of it (a stage that runs late shows as a step when it ends, never as a
bar gone back).

The per-unit costs were measured by ``bench/train_eta.py --sections stages``
(``bench/results/train_eta.md``: each stage's planned and measured share of real trainings);
the one-offs are seconds, so on small jobs they are much of the time (a quick CARLE on the
demo data in a child process: its start about 30 %, its first batch 25 %). Another machine (a
GPU) or other sizes (``hparams``) shift the shares, never the order: the fraction still only
moves forward, and the ETA is this job's own.

**The ETA.** :class:`TrainingEta` adds up the seconds left stage by stage, each from this job's
own timings: the windows left at the rate measured so far, the fit's
(:class:`rul_core.progress.FitEta`), the forest's trees from a calibration fit before the
training (:func:`rul_core.models.heads.calibrate_forest`) and then from its own trees, and the
prediction passes (embedding, validation metrics) from the validation batches the fit timed.
A stage that cannot be estimated yet (the fit, while the windows are prepared) is named
instead of counted: 'windows ETA 3 s, then the fit, the forest head and the validation
metrics'. :class:`CrossValProgress` does the same for a cross-validation from its folds.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rul_core.progress import ProgressEvent

# ------------------------------------------------------------------------ reference costs


@dataclass(frozen=True)
class ModelCosts:
    """What one model and preset cost on the reference machine: ``build_s`` seconds to build
    it (until its fit starts), ``compile_s`` for its first batch beyond a steady one (tracing
    the training step), ``window_ms`` per training window in a steady batch."""

    build_s: float
    compile_s: float
    window_ms: float


#: Measured by ``bench/train_eta.py --sections stages`` (2-core AMD EPYC, shared) on the demo
#: data and a larger synthetic set; RC-LSTM and Multimodal-RUL paper: a 2-epoch training each
#: (RC-LSTM paper's build and first batch: 90 s together, split as the quick one's).
MODEL_COSTS: dict[tuple[str, str], ModelCosts] = {
    ("carle", "quick"): ModelCosts(0.3, 3.5, 0.35),
    ("carle", "paper"): ModelCosts(0.5, 4.0, 1.0),
    ("multimodal", "quick"): ModelCosts(0.3, 5.0, 3.0),
    ("multimodal", "paper"): ModelCosts(0.4, 7.0, 12.0),
    ("rc_lstm", "quick"): ModelCosts(0.1, 3.0, 1.6),
    ("rc_lstm", "paper"): ModelCosts(3.0, 87.0, 820.0),
}
#: Preparing one window's inputs, ms: ImR rasters and TF features, or the filtered signal
#: (measured 0.64-1.61 and 0.27).
PREPARE_MS = {"features": 1.0, "signal": 0.3}
#: A forward pass of a window against a training step's (forward and backward) cost
#: (measured 0.2-0.36).
FORWARD_SHARE = 0.3
#: A prediction pass's one-off (tracing its function), seconds (measured 0.23-0.69).
PREDICT_ONEOFF_S = 0.4
#: A prediction pass's one-off against the first validation batch's (the test step's
#: tracing) that the fit timed (measured 0.3-1.2), and against the first training batch's
#: when no validation pass was timed (measured 0.08-0.32).
PREDICT_VS_TEST_ONEOFF = 0.6
PREDICT_TRACE_SHARE = 0.2
#: The callbacks at an epoch's end, seconds.
EPOCH_END_S = 0.03
#: A member's fit's one-offs after its first batch (the first validation pass's tracing, the
#: second epoch's set-up), seconds (measured 0.3-1.3).
FIT_ONEOFF_S = 0.5
#: One tree of the forest head: a fixed cost (s) and ns per sample x log2(samples) x feature
#: considered (measured on trained embeddings: 0.8 ms a tree of 144 x 8, 3 ms of 1200 x 32).
TREE_FIXED_S = 0.0005
TREE_NS = 8.0
#: A child process's start (spawn, importing TensorFlow and Keras: measured 2.6-3.5 s) and its
#: hand-over (saving the bundle there, loading it back here while the child exits: 0.2-0.5 s),
#: seconds.
START_S = 3.0
FINISH_S = 0.4
#: ``python -m rul_core train``'s saving of the bundle and cataloguing it, seconds.
SAVE_S = 0.4
#: A model with the forest head also imports its format's library (skops.io: measured 0.6-1.0
#: s) in the child's start, and in the process that saves or loads it first.
FOREST_IMPORT_S = 0.7
#: The stages of a job around its training, run by whoever runs the training (a child
#: process's start and hand-over, the command line's saving): :class:`WrappedTraining`.
OUTER_STAGES = ("start", "finish", "save")
#: The share of a stage that reports nothing while it runs (``Stage.timed``) that its time
#: alone can fill: the rest waits for the stage's end.
TIMED_CAP = 0.9


def model_costs(config: Any) -> ModelCosts:
    """The reference costs of ``config``'s model and preset (quick's for an unknown one)."""
    return MODEL_COSTS.get((config.name, config.preset), MODEL_COSTS[(config.name, "quick")])


def prediction_s(config: Any, n_windows: int) -> float:
    """Reference seconds of one prediction pass over ``n_windows`` windows."""
    per_window = model_costs(config).window_ms * FORWARD_SHARE / 1000.0
    return PREDICT_ONEOFF_S + n_windows * per_window


def tree_s(n_samples: int, n_features: float) -> float:
    """Reference seconds of one forest tree on ``n_samples`` samples of ``n_features``."""
    n = max(2, int(n_samples))
    return TREE_FIXED_S + TREE_NS * 1e-9 * n * math.log2(n) * max(1.0, n_features)


# ------------------------------------------------------------------------ stages and fraction


@dataclass(frozen=True)
class Stage:
    """One stage of a job: its ``weight`` (reference seconds), of which ``oneoff`` is paid at
    the start of each of its ``units`` (the forest's embedding pass): counted done with the
    unit's first item, the rest in proportion to the items done.

    ``repeats`` > 1: the stage is run once by each of that many ensemble members, and the
    stages next to it with the same ``repeats`` run with it member by member (build, compile
    and train the first, then the second, ...); its events name their member
    (``extra["member"]``, from 0). ``timed``: the stage reports nothing while it runs; its
    events carry the seconds since it began (``extra["elapsed_s"]``), which move it against
    its reference seconds (:meth:`timed_within`)."""

    name: str
    weight: float
    oneoff: float = 0.0
    units: int = 1
    repeats: int = 1
    timed: bool = False

    def timed_within(self, elapsed_s: float) -> float:
        """The fraction of one run of this stage (one member's, with ``repeats``) done after
        ``elapsed_s`` seconds, by its reference seconds: at most :data:`TIMED_CAP`."""
        per_run = self.weight / max(1, self.repeats)
        if per_run <= 0:
            return 0.0
        return min(TIMED_CAP, max(0.0, float(elapsed_s)) / per_run)

    def within(self, done: int, total: int) -> float:
        """The fraction of this stage done after ``done`` of its ``total`` items."""
        if total <= 0:
            return 1.0
        done = min(max(int(done), 0), int(total))
        share = min(1.0, self.oneoff / self.weight) if self.weight > 0 else 0.0
        started = -(-done * self.units // total) / self.units  # units whose first item is done
        return share * started + (1.0 - share) * done / total


@dataclass(frozen=True)
class StagePlan:
    """A job's stages in order."""

    stages: tuple[Stage, ...]

    @property
    def total(self) -> float:
        """Every stage's weight."""
        return sum(s.weight for s in self.stages)

    def names(self) -> list[str]:
        """The stages' names, in order."""
        return [s.name for s in self.stages]

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name`` (None: not in this plan)."""
        return next((s for s in self.stages if s.name == name), None)

    def fraction(self, name: str, within: float, unit: int = 0) -> float | None:
        """The job's fraction done when stage ``name`` is ``within`` done (None: not a stage
        of this plan); for a stage run by each member (``repeats``), ``within`` is the share
        of member ``unit``'s run of it."""
        total = self.total
        within = min(1.0, max(0.0, float(within)))
        before, i = 0.0, 0
        while i < len(self.stages):
            s = self.stages[i]
            group = [s]
            if s.repeats > 1:  # the stages the members run through one after the other
                while (i + len(group) < len(self.stages)
                       and self.stages[i + len(group)].repeats == s.repeats):
                    group.append(self.stages[i + len(group)])
            if any(g.name == name for g in group):
                if total <= 0:
                    return 1.0
                n = s.repeats
                at = before + min(max(int(unit), 0), n - 1) * sum(g.weight for g in group) / n
                for g in group:
                    if g.name == name:
                        return min(1.0, (at + g.weight / n * within) / total)
                    at += g.weight / n
            before += sum(g.weight for g in group)
            i += len(group)
        return None


class OverallTracker:
    """The fraction of a job done, from its events: never less than reported before. An
    event's ``extra["within"]`` (the fraction of its stage done) overrides its stage's own
    count (:meth:`Stage.within` of ``done``/``total``, over every member's items for a stage
    run by each member), and a timed stage's ``extra["elapsed_s"]`` moves it by the time
    (:meth:`Stage.timed_within`); events of stages the plan does not know leave it where it
    is."""

    def __init__(self, plan: StagePlan) -> None:
        self.plan = plan
        self.value = 0.0

    def advance(self, value: float) -> float:
        """Move to ``value`` unless it was further already; return the fraction done."""
        self.value = max(self.value, min(1.0, float(value)))
        return self.value

    def nested(self, inner: float) -> float:
        """The fraction done when the training a job wraps (the plan's stages but its
        :data:`OUTER_STAGES`: a child process's start and hand-over, the command line's
        saving) reports its own fraction ``inner``."""
        total = self.plan.total
        outer = sum(s.weight for s in self.plan.stages if s.name in OUTER_STAGES)
        before = 0.0
        for s in self.plan.stages:
            if s.name not in OUTER_STAGES:
                break
            before += s.weight
        if total <= 0:
            return self.value
        return self.advance((before + min(1.0, max(0.0, inner)) * (total - outer)) / total)

    def update(self, event: ProgressEvent) -> float:
        """Take ``event`` into account; return the fraction done."""
        stage = self.plan.stage(event.stage)
        if stage is None:
            return self.value
        unit = int(event.extra.get("member") or 0) if stage.repeats > 1 else 0
        within = event.extra.get("within")
        if within is None and stage.timed and "elapsed_s" in event.extra:
            within = stage.timed_within(float(event.extra["elapsed_s"]))
        if within is None:
            within = stage.within(event.done, event.total)
            if stage.repeats > 1:  # done/total count every member's items
                within = within * stage.repeats - unit
        value = self.plan.fraction(event.stage, float(within), unit)
        if value is not None:
            self.value = max(self.value, value)
        return self.value


# ------------------------------------------------------------------------ training plan


def _windows(run: Any, every: int, phase: int, pipeline_config: Any) -> int:
    """Windows :func:`rul_core.training.prepare_run` makes of ``run`` at ``phase``."""
    from rul_core.data.run import every_nth_from_last
    from rul_core.signal.windows import windows_per_snapshot

    kept = every_nth_from_last(max(0, run.n_snapshots - int(phase)), every).size
    try:
        per = windows_per_snapshot(run.n_samples, pipeline_config.window_length,
                                   pipeline_config.stride)
    except ValueError:  # a window longer than the snapshot: train() says so
        per = 0
    return int(kept) * int(per)


@dataclass(frozen=True)
class TrainingPlan:
    """What a training will do, counted before it starts, and its stages' weights."""

    stages: StagePlan
    job_windows: tuple[int, ...]  # windows of each preparation job, in order
    n_train: int  # training windows (every phase and noisy copy)
    n_val: int
    steps: int  # batches per epoch
    epochs: int
    members: int
    trees: int  # 0: no forest head
    features: float  # features each forest split considers
    # what train() prepares, in order: (run, phase, noise model or None)
    jobs: tuple[tuple[Any, int, Any], ...] = field(default=(), repr=False, compare=False)

    @property
    def windows(self) -> int:
        """Windows prepared in all."""
        return sum(self.job_windows)


def training_plan(
    config: Any,
    train_runs: Sequence[Any],
    val_runs: Sequence[Any] | None = None,
    *,
    isolated: bool = False,
    save: bool = False,
    epochs: int | None = None,
    batch_size: int | None = None,
    snapshot_every: int = 1,
    snapshot_phases: int = 1,
    augmentation: Any | None = None,
    pipeline_config: Any | None = None,
    seed: int | None = None,
    **_other: Any,
) -> TrainingPlan:
    """The stages of ``rul_core.training.train(config, train_runs, val_runs=..., ...)`` with
    their weights (module docstring), from the same arguments (those that do not change the
    work, such as the labels, are ignored); ``isolated``: in a child process
    (:func:`rul_core.isolated.train_isolated`), with its start and hand-over; ``save``: then
    saved as a bundle and catalogued (``python -m rul_core train``). Its ``jobs`` are the
    preparation jobs ``train`` works through (:func:`rul_core.training.preparation_jobs`)."""
    from rul_core.training import default_pipeline_config, preparation_jobs

    val_runs = list(val_runs or [])
    hp = config.resolved()
    epochs = int(epochs if epochs is not None else hp.get("epochs", 20))
    batch_size = max(1, int(batch_size if batch_size is not None else hp.get("batch_size", 32)))
    every = max(1, int(snapshot_every))
    pipeline_config = pipeline_config or default_pipeline_config(config)
    jobs = tuple(preparation_jobs(list(train_runs), val_runs, max(1, int(snapshot_phases)),
                                  augmentation, int(config.seed if seed is None else seed)))
    job_windows = tuple(_windows(run, every, phase, pipeline_config) for run, phase, _ in jobs)
    n_fit, n_val = len(train_runs), len(val_runs)
    phase0 = sum(job_windows[:n_fit])
    n_train = phase0 + sum(job_windows[n_fit + n_val:])
    n_val_windows = sum(job_windows[n_fit:n_fit + n_val])
    steps = max(1, math.ceil(phase0 / batch_size))
    members = int(config.n_members) if config.interval == "ensemble" else 1
    trees = int(hp.get("forest_trees", 800)) if config.uses_forest else 0
    dense = hp.get("dense_units") or [32]
    features = float(dense[-1]) * float(hp.get("forest_max_features", 1.0))

    costs = model_costs(config)
    kind = "signal" if config.name == "rc_lstm" else "features"
    per_window = costs.window_ms / 1000.0
    epoch_s = (steps * batch_size * per_window + EPOCH_END_S
               + n_val_windows * per_window * FORWARD_SHARE)
    forest_import = FOREST_IMPORT_S if config.uses_forest else 0.0
    stages = [Stage("start", START_S + forest_import, timed=True)] if isolated else []
    stages.append(Stage("prepare", sum(job_windows) * PREPARE_MS[kind] / 1000.0))
    stages += [Stage("build", members * costs.build_s, repeats=members, timed=True),
               Stage("compile", members * costs.compile_s, repeats=members, timed=True),
               Stage("train", members * (epochs * epoch_s + FIT_ONEOFF_S), repeats=members)]
    if trees:
        embed = prediction_s(config, n_train)
        stages.append(Stage("forest", embed + trees * tree_s(n_train, features), oneoff=embed))
    if n_val:
        stages.append(Stage("validate", members * prediction_s(config, n_val_windows)))
    if isolated:
        stages.append(Stage("finish", FINISH_S + forest_import))
    if save:
        stages.append(Stage("save", SAVE_S + forest_import))
    return TrainingPlan(StagePlan(tuple(stages)), job_windows, n_train, n_val_windows, steps,
                        epochs, members, trees, features, jobs)


def scoring_weight(config: Any, held_runs: Sequence[Any], snapshot_every: int = 1,
                   pipeline_config: Any | None = None, **_other: Any) -> float:
    """Reference seconds of scoring a fold: preparing its held-out bearings' windows and
    predicting them (:func:`rul_core.evaluation.evaluate`)."""
    from rul_core.training import default_pipeline_config

    pipeline_config = pipeline_config or default_pipeline_config(config)
    windows = sum(_windows(r, max(1, int(snapshot_every)), 0, pipeline_config)
                  for r in held_runs)
    kind = "signal" if config.name == "rc_lstm" else "features"
    members = int(config.n_members) if config.interval == "ensemble" else 1
    return (windows * PREPARE_MS[kind] / 1000.0
            + members * prediction_s(config, windows) * len(held_runs))


# ------------------------------------------------------------------------ training ETA

#: How the ETA names a stage it cannot estimate yet, and what a time covers.
_THEN = {"prepare": "the windows", "train": "the fit", "forest": "the forest head",
         "validate": "the validation metrics"}
_SCOPE = {"prepare": "windows", "train": "fit", "forest": "forest head",
          "validate": "validation metrics"}


@dataclass(frozen=True)
class Estimate:
    """Seconds left (None: estimating), whether early stopping may end sooner, and the stages
    still to come the seconds leave out, named, with what the seconds cover."""

    eta_s: float | None
    upper_bound: bool = False
    then: tuple[str, ...] = ()
    scope: str = ""

    def extra(self) -> dict[str, Any]:
        """The event ``extra`` keys that carry it (:data:`rul_core.progress.ETA_KEYS`)."""
        return {"eta_s": self.eta_s, "eta_upper_bound": self.upper_bound,
                "eta_then": list(self.then), "eta_scope": self.scope}


class WrappedTraining:
    """The ProgressFn of a job that runs a training (:func:`rul_core.training.train`, whose
    events carry its own fraction done and ETA) with stages of its own around it (the plan's
    :data:`OUTER_STAGES`: a child process's start and hand-over, the command line's saving of
    the bundle): each event passed on with the whole job's fraction (``overall``) and the
    training's ETA plus the reference seconds of the stages after it. The start's events
    say 'estimating…' (no basis yet), the stages after the training show no ETA."""

    def __init__(self, progress: Any, plan: StagePlan) -> None:
        self.progress = progress
        self.tracker = OverallTracker(plan)
        names = plan.names()
        inner = [i for i, n in enumerate(names) if n not in OUTER_STAGES]
        after = plan.stages[inner[-1] + 1:] if inner else ()
        self.after_s = sum(s.weight for s in after)

    def __call__(self, event: ProgressEvent) -> None:
        from rul_core.progress import ETA_KEYS, OVERALL

        extra = dict(event.extra)
        if event.stage in OUTER_STAGES:
            extra[OVERALL] = self.tracker.update(event)
            if event.stage == "start":
                extra.update(Estimate(None).extra())
            else:
                for key in ETA_KEYS:
                    extra.pop(key, None)
        elif OVERALL in extra:
            extra[OVERALL] = self.tracker.nested(float(extra[OVERALL]))
            if isinstance(extra.get("eta_s"), (int, float)):
                extra["eta_s"] = float(extra["eta_s"]) + self.after_s
        self.progress(ProgressEvent(event.stage, event.done, event.total, event.message, extra))


@dataclass
class TrainingEta:
    """Seconds left in a training, stage by stage, from its own timings (module docstring).

    Report its course with the times of one clock: :meth:`windows_done` while preparing,
    the fit through ``fit`` (a :class:`rul_core.progress.FitEta`), :meth:`forest_calibrated`
    and :meth:`trees_done` for the forest head, :meth:`stage_started` when a stage begins;
    :meth:`estimate` gives the ETA at a time during a stage. ``batch_size`` and
    ``val_batch_size`` are the fit's training and validation batch sizes.
    """

    plan: TrainingPlan
    fit: Any  # FitEta
    batch_size: int
    val_batch_size: int
    upper_bound: bool = False
    _marks: dict[str, float] = field(default_factory=dict, init=False)  # last report, by stage
    _windows: int = field(default=0, init=False)
    _windows_t: float | None = field(default=None, init=False)
    _tree_cal: tuple[float, float] | None = field(default=None, init=False)  # per tree, per call
    _trees: int = field(default=0, init=False)
    _trees_s: float = field(default=0.0, init=False)
    _embedded: bool = field(default=False, init=False)
    _fit_over: bool = field(default=False, init=False)

    def stage_started(self, stage: str, t: float) -> None:
        """Stage ``stage`` began at ``t`` (the fit is over once the forest or the validation
        starts)."""
        if stage not in self._marks:
            self._marks[stage] = t
        if stage in ("forest", "validate"):
            self._fit_over = True

    def windows_done(self, windows: int, t: float) -> None:
        """``windows`` windows were prepared by ``t``."""
        self._windows, self._windows_t = int(windows), t

    def forest_calibrated(self, per_tree_s: float, per_call_s: float) -> None:
        """The forest's trees cost ``per_tree_s`` each and ``per_call_s`` per fit call
        (:func:`rul_core.models.heads.calibrate_forest`)."""
        self._tree_cal = (max(0.0, per_tree_s), max(0.0, per_call_s))

    def embedded(self, t: float) -> None:
        """The forest's embedding pass ended at ``t``."""
        self._embedded, self._marks["forest"] = True, t

    def trees_done(self, trees: int, seconds: float, t: float) -> None:
        """``trees`` trees of the forest were fitted in ``seconds`` (all calls so far), the
        last at ``t``."""
        self._trees, self._trees_s, self._marks["forest"] = int(trees), float(seconds), t

    # -- each stage's seconds left, None when not estimable ------------------------------
    def _prediction(self, n_windows: int) -> float | None:
        """Seconds of one prediction pass over ``n_windows``, from the fit's timings."""
        costs = self.fit.prediction_costs()
        if costs is not None:
            oneoff, per_batch = costs
            oneoff *= PREDICT_VS_TEST_ONEOFF
            per_window = per_batch / max(1, self.val_batch_size)
        else:
            batch = self.fit.batch_cost()
            first = self.fit.first_batch_oneoff()
            if batch is None or first is None:
                return None
            per_window = batch / max(1, self.batch_size) * FORWARD_SHARE
            oneoff = first * PREDICT_TRACE_SHARE
        return oneoff + n_windows * per_window

    def _prepare_left(self, t: float) -> float | None:
        start = self._marks.get("prepare")  # set once: only the forest's mark moves
        if start is None or self._windows <= 0 or self._windows_t is None:
            return None
        rate = (self._windows_t - start) / self._windows
        return max(0.0, (self.plan.windows - self._windows) * rate - (t - self._windows_t))

    def _forest_left(self) -> float | None:
        embed = 0.0 if self._embedded else self._prediction(self.plan.n_train)
        left = self.plan.trees - self._trees
        if self._trees > 0:
            trees = self._trees_s / self._trees * left
        elif self._tree_cal is not None:
            per_tree, per_call = self._tree_cal
            trees = per_tree * left + per_call * forest_chunks(per_tree * left)
        else:
            return None
        return None if embed is None else embed + trees

    def _validate_left(self) -> float | None:
        one = self._prediction(self.plan.n_val)
        return None if one is None else self.plan.members * one

    def estimate(self, stage: str, t: float) -> Estimate:
        """The ETA at ``t`` during ``stage`` (one of the plan's; a member's build and first
        batch are the fit's: estimating until its batches give a basis, then what the fit
        timed for the members still to come)."""
        stage = "train" if stage in ("build", "compile") else stage
        order = [s for s in ("prepare", "train", "forest", "validate")
                 if self.plan.stages.stage(s) is not None]
        if stage not in order:
            return Estimate(None)
        upper = self.upper_bound and not self._fit_over
        total, known = 0.0, []
        for name in order[order.index(stage):]:
            left = {"prepare": lambda: self._prepare_left(t),
                    "train": lambda: 0.0 if self._fit_over else self.fit.eta(),
                    "forest": self._forest_left, "validate": self._validate_left}[name]()
            if left is not None and name == stage and name in ("forest", "validate"):
                left = max(0.0, left - (t - self._marks.get(name, t)))  # since its last report
            if left is None:
                if not known or total <= 0.0:  # nothing to count before it: no '0 s, then'
                    return Estimate(None, upper)
                rest = order[order.index(name):]
                return Estimate(total, upper, tuple(_THEN[n] for n in rest),
                                " + ".join(_SCOPE[n] for n in known))
            total += left
            known.append(name)
        return Estimate(total, upper)


def forest_chunks(seconds: float) -> int:
    """Fit calls the forest's trees are split into: one a second or so (progress, cancel
    checks), at most 20, one when they take under 2 s."""
    return 1 if seconds < 2.0 else min(20, math.ceil(seconds))


# ------------------------------------------------------------------------ cross-validation


@dataclass
class _Fold:
    """What the cross-validation knows of one fold."""

    train_w: float
    score_w: float
    state: str = "waiting"  # waiting | training | scoring | done
    started: float = 0.0
    scoring: float = 0.0
    ended: float = 0.0
    fraction: float = 0.0
    eta_s: float | None = None
    eta_t: float = 0.0
    eta_partial: bool = False
    upper_bound: bool = False
    message: str = ""

    @property
    def weight(self) -> float:
        return self.train_w + self.score_w


class CrossValProgress:
    """A cross-validation's fraction done, ETA and one progress line, from its folds.

    ``weights``: each fold's (training, scoring) reference seconds (:func:`training_plan`,
    :func:`scoring_weight`); ``jobs`` folds train at once. Report each fold's course with
    the times of one clock: :meth:`started`, :meth:`event` (its training's events, which
    carry its own fraction done and ETA), :meth:`scoring`, :meth:`finished`.

    The ETA: a training fold has its own ETA left, counted down since its event, plus its
    scoring; a scoring fold what is left of its scoring; a waiting fold the seconds per
    weight the folds showed (those done, start to scored; before one, those training, as
    their time so far plus their ETA) times its weight. The waiting folds take the first
    free of the ``jobs`` places, and the ETA is when the last place is free. Scoring is
    timed on the folds scored, or before one at the fold's own pace times its weights'
    ratio. 'estimating' until a fold gives a basis; '≤' while a fold may stop early.
    """

    def __init__(self, weights: Sequence[tuple[float, float]], jobs: int = 1) -> None:
        self.folds = [_Fold(float(a), float(b)) for a, b in weights]
        self.jobs = max(1, int(jobs))
        self._value = 0.0

    # -- course --------------------------------------------------------------------------
    def started(self, i: int, t: float, message: str = "") -> None:
        """Fold ``i`` (from 0) starts training at ``t`` (once)."""
        f = self.folds[i]
        if f.state == "waiting":
            f.state, f.started, f.message = "training", t, message

    def event(self, i: int, event: ProgressEvent, t: float) -> None:
        """Fold ``i``'s training reported ``event`` at ``t``."""
        f = self.folds[i]
        if f.state == "waiting":
            self.started(i, t)
        overall = event.extra.get("overall")
        if overall is not None:
            f.fraction = max(f.fraction, min(1.0, float(overall)))
        if "eta_s" in event.extra:
            eta = event.extra.get("eta_s")
            f.eta_s = float(eta) if isinstance(eta, (int, float)) else None
            f.eta_t = t
            f.eta_partial = bool(event.extra.get("eta_then"))
            f.upper_bound = bool(event.extra.get("eta_upper_bound"))
        f.message = event.message or f.message

    def scoring(self, i: int, t: float, message: str = "") -> None:
        """Fold ``i`` finished training at ``t`` and is being scored."""
        f = self.folds[i]
        f.state, f.scoring, f.fraction = "scoring", t, 1.0
        f.eta_s, f.upper_bound, f.message = None, False, message or "scoring"

    def finished(self, i: int, t: float) -> None:
        """Fold ``i`` was scored at ``t``."""
        f = self.folds[i]
        if not f.scoring:
            f.scoring = t
        f.state, f.ended, f.fraction = "done", t, 1.0

    # -- views ---------------------------------------------------------------------------
    def overall(self) -> float:
        """The fraction of the whole run done (never less than before)."""
        total = sum(f.weight for f in self.folds)
        if total <= 0:
            return self._value
        done = sum(f.train_w * f.fraction + f.score_w * (f.state == "done")
                   for f in self.folds)
        self._value = max(self._value, min(1.0, done / total))
        return self._value

    def _train_left(self, f: _Fold, t: float) -> float | None:
        if f.eta_s is None or f.eta_partial:
            return None
        return max(0.0, f.eta_s - (t - f.eta_t))

    def _rates(self, t: float) -> tuple[float | None, float | None]:
        """(seconds per weight of a whole fold, seconds per weight of scoring)."""
        done = [f for f in self.folds if f.state == "done"]
        scored = [f for f in self.folds if f.state == "done" and f.score_w > 0]
        score_rate = (sum(f.ended - f.scoring for f in scored) / sum(f.score_w for f in scored)
                      if scored else None)
        if done:
            return sum(f.ended - f.started for f in done) / sum(f.weight for f in done), \
                score_rate
        sums = [0.0, 0.0]
        for f in self.folds:
            left = self._train_left(f, t) if f.state == "training" else None
            if left is not None and f.train_w > 0:
                train_s = (t - f.started) + left
                sums[0] += train_s * f.weight / f.train_w
                sums[1] += f.weight
        return (sums[0] / sums[1] if sums[1] else None), score_rate

    def _left(self, f: _Fold, t: float, rate: float | None,
              score_rate: float | None) -> float | None:
        """Seconds until fold ``f`` is scored."""
        if f.state == "done":
            return 0.0
        if f.state == "scoring":
            pace = score_rate if score_rate is not None else rate
            if pace is None:
                return None
            return max(0.0, pace * f.score_w - (t - f.scoring))
        left = self._train_left(f, t)
        if left is None:
            return None if rate is None else max(0.0, rate * f.weight - (t - f.started))
        if score_rate is not None:
            score = score_rate * f.score_w
        elif f.train_w > 0:
            score = ((t - f.started) + left) * f.score_w / f.train_w
        else:
            score = 0.0
        return left + score

    def estimate(self, t: float) -> Estimate:
        """The whole run's ETA at ``t``."""
        rate, score_rate = self._rates(t)
        places: list[float] = []
        for f in self.folds:
            if f.state in ("training", "scoring"):
                left = self._left(f, t, rate, score_rate)
                if left is None:
                    return Estimate(None)
                places.append(left)
        waiting = [f for f in self.folds if f.state == "waiting"]
        if waiting and rate is None:
            return Estimate(None)
        places += [0.0] * max(0, self.jobs - len(places))
        heapq.heapify(places)
        for f in waiting:
            heapq.heappush(places, heapq.heappop(places) + rate * f.weight)  # type: ignore[operator]
        upper = any(f.upper_bound for f in self.folds if f.state == "training")
        return Estimate(max(places, default=0.0), upper)

    def line(self) -> str:
        """One progress line of the whole run, the same shape whichever fold reported last:
        '1/4 folds done · fold 2: epoch 3/20 loss 0.41 · 2 waiting' (', 2 at
        once' after 'done' when folds train side by side)."""
        n = len(self.folds)
        parts = [f"{sum(f.state == 'done' for f in self.folds)}/{n} folds done"
                 + (f", {self.jobs} at once" if self.jobs > 1 else "")]
        parts += [f"fold {i + 1}: {f.message}" if f.message else f"fold {i + 1}"
                  for i, f in enumerate(self.folds) if f.state in ("training", "scoring")]
        waiting = sum(f.state == "waiting" for f in self.folds)
        if waiting:
            parts.append(f"{waiting} waiting")
        return " · ".join(parts)
