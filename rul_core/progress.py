"""Progress reporting and cancellation shared by every long operation.

Long functions take ``progress: ProgressFn | None`` and ``cancel: CancelToken | None``.
They call ``emit(progress, stage, done, total)`` as they go and ``check(cancel)`` between
units of work; ``check`` raises :class:`rul_core.errors.Cancelled`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import fmean
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

#: The key of an event's ``extra`` holding the fraction of its whole job done (a training
#: across its stages, a cross-validation across its folds): it only moves forward.
OVERALL = "overall"

#: tqdm's bar without its own remaining-time guess, for stages that carry an ``eta_s``:
#: tqdm's rate counts the first batch's one-off tracing against every batch to come.
ESTIMATED_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


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


#: Seconds between the events :class:`Heartbeat` re-sends while a stage reports nothing.
HEARTBEAT_S = 0.5


def ticked(event: ProgressEvent, elapsed_s: float) -> ProgressEvent:
    """``event`` of a stage that reports nothing while it runs, sent again ``elapsed_s``
    seconds after it began: ``extra["elapsed_s"]`` holds the seconds (its ``within``, if any,
    is dropped: the time says how far the stage is) and the message shows them from the first
    whole second on ('compiling (first batch) · 3 s')."""
    extra = {k: v for k, v in event.extra.items() if k != "within"}
    extra["elapsed_s"] = max(0.0, float(elapsed_s))
    seconds = int(elapsed_s)
    message = f"{event.message} · {seconds} s" if seconds >= 1 else event.message
    return ProgressEvent(event.stage, event.done, event.total, message, extra)


class Heartbeat:
    """Keeps a stage that reports nothing while it runs visibly alive: after :meth:`start`
    with the stage's event, ``send(event, elapsed_s)`` is called every :data:`HEARTBEAT_S`
    seconds from a daemon thread, with the seconds since :meth:`start`, until :meth:`stop`
    (or the next :meth:`start`). :meth:`stop` returns once no call is running, so an event
    sent after it is never followed by a late one of the stage before."""

    def __init__(self, send: Callable[[ProgressEvent, float], None]) -> None:
        self._send = send
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, event: ProgressEvent) -> None:
        """Re-send ``event`` from now on."""
        self.stop()
        stop, every, t0 = threading.Event(), float(HEARTBEAT_S), time.perf_counter()

        def beat() -> None:
            while not stop.wait(every):
                self._send(event, time.perf_counter() - t0)

        self._stop = stop
        self._thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop re-sending (waits for a call in progress)."""
        if self._thread is not None and self._stop is not None:
            self._stop.set()
            if self._thread is not threading.current_thread():
                self._thread.join()
        self._thread = self._stop = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None


