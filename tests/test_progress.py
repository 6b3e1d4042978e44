"""The training ETA (:class:`rul_core.progress.FitEta`) on synthetic timings with known answers,
its wording, and the CLI's bars showing it instead of tqdm's own guess."""

from __future__ import annotations

import io
import math
import re

import pytest

from rul_core.progress import FitEta, ProgressEvent, TqdmProgress, describe_eta


def _epoch(eta: FitEta, t: float, batches: list[float], vals: list[float], tail: float,
           seen: list[float | None] | None = None) -> float:
    """Feed one epoch (batch costs, validation batch costs, then the rest of its end) from
    ``t``; append the estimate after each batch to ``seen``; return the epoch's end time."""
    for cost in batches:
        t += cost
        eta.batch_end(t)
        if seen is not None:
            seen.append(eta.eta())
    for cost in vals:
        t += cost
        eta.val_batch_end(t)
    t += tail
    eta.epoch_end(t)
    return t


def test_first_batch_and_first_validation_do_not_inflate_the_eta() -> None:
    """3 epochs of 4 batches (0.1 s), 2 validation batches; the first batch costs 5 s
    (tracing), the first validation batch 2 s, the second epoch's start 0.9 s more. A plain
    average after the first batch would say 5 s x 11 batches = 55 s for 4.55 s left."""
    eta = FitEta(epochs=3, steps=4, val_steps=2)
    assert eta.eta() is None  # nothing started
    eta.member_begin(0.0)
    seen: list[float | None] = []
    t = _epoch(eta, 0.0, [5.0, 0.1, 0.1, 0.1], [2.0, 0.05], 0.05, seen)
    # estimating after the first two batches (one steady batch is no basis), then 9 batches
    # of 0.1 s and 3 epoch ends of 2 validation batches (at most a batch each) to go
    assert seen[:2] == [None, None]
    assert seen[2] == pytest.approx(9 * 0.1 + 3 * 2 * 0.1)
    # epoch 1's end cost 2.1 s; as a later one: 2.1 - 2.0 + 0.05 = 0.15 s
    assert eta.eta() == pytest.approx(8 * 0.1 + 2 * 0.15)
    seen = []
    t = _epoch(eta, t, [1.0, 0.1, 0.1, 0.1], [0.1, 0.05], 0.05, seen)
    assert seen[-1] == pytest.approx(4 * 0.1 + 2 * 0.15)
    assert eta.eta() == pytest.approx(4 * 0.1 + 1 * 0.2)  # the later end measured: 0.2 s
    seen = []
    end = _epoch(eta, t, [0.15, 0.1, 0.1, 0.1], [0.1, 0.05], 0.05, seen)
    # from the third epoch's start on, the estimate is the time actually left
    actual = [end - (t + c) for c in (0.15, 0.25, 0.35, 0.45)]
    assert seen == pytest.approx(actual)
    assert eta.eta() == pytest.approx(0.0)


def test_members_still_to_train_carry_the_one_off_costs_seen() -> None:
    """An ensemble of two, no validation: member 2 will cost what member 1 did, warm-up
    included (first batch 3 s, second epoch's start 0.5 s more)."""
    eta = FitEta(epochs=2, steps=3, n_members=2)
    eta.member_begin(0.0)
    t = _epoch(eta, 0.0, [3.0, 0.1, 0.1], [], 0.05)
    t = _epoch(eta, t, [0.6, 0.1, 0.1], [], 0.05)
    member_took = t
    assert eta.eta() == pytest.approx(member_took)
    eta.member_begin(t)
    seen: list[float | None] = []
    end = _epoch(eta, t, [3.0, 0.1, 0.1], [], 0.05, seen)
    end = _epoch(eta, end, [0.6, 0.1, 0.1], [], 0.05, seen)
    starts = [3.0, 3.1, 3.2, 3.85, 3.95, 4.05]
    assert seen == pytest.approx([end - (t + s) for s in starts])


def test_a_member_stopped_early_leaves_only_the_members_after_it() -> None:
    eta = FitEta(epochs=3, steps=3, n_members=2)
    eta.member_begin(0.0)
    t = _epoch(eta, 0.0, [3.0, 0.1, 0.1], [], 0.05)
    t = _epoch(eta, t, [0.6, 0.1, 0.1], [], 0.05)
    # member 2: 9 batches, 2 later epoch starts (none measured: 0), 3 ends, and the one-offs
    # member 1 showed (first batch 2.9 s, second start 0.5 s more)
    member_2 = 9 * 0.1 + 3 * 0.05 + 2.9 + 0.5
    assert eta.eta() == pytest.approx(3 * 0.1 + 0.05 + member_2)  # epoch 3, then member 2
    eta.member_end()  # early stopping: no epoch 3
    assert eta.eta() == pytest.approx(member_2)


