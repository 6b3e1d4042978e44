"""The whole job's progress (:mod:`rul_core.job_progress`) on synthetic event sequences with
known answers: the fraction across a training's stages, the training's ETA across its stages,
and a cross-validation's fraction, ETA and line across its folds."""

from __future__ import annotations

import pytest

from rul_core.job_progress import (
    CrossValProgress,
    OverallTracker,
    Stage,
    StagePlan,
    TrainingEta,
    TrainingPlan,
)
from rul_core.progress import ProgressEvent, describe_eta


def ev(stage: str, done: int, total: int, message: str = "", **extra: object) -> ProgressEvent:
    return ProgressEvent(stage, done, total, message, dict(extra))


def test_a_stage_pays_each_units_one_off_with_its_first_item() -> None:
    """A fit of 2 members x 10 batches weighing 10 s, 4 s of it the members' first batches
    (2 s each): the first batch of each member counts its one-off."""
    train = Stage("train", 10.0, oneoff=4.0, units=2)
    assert train.within(0, 20) == 0.0
    assert train.within(1, 20) == pytest.approx(0.2 + 0.6 * 1 / 20)
    assert train.within(10, 20) == pytest.approx(0.2 + 0.6 * 10 / 20)
    assert train.within(11, 20) == pytest.approx(0.4 + 0.6 * 11 / 20)
    assert train.within(20, 20) == pytest.approx(1.0)
    assert Stage("x", 0.0).within(0, 0) == 1.0
    assert Stage("prepare", 3.0).within(1, 4) == pytest.approx(0.25)


def test_the_fraction_runs_once_across_the_stages_and_never_back() -> None:
    plan = StagePlan((Stage("prepare", 1.0), Stage("train", 6.0, oneoff=2.0),
                      Stage("forest", 2.0, oneoff=1.0), Stage("validate", 1.0)))
    tracker = OverallTracker(plan)
    seen = [tracker.update(e) for e in (
        ev("prepare", 0, 2), ev("prepare", 1, 2, within=0.25), ev("prepare", 2, 2),
        ev("train", 1, 10), ev("train", 5, 10), ev("train", 10, 10),
        ev("forest", 0, 5), ev("forest", 1, 5), ev("forest", 5, 5),
        ev("load", 3, 4),  # not a stage of this job: stays
        ev("train", 2, 10),  # late, lower: never back
        ev("validate", 0, 1), ev("validate", 1, 1))]
    assert seen == pytest.approx([
        0.0, 0.025, 0.1,
        0.1 + (2 + 4 * 0.1) / 10, 0.1 + (2 + 4 * 0.5) / 10, 0.7,
        0.7, 0.7 + (1 + 1 * 0.2) / 10, 0.9,
        0.9, 0.9,
        0.9, 1.0])
    assert seen == sorted(seen)


def test_a_child_process_job_sits_between_its_start_and_hand_over() -> None:
    plan = StagePlan((Stage("start", 4.0), Stage("prepare", 1.0), Stage("train", 4.0),
                      Stage("finish", 1.0)))
    tracker = OverallTracker(plan)
    assert tracker.update(ev("start", 0, 1)) == 0.0
    assert tracker.nested(0.0) == pytest.approx(0.4)  # the child reports: it has started
    assert tracker.nested(0.5) == pytest.approx(0.65)
    assert tracker.nested(0.2) == pytest.approx(0.65)  # never back
    assert tracker.nested(1.0) == pytest.approx(0.9)
    assert tracker.update(ev("finish", 0, 2)) == pytest.approx(0.9)
    assert tracker.update(ev("finish", 1, 2)) == pytest.approx(0.95)
    assert tracker.update(ev("finish", 2, 2)) == pytest.approx(1.0)


class FakeFit:
    """A FitEta's answers, set by hand."""

    def __init__(self) -> None:
        self.left: float | None = None
        self.costs: tuple[float, float] | None = None
        self.batch: float | None = None
        self.first: float | None = None

    def eta(self) -> float | None:
        return self.left

    def prediction_costs(self) -> tuple[float, float] | None:
        return self.costs

    def batch_cost(self) -> float | None:
        return self.batch

    def first_batch_oneoff(self) -> float | None:
        return self.first