def check(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if the token was cancelled."""
    if cancel is not None and cancel.cancelled:
        raise Cancelled("operation cancelled by the user")


def _mean_or_zero(values: list[float]) -> float:
    return fmean(values) if values else 0.0


class FitEta:
    """Seconds left in a training fit, estimated from its own timings without its one-off costs.

    A fit is ``n_members`` models trained in turn, each for ``epochs`` epochs of ``steps``
    batches, every epoch followed by its end (the validation pass, when there is one, and the
    callbacks). Report each event with its time (seconds on any one clock) as it happens:
    :meth:`member_begin`, :meth:`batch_end`, :meth:`val_batch_end`, :meth:`epoch_end`,
    :meth:`member_end` (a member may stop before its planned epochs);
    :meth:`eta` is the estimate at the last of them, None while there is no sound basis yet
    (fewer than ``min_batches`` batch costs measured).

    A member's first batch carries the tracing of the training step and the data pipeline's
    warm-up, its first validation batch the tracing of the test step, and (Keras on
    TensorFlow) the first batch of its second epoch another set-up: one-off costs, often many
    times a batch, that a plain average spreads over every batch still to come (a quick
    CARLE on the demo data read 60 times its real remaining time after its first batch). So
    the fit is split into costs measured apart, each from the previous event's end:

    * a batch: the mean of the recent batches after an epoch's first (an epoch of one batch:
      the epoch starts below, counted as plain batches);
    * an epoch's end (validation, callbacks): the mean of the ends after each member's first;
      before one, the first with its first validation batch counted at the mean of its others
      (at most a batch when it had none); before any, ``val_steps`` batches (a prediction
      costs less than a training batch);
    * an epoch's start (its first batch, less a batch): the mean of the starts after each
      member's second epoch's, 0 before one.

    Each member still to start adds the one-off excess the started members showed. Early
    stopping can only end the fit sooner: the estimate covers every epoch planned.
    """

    def __init__(self, epochs: int, steps: int, n_members: int = 1, val_steps: int = 0,
                 min_batches: int = 2, window: int = 200) -> None:
        self.epochs, self.steps, self.n_members = int(epochs), int(steps), int(n_members)
        self.val_steps = int(val_steps)
        self.min_batches = max(1, int(min_batches))
        self.member = -1
        self._member_over = False
        self.batches_in_epoch = 0
        self.epochs_started = 0  # epochs of this member whose first batch ended
        self.epochs_ended = 0
        self._mark: float | None = None
        self._pending_val: list[float] = []
        self._batches: deque[float] = deque(maxlen=int(window))  # later batches of an epoch
        self._starts: list[float] = []  # first batches of epochs 3, 4, ...
        self._ends: list[float] = []  # epoch ends 2, 3, ...
        self._warm_batches: list[float] = []  # each member's first batch
        self._warm_starts: list[float] = []  # each member's second epoch's first batch
        self._warm_ends: list[tuple[float, list[float]]] = []  # first ends (cost, val batches)
        self._later_vals: list[list[float]] = []  # the validation batches of later ends

    def member_begin(self, t: float) -> None:
        """The next member's fit starts (before its first batch)."""
        self.member += 1
        self.batches_in_epoch = self.epochs_started = self.epochs_ended = 0
        self._member_over = False
        self._mark, self._pending_val = t, []

    def member_end(self) -> None:
        """This member's fit is over, maybe before its planned epochs (early stopping): none
        of its epochs is still to come."""
        self._member_over = True

    def _since_mark(self, t: float) -> float:
        if self._mark is None:
            raise RuntimeError("FitEta: member_begin() must come first")
        return max(0.0, t - self._mark)

    def batch_end(self, t: float) -> None:
        """A training batch ended at ``t``."""
        dt = self._since_mark(t)
        if self.batches_in_epoch:
            self._batches.append(dt)
        else:  # an epoch's first batch
            self.epochs_started += 1
            {1: self._warm_batches, 2: self._warm_starts}.get(self.epochs_started,
                                                               self._starts).append(dt)
        self.batches_in_epoch += 1
        self._mark, self._pending_val = t, []

    def val_batch_end(self, t: float) -> None:
        """A validation batch (of the pass after an epoch's batches) ended at ``t``."""
        self._pending_val.append(self._since_mark(t))
        self._mark = t

    def epoch_end(self, t: float) -> None:
        """An epoch ended at ``t`` (its validation and callbacks done)."""
        cost = sum(self._pending_val) + self._since_mark(t)
        if self.epochs_ended == 0:
            self._warm_ends.append((cost, list(self._pending_val)))
        else:
            self._ends.append(cost)
            if self._pending_val:
                self._later_vals.append(list(self._pending_val))
        self.epochs_ended += 1
        self.batches_in_epoch = 0
        self._mark, self._pending_val = t, []

    def batch_cost(self) -> float | None:
        """Seconds per training batch (None before ``min_batches`` of them were measured)."""
        samples = list(self._batches) if self.steps > 1 else self._starts
        if len(samples) < self.min_batches:
            return None
        return fmean(samples)

    def start_cost(self, batch: float) -> float:
        """Seconds an epoch's start adds to its first batch (``batch`` seconds)."""
        if self.steps <= 1 or not self._starts:
            return 0.0
        return max(0.0, fmean(self._starts) - batch)

    @staticmethod
    def _steady_first_end(cost: float, vals: list[float], batch: float) -> float:
        """A member's first epoch end as a later one costs: its first validation batch (with
        the test step's tracing) counted at the mean of its others (at most ``batch``)."""
        if not vals:
            return cost
        steady = fmean(vals[1:]) if len(vals) > 1 else batch
        return cost - vals[0] + min(vals[0], steady)

    def end_cost(self, batch: float) -> float:
        """Seconds per epoch end (validation and callbacks)."""
        if self._ends:
            return fmean(self._ends)
        if self._warm_ends:
            return self._steady_first_end(*self._warm_ends[-1], batch)
        return self.val_steps * batch

    def _excess(self, batch: float, start: float) -> tuple[float, float, float]:
        """The one-off seconds of a member's first batch, its second epoch's start and its first
        epoch end beyond their steady costs (means over the members measured; 0 unmeasured)."""
        return (_mean_or_zero([max(0.0, w - batch) for w in self._warm_batches]),
                _mean_or_zero([max(0.0, w - batch - start) for w in self._warm_starts]),
                _mean_or_zero([max(0.0, c - self._steady_first_end(c, v, batch))
                               for c, v in self._warm_ends]))

    def first_batch_oneoff(self) -> float | None:
        """The one-off seconds of a member's first batch beyond a steady batch (the training
        step's tracing; mean over the members measured), None while estimating."""
        batch = self.batch_cost()
        if batch is None or not self._warm_batches:
            return None
        return self._excess(batch, self.start_cost(batch))[0]

    def prediction_costs(self) -> tuple[float, float] | None:
        """(one-off seconds, seconds per batch) of a pass over validation batches, from the
        validation passes timed so far: the batches after each pass's first give the steady
        cost (each later pass's first batch when every pass is one batch); a member's first
        pass's first batch less that is the one-off (the test step's tracing). None before a
        validation pass that tells them apart."""
        warm = [vals for _, vals in self._warm_ends if vals]
        passes = warm + self._later_vals
        steady = [v for vals in passes for v in vals[1:]] or [vals[0] for vals in self._later_vals]
        if not warm or not steady:
            return None
        per_batch = fmean(steady)
        oneoff = fmean([max(0.0, vals[0] - per_batch) for vals in warm])
        return oneoff, per_batch

    def eta(self) -> float | None:
        """Seconds left until the last member's last epoch ends; None while estimating."""
        batch = self.batch_cost()
        if self.member < 0 or batch is None:
            return None
        start, end = self.start_cost(batch), self.end_cost(batch)
        first_batch, second_start, first_end = self._excess(batch, start)
        left = 0.0
        if not self._member_over:
            if self.epochs_ended == self.epochs_started:  # between epochs
                done = self.epochs_ended * self.steps
            else:
                done = (self.epochs_started - 1) * self.steps + self.batches_in_epoch
            left += max(0, self.epochs * self.steps - done) * batch
            left += max(0, self.epochs - max(self.epochs_started, 1)) * start
            left += max(0, self.epochs - self.epochs_ended) * end
            # this member's one-offs still to come, as the members before it showed them
            left += second_start if self.epochs_started < 2 <= self.epochs else 0.0
            left += first_end if self.epochs_ended == 0 else 0.0
        later = max(0, self.n_members - self.member - 1)  # members not started yet
        if later:
            one = (self.epochs * self.steps * batch + (self.epochs - 1) * start
                   + self.epochs * end + first_batch + first_end
                   + (second_start if self.epochs >= 2 else 0.0))
            left += later * one
        return left