def test_one_batch_epochs_are_timed_by_their_starts() -> None:
    """An epoch of one batch has no later batch: the batch cost comes from the epochs after
    the second (whose start carried a one-off); 2 of them are needed."""
    eta = FitEta(epochs=5, steps=1)
    eta.member_begin(0.0)
    seen: list[float | None] = []
    t = 0.0
    for first in (2.0, 0.6, 0.2, 0.2, 0.2):
        t = _epoch(eta, t, [first], [], 0.05, seen)
    assert seen[:3] == [None, None, None]
    assert seen[3] == pytest.approx(0.2 + 2 * 0.05)  # one epoch of 0.25 s, one end to go
    assert seen[4] == pytest.approx(0.05)


def test_events_out_of_order_are_refused() -> None:
    with pytest.raises(RuntimeError, match="member_begin"):
        FitEta(epochs=1, steps=1).batch_end(1.0)


def test_eta_wording() -> None:
    assert describe_eta(None) == "ETA estimating…"
    assert describe_eta(math.nan) == "ETA estimating…"
    assert describe_eta(42.4) == "ETA 42 s"
    assert describe_eta(-3.0) == describe_eta(0.0) == "ETA 0 s"
    assert describe_eta(0.3) == describe_eta(0.3, upper_bound=True) == "ETA < 1 s"
    assert describe_eta(185) == "ETA 3 min 05 s"
    assert describe_eta(3725) == "ETA 1 h 02 min"
    assert describe_eta(42.4, upper_bound=True) == "ETA ≤ 42 s"


def test_cli_bar_shows_the_training_eta_not_tqdm_guess() -> None:
    out = io.StringIO()
    bar = TqdmProgress(file=out)
    bar(ProgressEvent("train", 1, 10, "epoch 1/2", {"eta_s": None}))
    bar(ProgressEvent("train", 5, 10, "epoch 1/2", {"eta_s": 12.0, "eta_upper_bound": True}))
    bar(ProgressEvent("prepare", 1, 2, "windows"))  # no eta_s: tqdm's own bar
    bar.close()
    text = out.getvalue()
    assert "epoch 1/2 · ETA estimating…" in text
    assert "epoch 1/2 · ETA ≤ 12 s" in text
    tqdm_remaining = re.compile(r"\d\d:\d\d<")  # tqdm's "[elapsed<remaining, rate]"
    train_lines = [line for line in text.split("\r") if line.startswith("train")]
    assert train_lines and not any(tqdm_remaining.search(line) for line in train_lines)
    assert any(line.startswith("prepare") and tqdm_remaining.search(line)
               for line in text.split("\r"))


def test_prediction_costs_come_from_the_validation_passes_timed() -> None:
    """3 validation batches a pass: 2 s then 0.05 s each in member 1's first pass (the test
    step's tracing), 0.04 s each later: a pass costs 1.95 s once, then 0.045 s a batch."""
    eta = FitEta(epochs=2, steps=3, val_steps=3)
    assert eta.prediction_costs() is None and eta.first_batch_oneoff() is None
    eta.member_begin(0.0)
    t = _epoch(eta, 0.0, [3.0, 0.1, 0.1], [2.0, 0.05, 0.05], 0.01)
    oneoff, per_batch = eta.prediction_costs()
    assert (oneoff, per_batch) == pytest.approx((1.95, 0.05))
    assert eta.first_batch_oneoff() == pytest.approx(2.9)  # the first batch less a steady one
    _epoch(eta, t, [0.2, 0.1, 0.1], [0.04, 0.04, 0.04], 0.01)
    oneoff, per_batch = eta.prediction_costs()
    assert per_batch == pytest.approx((0.05 * 2 + 0.04 * 2) / 4)
    assert oneoff == pytest.approx(2.0 - per_batch)
    # one batch a pass: its later passes give the steady cost
    eta = FitEta(epochs=3, steps=2, val_steps=1)
    eta.member_begin(0.0)
    t = _epoch(eta, 0.0, [3.0, 0.1], [1.0], 0.01)
    assert eta.prediction_costs() is None  # nothing tells the tracing from a batch yet
    t = _epoch(eta, t, [0.2, 0.1], [0.03], 0.01)
    assert eta.prediction_costs() == pytest.approx((0.97, 0.03))