def _plan(trees: int = 50, n_val: int = 48) -> TrainingPlan:
    stages = [Stage("prepare", 1.0), Stage("train", 8.0)]
    stages += [Stage("forest", 1.0)] if trees else []
    stages += [Stage("validate", 1.0)] if n_val else []
    return TrainingPlan(StagePlan(tuple(stages)), job_windows=(48, 48, 48, 48), n_train=144,
                        n_val=n_val, steps=5, epochs=4, members=1, trees=trees, features=8.0)


def test_the_training_eta_counts_every_stage_left_and_names_those_it_cannot() -> None:
    fit = FakeFit()
    eta = TrainingEta(_plan(), fit, batch_size=32, val_batch_size=32, upper_bound=True)
    eta.stage_started("prepare", 0.0)
    assert eta.estimate("prepare", 0.0).eta_s is None  # no window timed yet
    eta.windows_done(48, 0.5)  # 48 of 192 windows in 0.5 s: 1.5 s to go
    windows = eta.estimate("prepare", 0.5)
    assert windows.eta_s == pytest.approx(1.5)
    assert windows.then == ("the fit", "the forest head", "the validation metrics")
    assert describe_eta(windows.eta_s, windows.upper_bound, windows.then, windows.scope) == (
        "windows ETA ≤ 2 s, then the fit, the forest head and the validation metrics")
    assert eta.estimate("prepare", 1.0).eta_s == pytest.approx(1.0)  # counted down

    # the fit: 10 s left; a validation pass: 0.5 s of one-off (x 0.6), 0.04 s per batch of 32
    eta.forest_calibrated(0.01, 0.03)  # 50 trees x 0.01 s in one call of 0.03 s
    fit.left, fit.costs = 10.0, (0.5, 0.04)
    fit_est = eta.estimate("train", 5.0)
    embed = 0.3 + 144 * 0.04 / 32
    trees = 50 * 0.01 + 0.03
    validate = 0.3 + 48 * 0.04 / 32
    assert fit_est.eta_s == pytest.approx(10.0 + embed + trees + validate)
    assert fit_est.then == () and fit_est.upper_bound
    # without a validation pass timed: from the training batches (a third) and the first
    # batch's one-off (a fifth); before both, the stages after the fit are named
    fit.costs = None
    assert eta.estimate("train", 5.0).then == ("the forest head", "the validation metrics")
    fit.batch, fit.first = 0.09, 2.0
    assert eta.estimate("train", 5.0).eta_s == pytest.approx(
        10.0 + 0.4 + 144 * 0.09 / 32 * 0.3 + trees + 0.4 + 48 * 0.09 / 32 * 0.3)
    fit.costs = (0.5, 0.04)

    # the forest: its embedding pass over, then its own trees' pace (25 in 1 s)
    eta.stage_started("forest", 20.0)
    eta.embedded(20.4)
    assert eta.estimate("forest", 20.4).eta_s == pytest.approx(trees + validate)
    eta.trees_done(25, 1.0, 21.4)
    forest = eta.estimate("forest", 21.4)
    assert forest.eta_s == pytest.approx(1.0 + validate)
    assert not forest.upper_bound  # early stopping is behind it
    assert eta.estimate("forest", 21.9).eta_s == pytest.approx(0.5 + validate)

    eta.stage_started("validate", 22.4)
    assert eta.estimate("validate", 22.4).eta_s == pytest.approx(validate)
    assert eta.estimate("validate", 30.0).eta_s == 0.0


def test_a_training_without_forest_or_validation_ends_with_its_fit() -> None:
    fit = FakeFit()
    eta = TrainingEta(_plan(trees=0, n_val=0), fit, batch_size=32, val_batch_size=32)
    fit.left = 3.0
    assert eta.estimate("train", 1.0) == eta.estimate("train", 2.0)
    assert eta.estimate("train", 1.0).eta_s == 3.0 and eta.estimate("train", 1.0).then == ()
    fit.left = None
    assert eta.estimate("train", 1.0).eta_s is None  # the current stage: estimating