def describe_eta(eta_s: float | None, upper_bound: bool = False, then: Sequence[str] = (),
                 scope: str = "") -> str:
    """The ETA as the progress lines show it: 'ETA estimating…' without an estimate,
    'ETA < 1 s', 'ETA 42 s', 'ETA 3 min 05 s', 'ETA 1 h 02 min'; '≤' before the time when
    ``upper_bound`` (early stopping may end the training sooner). ``then``: the stages still
    to come that the time leaves out (not estimable yet), named after it with what the time
    covers (``scope``): 'windows ETA 3 s, then the fit and the forest head'."""
    if eta_s is None or not math.isfinite(eta_s):
        return "ETA estimating…"
    s = max(0, round(float(eta_s)))
    if s == 0 and eta_s > 0:
        text = "< 1 s"
    else:
        text = (f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s" if s < 3600
                else f"{s // 3600} h {s % 3600 // 60:02d} min")
        text = f"{'≤ ' if upper_bound else ''}{text}"
    if not then:
        return f"ETA {text}"
    names = list(then)
    after = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{scope + ' ' if scope else ''}ETA {text}, then {after}"


#: The keys of a progress event's ``extra`` that carry its ETA (:func:`eta_of`).
ETA_KEYS = ("eta_s", "eta_upper_bound", "eta_then", "eta_scope")