def test_the_eta_names_what_it_leaves_out_and_counts_down() -> None:
    from rul_core.progress import eta_of

    assert describe_eta(12.2, then=("the forest head",), scope="fit") == (
        "fit ETA 12 s, then the forest head")
    assert describe_eta(3, True, ("the fit", "the forest head", "the validation metrics"),
                        "windows") == (
        "windows ETA ≤ 3 s, then the fit, the forest head and the validation metrics")
    assert describe_eta(None, then=("the fit",)) == "ETA estimating…"
    extra = {"eta_s": 30.0, "eta_upper_bound": False, "eta_then": [], "eta_scope": ""}
    assert eta_of(extra, 4.0) == "ETA 26 s"
    assert eta_of(extra, 40.0) == "ETA 0 s"
    assert eta_of({**extra, "eta_s": None}, 4.0) == "ETA estimating…"
    assert eta_of({"fit_eta_s": 3.0}) is None  # carries none of the job's


def test_cli_shows_one_bar_for_a_whole_job() -> None:
    """A training's events carry its fraction done: one bar that names the current stage and
    never goes back, with the job's ETA; a cross-validation's bar reads its label; other
    events keep a bar per stage."""
    out = io.StringIO()
    bar = TqdmProgress(file=out)
    eta = {"eta_s": None, "eta_then": [], "eta_scope": "", "eta_upper_bound": False}
    bar(ProgressEvent("prepare", 1, 4, "windows of B1", {"overall": 0.02, **eta}))
    bar(ProgressEvent("train", 5, 10, "epoch 1/2", {"overall": 0.4, **eta, "eta_s": 12.0}))
    bar(ProgressEvent("train", 2, 10, "late", {"overall": 0.3, **eta}))  # never back
    bar(ProgressEvent("forest", 1, 6, "fitting 5 trees", {"overall": 0.9, **eta,
                                                           "eta_s": 2.0}))
    bar(ProgressEvent("load", 1, 2, "reading"))  # not of the job: its own bar
    overall = bar._bars["overall"]
    assert overall.n == 900 and overall.desc == "forest"
    bar(ProgressEvent("train", 1, 10, "2/4 folds done", {"overall": 0.5, "label":
                                                        "cross-validation", **eta}))
    assert overall.n == 900 and overall.desc == "cross-validation"
    assert set(bar._bars) == {"overall", "load"}
    bar.close()
    text = out.getvalue()
    assert "prepare:   2%|" in text and "train:  40%|" in text and "forest:  90%|" in text
    assert "epoch 1/2 · ETA 12 s" in text and "windows of B1 · ETA estimating…" in text
    assert "late" in text and "train:  30%" not in text


def test_a_heartbeat_resends_a_silent_stage_until_stopped() -> None:
    """The heartbeat re-sends the stage's event with the seconds since it began, and none
    arrives after stop() returns (the next stage's event is never followed by a late one)."""
    import time

    from rul_core import progress as progress_mod
    from rul_core.progress import Heartbeat, ticked

    got: list[tuple[ProgressEvent, float]] = []
    beat = Heartbeat(lambda e, s: got.append((e, s)))
    original, progress_mod.HEARTBEAT_S = progress_mod.HEARTBEAT_S, 0.01
    try:
        beat.start(ProgressEvent("compile", 0, 4, "compiling (first batch)"))
        time.sleep(0.2)
        beat.stop()
    finally:
        progress_mod.HEARTBEAT_S = original
    n = len(got)
    time.sleep(0.05)
    assert len(got) == n >= 3 and not beat.running
    seconds = [s for _, s in got]
    assert seconds == sorted(seconds) and all(e.stage == "compile" for e, _ in got)
    # what a re-sent event says
    event = ProgressEvent("start", 1, 3, "starting the training process", {"within": 0.0})
    assert ticked(event, 0.4).message == "starting the training process"
    later = ticked(event, 2.7)
    assert later.message == "starting the training process · 2 s"
    assert later.extra == {"elapsed_s": 2.7} and (later.done, later.total) == (1, 3)