def _finish(cv: CrossValProgress, i: int, start: float, scoring: float, end: float) -> None:
    cv.started(i, start)
    cv.scoring(i, scoring)
    cv.finished(i, end)


def test_cross_validation_eta_one_fold_at_a_time() -> None:
    """4 folds of equal weight (9 s training, 1 s scoring), one at a time: fold 1 took 20 s
    (2 of them scoring); fold 2 says 6 s left in its training at 26 s."""
    cv = CrossValProgress([(9.0, 1.0)] * 4, jobs=1)
    cv.started(0, 0.0)
    assert cv.estimate(0.0).eta_s is None  # no basis yet
    cv.event(0, ev("train", 1, 10, "member 1/1 epoch 1/2", overall=0.3, eta_s=None), 1.0)
    assert cv.estimate(1.0).eta_s is None
    cv.event(0, ev("train", 5, 10, "member 1/1 epoch 2/2", overall=0.5, eta_s=9.0,
                   eta_upper_bound=True), 9.0)
    # fold 1: 9 s done + 9 s left = 18 s of training; scoring 18 x 1/9 = 2 s; the 3 folds
    # waiting at its pace: 20 s each
    first = cv.estimate(9.0)
    assert first.eta_s == pytest.approx(9.0 + 2.0 + 3 * 20.0) and first.upper_bound
    assert cv.line() == "0/4 folds done · fold 1: member 1/1 epoch 2/2 · 3 waiting"
    cv.scoring(0, 18.0, "scoring Bearing1_1")
    cv.finished(0, 20.0)
    cv.started(1, 20.0, "holding out Bearing1_2")
    assert cv.line() == "1/4 folds done · fold 2: holding out Bearing1_2 · 2 waiting"
    # fold 2 without an estimate yet: the pace of fold 1 (20 s a fold), 2 s in
    assert cv.estimate(22.0).eta_s == pytest.approx(18.0 + 2 * 20.0)
    cv.event(1, ev("train", 3, 10, "member 1/1 epoch 1/2", overall=0.6, eta_s=6.0), 26.0)
    # 6 s of training, scoring as fold 1's (2 s), then two folds of 20 s
    assert cv.estimate(26.0).eta_s == pytest.approx(6.0 + 2.0 + 40.0)
    assert cv.estimate(28.0).eta_s == pytest.approx(4.0 + 2.0 + 40.0)  # counted down
    # the fraction: fold 1 whole, fold 2's training 60 % done
    assert cv.overall() == pytest.approx((10.0 + 9.0 * 0.6) / 40.0)


def test_cross_validation_eta_with_folds_at_once_fills_the_free_places() -> None:
    """5 folds, 2 at once; folds 1 and 2 done in 20 s each (per weight: 2 s); fold 3 has 5 s
    left, fold 4 is starting; fold 5 takes the first free place, fold 3's, after 5 + 2 s."""
    cv = CrossValProgress([(9.0, 1.0)] * 5, jobs=2)
    _finish(cv, 0, 0.0, 18.0, 20.0)
    _finish(cv, 1, 0.0, 18.0, 20.0)
    cv.started(2, 20.0)
    cv.started(3, 20.0)
    cv.event(2, ev("train", 4, 10, "epoch 1/2 done", overall=0.7, eta_s=5.0), 30.0)
    cv.event(3, ev("start", 0, 1, "starting the training process", overall=0.0), 30.0)
    # fold 3: 5 s + scoring (2 s per weight, 1) = 7 s; fold 4: 20 s - 10 s = 10 s;
    # fold 5 after fold 3: 7 + 20 = 27 s
    assert cv.estimate(30.0).eta_s == pytest.approx(27.0)
    assert cv.line() == ("2/5 folds done, 2 at once · fold 3: epoch 1/2 done · fold 4: "
                         "starting the training process · 1 waiting")
    # a fold whose ETA still leaves stages out is timed by the pace instead
    cv.event(2, ev("prepare", 1, 4, "windows", overall=0.7, eta_s=1.0,
                   eta_then=["the fit"]), 30.0)
    assert cv.estimate(30.0).eta_s == pytest.approx(max(10.0, 10.0 + 20.0))
    for i in range(2, 5):
        _finish(cv, i, 30.0, 40.0, 42.0)
    assert cv.estimate(50.0).eta_s == 0.0 and cv.overall() == 1.0
    assert cv.line() == "5/5 folds done, 2 at once"