def eta_of(extra: dict[str, Any], waited_s: float = 0.0) -> str | None:
    """The ETA an event's ``extra`` carries, in words (:func:`describe_eta`), counted down by
    the ``waited_s`` seconds since the event; None when it carries none."""
    if "eta_s" not in extra:
        return None
    eta = extra.get("eta_s")
    if isinstance(eta, (int, float)) and math.isfinite(eta):
        eta = max(0.0, float(eta) - max(0.0, waited_s))
    return describe_eta(eta, bool(extra.get("eta_upper_bound")),
                        tuple(extra.get("eta_then") or ()), str(extra.get("eta_scope") or ""))


#: The bar of a whole job (:class:`TqdmProgress`): per cent done and the job's own ETA.
OVERALL_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}{postfix}]"


class TqdmProgress:
    """A ProgressFn that drives tqdm bars for the CLI: one bar for a whole job (events whose
    ``extra`` holds its ``overall`` fraction: a training, a cross-validation), named after
    its current stage (or its ``label``), with the job's own ETA; one bar per stage for the
    other events (loading data, evaluating)."""

    def __init__(self, **tqdm_kwargs: Any) -> None:
        self._bars: dict[str, Any] = {}
        self._kwargs = tqdm_kwargs
        self._t0 = time.perf_counter()

    def _overall(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        desc = str(event.extra.get("label") or event.stage)
        bar = self._bars.get(OVERALL)
        if bar is None:
            kwargs = {**self._kwargs, "bar_format": OVERALL_BAR_FORMAT}
            bar = self._bars[OVERALL] = tqdm(total=1000, desc=desc, **kwargs)
        bar.set_description_str(desc, refresh=False)
        bar.n = max(bar.n, round(1000 * min(1.0, max(0.0, float(event.extra[OVERALL])))))
        eta = eta_of(event.extra)
        postfix = " · ".join(p for p in (event.message, eta) if p)
        bar.set_postfix_str(postfix, refresh=False)
        bar.refresh()

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        if OVERALL in event.extra:
            self._overall(event)
            return
        estimated = "eta_s" in event.extra  # the training's own ETA replaces tqdm's
        bar = self._bars.get(event.stage)
        if bar is None:
            kwargs = dict(self._kwargs)
            if estimated:
                kwargs.setdefault("bar_format", ESTIMATED_BAR_FORMAT)
            bar = tqdm(total=event.total, desc=event.stage, **kwargs)
            self._bars[event.stage] = bar
        if event.total != bar.total:
            bar.total = event.total
        bar.n = event.done
        postfix = event.message
        if estimated:
            eta = eta_of(event.extra)
            postfix = f"{postfix} · {eta}" if postfix else eta
        if postfix:
            bar.set_postfix_str(postfix, refresh=False)
        bar.refresh()

    def close(self) -> None:
        """Close every bar."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