def test_an_ensembles_members_build_compile_and_train_one_after_the_other() -> None:
    """Two members, each built (1 s), compiled (3 s) and trained (6 s): the bar goes through
    the first member's three stages, then the second's, forward only."""
    plan = StagePlan((Stage("prepare", 2.0),
                      Stage("build", 2.0, repeats=2, timed=True),
                      Stage("compile", 6.0, repeats=2, timed=True),
                      Stage("train", 12.0, repeats=2), Stage("validate", 2.0)))
    assert plan.total == 24.0
    tracker = OverallTracker(plan)
    seen = [tracker.update(e) for e in (
        ev("prepare", 1, 1),
        ev("build", 0, 2, member=0, within=0.0),
        ev("compile", 0, 4, member=0, within=0.0),
        ev("compile", 0, 4, member=0, elapsed_s=1.5),  # half its 3 reference seconds
        ev("compile", 0, 4, member=0, elapsed_s=30.0),  # late: at most TIMED_CAP of it
        ev("train", 1, 4, member=0),  # the first batch: compile is over
        ev("train", 2, 4, member=0),
        ev("build", 1, 2, member=1, within=0.0),
        ev("compile", 0, 4, member=1, elapsed_s=0.3),
        ev("train", 3, 4, member=1),
        ev("train", 4, 4, member=1),
        ev("validate", 1, 1))]
    assert seen == pytest.approx([
        2 / 24, 2 / 24, 3 / 24, 4.5 / 24, (3 + 0.9 * 3) / 24,
        (6 + 3) / 24, 12 / 24,
        12 / 24, (12 + 1 + 0.3) / 24,
        (16 + 3) / 24, 22 / 24, 1.0])
    assert seen == sorted(seen)
    assert Stage("x", 4.0, repeats=2, timed=True).timed_within(1.0) == pytest.approx(0.5)
    assert Stage("x", 0.0, timed=True).timed_within(5.0) == 0.0


def test_a_wrapped_training_counts_the_stages_around_it() -> None:
    """A training with the command line's saving after it: the training's own fraction and
    ETA are nested between the job's outer stages; its ETA counts the saving's reference
    seconds; the saving shows no ETA and ends the bar; a child process's start reads
    'estimating…'."""
    from rul_core.job_progress import WrappedTraining

    sent: list[ProgressEvent] = []
    plan = StagePlan((Stage("prepare", 1.0), Stage("train", 7.0), Stage("save", 2.0)))
    job = WrappedTraining(sent.append, plan)
    job(ev("train", 5, 10, "epoch 1/2", overall=0.5, eta_s=3.0))
    job(ev("validate", 1, 1, "done", overall=1.0, eta_s=0.0))
    job(ev("save", 0, 2, "saving the bundle"))
    job(ev("save", 2, 2, "bundle written and catalogued"))
    assert [e.extra["overall"] for e in sent] == pytest.approx([0.4, 0.8, 0.8, 1.0])
    assert [e.extra.get("eta_s") for e in sent] == [5.0, 2.0, None, None]
    assert "eta_s" not in sent[-1].extra
    started = StagePlan((Stage("start", 4.0, timed=True), Stage("train", 4.0),
                         Stage("finish", 2.0)))
    job = WrappedTraining(sent.append, started)
    job(ev("start", 0, 3, "starting the training process", elapsed_s=2.0))
    assert sent[-1].extra["overall"] == pytest.approx(0.2) and sent[-1].extra["eta_s"] is None
    job(ev("train", 1, 2, "epoch 1/1", overall=0.5, eta_s=1.0))
    assert sent[-1].extra["overall"] == pytest.approx(0.6) and sent[-1].extra["eta_s"] == 3.0
