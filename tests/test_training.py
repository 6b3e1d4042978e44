"""Training API: bearing-grouped splits, reproducibility, progress, cancel, partial-run inference,
evaluation tables."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd
import pytest
from tiny_models import TINY_CARLE, TINY_RC_LSTM

from rul_core import metrics as mt
from rul_core.data.synthetic import synth_run
from rul_core.errors import Cancelled, RulError
from rul_core.evaluation import ablation_table, best_variant, evaluate, to_markdown
from rul_core.models import ModelConfig
from rul_core.progress import CancelToken, ProgressEvent
from rul_core.signal.noise import NoiseAugmentation
from rul_core.training import (
    TrainedModel,
    grouped_kfold,
    leave_one_bearing_out,
    predict_run,
    predict_windows,
    preparation_jobs,
    stopping_note,
    train,
)


def tiny_carle(**kw: object) -> ModelConfig:
    """CARLE quick preset shrunk by hparams overrides (forest head of 5 trees)."""
    return ModelConfig("carle", hparams=dict(TINY_CARLE), mc_samples=3, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def runs() -> list:
    """Three short synthetic bearings at condition 1, one at condition 2."""
    out = [synth_run(f"Bearing1_{i}", n_snapshots=8, seed=i) for i in (1, 2, 3)]
    out.append(synth_run("Bearing2_1", n_snapshots=8, rpm=1650.0, load_n=4200.0, seed=9))
    return out


@pytest.fixture(scope="module")
def trained(runs: list) -> TrainedModel:
    keras.utils.set_random_seed(0)
    return train(tiny_carle(), runs[:2], val_runs=[runs[2]], epochs=2, batch_size=16)


# --- splits ------------------------------------------------------------------------------
def test_leave_one_bearing_out_never_mixes_bearings() -> None:
    names = ["B1_1", "B1_2", "B2_1"]
    folds = leave_one_bearing_out(names)
    assert folds == [
        (["B1_2", "B2_1"], ["B1_1"]),
        (["B1_1", "B2_1"], ["B1_2"]),
        (["B1_1", "B1_2"], ["B2_1"]),
    ]
    for tr, te in folds:
        assert not set(tr) & set(te)
    with pytest.raises(RulError, match="unique"):
        leave_one_bearing_out(["a", "a", "b"])
    with pytest.raises(RulError, match="two runs"):
        leave_one_bearing_out(["a"])


def test_grouped_kfold_partitions_bearings() -> None:
    names = [f"B{i}" for i in range(7)]
    folds = grouped_kfold(names, 3, seed=4)
    assert len(folds) == 3
    held = [n for _, te in folds for n in te]
    assert sorted(held) == sorted(names)  # every bearing held out exactly once
    assert sorted(len(te) for _, te in folds) == [2, 2, 3]
    for tr, te in folds:
        assert not set(tr) & set(te)
        assert sorted(tr + te) == sorted(names)
    assert grouped_kfold(names, 3, seed=4) == folds  # seeded
    assert grouped_kfold(names, 3, seed=5) != folds
    with pytest.raises(RulError, match="k must"):
        grouped_kfold(names, 8)


def test_train_refuses_a_bearing_on_both_sides(runs: list) -> None:
    with pytest.raises(RulError, match="unique"):
        train(tiny_carle(), runs[:2], val_runs=[runs[0]], epochs=1)


def test_train_names_an_empty_run(runs: list) -> None:
    empty = dataclasses.replace(runs[1], snapshots=runs[1].snapshots[:0],
                                timestamps=runs[1].timestamps[:0])
    with pytest.raises(RulError, match=r"run\(s\) Bearing1_2 hold no snapshots"):
        train(tiny_carle(), runs[:1], val_runs=[empty], epochs=1)


# --- training ----------------------------------------------------------------------------
def test_trained_model_records_its_provenance(trained: TrainedModel, runs: list) -> None:
    assert [r.name for r in trained.train_runs] == ["Bearing1_1", "Bearing1_2"]
    assert trained.train_runs[0].content_hash == runs[0].content_hash()
    assert trained.val_runs[0].name == "Bearing1_3"
    assert trained.forest is not None and trained.forest.n_trees == 5
    assert len(trained.models) == 1
    assert trained.history[0]["loss"] and "val_loss" in trained.history[0]
    # 8 snapshots of 2560 samples -> 4 windows each (stride 500) -> 2 runs * 32 windows
    assert trained.metrics["train_windows"] == 64
    # the card's hyperparameters say what training used (2 epochs, batch 16), not the
    # preset's defaults (20, 32)
    assert (tiny_carle().resolved()["epochs"], tiny_carle().resolved()["batch_size"]) == (20, 32)
    hp = trained.config.resolved()
    assert (hp["epochs"], hp["batch_size"]) == (2, 16)
    assert 0 <= trained.metrics["val_picp_uncalibrated"] <= 1
    assert trained.train_conditions == {(1800.0, 4000.0)}
    # the normaliser was fitted on the two training runs only
    lo = np.minimum(runs[0].snapshots.min(axis=(0, 1)), runs[1].snapshots.min(axis=(0, 1)))
    np.testing.assert_allclose(trained.normaliser.minimum, lo, rtol=1e-6)


def test_training_is_reproducible_and_reports_progress(runs: list) -> None:
    events: list[ProgressEvent] = []
    cfg = tiny_carle(ablation="carl")  # no forest: the network alone
    a = train(
        cfg, runs[:1], val_runs=[runs[1]], epochs=2, batch_size=16, seed=3, progress=events.append
    )
    b = train(cfg, runs[:1], val_runs=[runs[1]], epochs=2, batch_size=16, seed=3)
    for wa, wb in zip(a.models[0].get_weights(), b.models[0].get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    pd.testing.assert_frame_equal(predict_run(a, runs[2]), predict_run(b, runs[2]))
    assert a.seed == 3 and a.config.seed == 3

    train_ev = [e for e in events if e.stage == "train"]
    batch_ev = [e for e in train_ev
                if not e.extra.get("epoch_end") and not e.extra.get("fit_start")]
    # 32 windows / batch 16 = 2 steps per epoch, 2 epochs -> 4 batch events
    assert [(e.extra["epoch"], e.extra["batch"]) for e in batch_ev] == [
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
    ]
    assert [e.done for e in batch_ev] == [1, 2, 3, 4]
    assert all(e.total == 4 for e in batch_ev)
    assert all(np.isfinite(e.extra["loss"]) for e in batch_ev)
    # val_loss is known from the end of the first epoch on
    assert batch_ev[0].extra["val_loss"] is None
    assert batch_ev[2].extra["val_loss"] == pytest.approx(a.history[0]["val_loss"][0])
    # the fit's ETA: estimating until two batches past the one-off ones (each epoch's first)
    # are timed, then positive (the last validation pass is still to come) and 0 at the end;
    # an upper bound, as early stopping (patience 10) may end the training sooner
    assert [e.extra["fit_eta_s"] for e in batch_ev[:3]] == [None, None, None]
    assert batch_ev[3].extra["fit_eta_s"] > 0
    ends = [e for e in train_ev if e.extra.get("epoch_end")]
    assert ends[-1].extra["fit_eta_s"] == pytest.approx(0.0)
    assert all(e.extra["eta_upper_bound"] for e in train_ev)
    assert all((e.extra["epochs"], e.extra["n_members"]) == (2, 1) for e in train_ev)
    # the whole training's: the validation metrics are still to come after the fit's end
    assert [e.stage for e in events
            if e.stage not in ("prepare", "build", "compile", "train")] == [
        "validate", "validate"]
    assert ends[-1].extra["eta_s"] > 0 and ends[-1].extra["eta_then"] == []
    assert events[-1].extra["eta_s"] == 0.0
    # one fraction for the whole training, forward only, from 0 to 1
    overall = [e.extra["overall"] for e in events]
    assert overall[0] == 0.0 and overall[-1] == 1.0 and overall == sorted(overall)
    assert 0.0 < ends[0].extra["overall"] < ends[-1].extra["overall"] < 1.0
    # while the windows are made, the fit cannot be timed yet: named, not counted as 0 s
    making = [e for e in events if e.stage == "prepare" and 0 < e.done < e.total]
    assert len(making) == 1 and all(e.extra["eta_then"] == ["the fit", "the validation metrics"]
                                    and e.extra["eta_s"] >= 0 for e in making)
    starts = [e for e in events if e.extra.get("fit_start") and "elapsed_s" not in e.extra]
    assert len(starts) == 1 and starts[0].stage == "compile"
    assert starts[0].message == "compiling (first batch)"  # a single model: no member named


def test_the_training_plan_counts_what_training_does(runs: list, trained: TrainedModel) -> None:
    """The plan behind the whole training's fraction counts the windows, batches and trees
    the training then makes (fixture ``trained``: 2 runs + 1 validation run of 32 windows,
    batch 16, a forest of 5 trees)."""
    from rul_core.job_progress import training_plan

    plan = training_plan(tiny_carle(), runs[:2], [runs[2]], epochs=2, batch_size=16)
    assert (plan.windows, plan.n_train, plan.n_val, plan.steps, plan.trees) == (96, 64, 32, 4, 5)
    assert plan.n_train == trained.metrics["train_windows"]
    assert plan.stages.names() == ["prepare", "build", "compile", "train", "forest", "validate"]
    isolated = training_plan(tiny_carle(), runs[:2], epochs=2, batch_size=16, isolated=True)
    assert isolated.stages.names() == ["start", "prepare", "build", "compile", "train", "forest",
                                       "finish"]
    saved = training_plan(tiny_carle(), runs[:2], epochs=2, batch_size=16, save=True)
    assert saved.stages.names()[-1] == "save"
    # every 2nd snapshot, 2 phases, 2 noisy copies: 32 windows a thinning, 4 batches of 8
    aug = NoiseAugmentation("gaussian", 0.5, copies=2)
    kw = {"epochs": 2, "batch_size": 8, "snapshot_every": 2, "snapshot_phases": 2,
          "augmentation": aug, "seed": 1}
    plan = training_plan(tiny_rc_lstm(), runs[:2], **kw)
    model = train(tiny_rc_lstm(), runs[:2], patience=0, **kw)
    assert plan.n_train == model.metrics["train_windows"] == 192
    assert plan.steps == 4 and plan.stages.names() == ["prepare", "build", "compile", "train"]


def test_train_prepares_the_jobs_its_plan_counted(runs: list,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The preparation jobs (runs, phases, noisy copies) come from one place: the plan that
    counts them is the list train() works through, made once."""
    import rul_core.training as training
    from rul_core.job_progress import training_plan

    made: list[int] = []

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        jobs = preparation_jobs(*args, **kwargs)
        made.append(len(jobs))
        return jobs

    monkeypatch.setattr(training, "preparation_jobs", counted)
    aug = NoiseAugmentation("uniform", 0.5, copies=1)
    kw = {"epochs": 1, "batch_size": 16, "snapshot_every": 2, "snapshot_phases": 2,
          "augmentation": aug, "seed": 4}
    events: list[ProgressEvent] = []
    train(tiny_rc_lstm(), runs[:2], val_runs=[runs[2]], patience=0, progress=events.append, **kw)
    # 2 runs x 2 phases, 1 validation run, a noisy copy of each of the 4 thinnings: made once
    assert made == [9]
    plan = training_plan(tiny_rc_lstm(), runs[:2], [runs[2]], **kw)
    assert [(r.name, k, n is not None) for r, k, n in plan.jobs] == [
        (r.name, k, n is not None)
        for r, k, n in preparation_jobs(runs[:2], [runs[2]], 2, aug, 4)]
    prepared = [e for e in events if e.stage == "prepare"]
    assert prepared[-1].done == prepared[-1].total == len(plan.jobs)


def test_build_and_compile_are_stages_that_keep_moving(runs: list,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the model and its first batch (tracing the training step) report nothing
    while they run, which on a small job is much of it: they are stages of their own, weighed
    by the model's reference costs, whose events come again while they run with the seconds
    since they began, moving the bar by the time (never back, never into the next stage) and
    'estimating…' (the fit has no timings yet)."""
    from rul_core import progress as progress_mod
    from rul_core.job_progress import TIMED_CAP, model_costs, training_plan

    monkeypatch.setattr(progress_mod, "HEARTBEAT_S", 0.02)
    events: list[ProgressEvent] = []
    cfg = tiny_carle(ablation="carl")
    train(cfg, runs[:1], val_runs=[runs[1]], epochs=1, batch_size=16, patience=0,
          progress=events.append)
    plan = training_plan(cfg, runs[:1], [runs[1]], epochs=1, batch_size=16).stages
    assert plan.stage("build").weight == model_costs(cfg).build_s
    assert plan.stage("compile").weight == model_costs(cfg).compile_s
    stages = [e.stage for e in events]
    assert [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]] == [
        "prepare", "build", "compile", "train", "validate"]
    compiling = [e for e in events if e.stage == "compile"]
    assert compiling[0].message == "compiling (first batch)"
    ticks = compiling[1:]
    assert len(ticks) >= 3
    elapsed = [e.extra["elapsed_s"] for e in ticks]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    assert all(e.message == "compiling (first batch)" + (f" · {int(e.extra['elapsed_s'])} s"
                                                         if e.extra["elapsed_s"] >= 1 else "")
               for e in ticks)
    overall = [e.extra["overall"] for e in events]
    assert overall == sorted(overall) and overall[-1] == 1.0
    begin, end = plan.fraction("compile", 0.0), plan.fraction("compile", 1.0)
    moved = [e.extra["overall"] for e in compiling]
    assert moved[0] == pytest.approx(begin) and moved[-1] > moved[0]
    assert max(moved) <= begin + TIMED_CAP * (end - begin) + 1e-9
    first_batch = next(e for e in events if e.stage == "train")
    assert first_batch.extra["overall"] >= end
    assert all(e.extra["eta_s"] is None for e in events if e.stage in ("build", "compile"))


def test_an_ensemble_names_its_member_and_goes_member_by_member(runs: list) -> None:
    """A deep ensemble's lines say which member and which of its epochs ('member 2/3, epoch
    1/2'); its members build, compile and train one after the other, the bar through them in
    order; a later member's build and first batch keep the fit's ETA (timed on the members
    before), and a cancel says where it stopped."""
    from rul_core import ui_state
    from rul_core.job_progress import training_plan

    cfg = ModelConfig("carle", ablation="carl", interval="ensemble", n_members=3,
                      hparams=dict(TINY_CARLE))

    def target(progress, cancel):  # type: ignore[no-untyped-def]
        def relay(event: ProgressEvent) -> None:
            progress(event)
            if (event.stage == "train" and event.extra.get("member") == 1
                    and event.extra.get("epoch_end")):
                cancel.cancel()  # seen after member 2's next batch

        return train(cfg, runs[:1], epochs=2, batch_size=16, patience=0, progress=relay,
                     cancel=cancel)

    job = ui_state.start_job("ensemble", target)
    job.join(300)
    assert job.status == "cancelled"
    events = job.snapshot_events()
    lines = [e.message for e in events if e.stage == "train"]
    assert lines[0].startswith("member 1/3, epoch 1/2 loss ")
    assert "member 1/3, epoch 2/2 done" in lines
    assert lines[-1].startswith("member 2/3, epoch 2/2 loss ")
    assert [e.message for e in events if e.stage == "build" and "elapsed_s" not in e.extra] == [
        "member 1/3: building the model", "member 2/3: building the model"]
    assert "member 2/3: compiling (first batch)" in [e.message for e in events]
    assert ui_state.progress_line(job).startswith(f"cancelled · {job.elapsed:.0f} s · train: "
                                                  "member 2/3, epoch 2/2 loss ")
    assert ui_state.cancelled_message(job).startswith(
        "Training cancelled after member 2/3, epoch 1/2 (")
    # member by member: member 2's build comes after member 1's whole fit on the bar
    plan = training_plan(cfg, runs[:1], epochs=2, batch_size=16).stages
    second = next(e for e in events if e.stage == "build" and e.extra["member"] == 1)
    assert second.extra["overall"] == pytest.approx(plan.fraction("build", 0.0, unit=1))
    assert second.extra["overall"] == pytest.approx(plan.fraction("train", 1.0, unit=0))
    overall = [e.extra["overall"] for e in events]
    assert overall == sorted(overall)
    # the fit was timed on member 1: member 2's build carries the ETA of members 2 and 3
    assert second.extra["eta_s"] is not None and second.extra["eta_s"] > 0


def test_the_forest_fit_in_chunks_is_the_same_forest() -> None:
    """Fitted in 3 calls (warm start) the forest holds the very trees of one call, so its
    progress and cancel checks between calls change nothing."""
    from rul_core.models.heads import ForestHead

    rng = np.random.default_rng(0)
    emb, y = rng.random((60, 4)).astype(np.float32), rng.random(60)
    seen: list[int] = []
    whole = ForestHead.fit(emb, y, n_trees=7, seed=3)
    parts = ForestHead.fit(emb, y, n_trees=7, seed=3, chunks=3, on_chunk=seen.append)
    assert seen == [2, 4, 7] and parts.n_trees == 7 and not parts.forest.warm_start
    np.testing.assert_array_equal(whole.predict_trees(emb), parts.predict_trees(emb))
    np.testing.assert_array_equal(whole.predict(emb[:5]), parts.predict(emb[:5]))


def test_the_whole_training_eta_covers_the_forest_head(runs: list) -> None:
    """With the forest head's trees timed before the fit (a calibration fit), the ETA during
    the fit covers the forest and the validation metrics: nothing is left out, and it does
    not reach 0 while they are still to come; the forest's events count its trees."""
    events: list[ProgressEvent] = []
    train(tiny_carle(), runs[:1], val_runs=[runs[1]], epochs=3, batch_size=16, patience=0,
          progress=events.append)
    ends = [e for e in events if e.extra.get("epoch_end")]
    assert ends[-1].extra["fit_eta_s"] == 0.0
    assert ends[-1].extra["eta_then"] == [] and ends[-1].extra["eta_s"] > 0
    forest = [(e.done, e.total) for e in events if e.stage == "forest"]
    assert forest == [(0, 6), (1, 6), (6, 6)]  # embedding, then 5 trees in one call
    overall = [e.extra["overall"] for e in events]
    assert overall == sorted(overall) and overall[-1] == 1.0


def test_cancel_from_progress_callback_raises_cancelled(runs: list) -> None:
    """An ensemble of two: member 0 trains fully, member 1 is cancelled after its first batch."""
    token = CancelToken()
    seen: list[ProgressEvent] = []

    def progress(event: ProgressEvent) -> None:
        seen.append(event)
        if event.stage == "train" and event.extra.get("member") == 1:
            token.cancel()

    cfg = ModelConfig(
        "carle", ablation="carl", interval="ensemble", n_members=2, hparams=dict(TINY_CARLE)
    )
    with pytest.raises(Cancelled):
        train(cfg, runs[:1], epochs=1, batch_size=16, progress=progress, cancel=token)
    batches = [e for e in seen if e.stage == "train" and not e.extra.get("epoch_end")
               and not e.extra.get("fit_start")]
    # member 0: 2 batches (32 windows / 16); member 1: stopped after its first batch
    assert [(e.extra["member"], e.done, e.total) for e in batches] == [
        (0, 1, 4),
        (0, 2, 4),
        (1, 3, 4),
    ]


def test_a_cancel_during_the_forest_fit_is_honoured(runs: list) -> None:
    """The forest's trees do not check the token while they are fitted, and nothing after them
    did: a cancel then came back as a finished model. It is now seen once they are fitted."""
    token = CancelToken()

    def progress(event: ProgressEvent) -> None:
        if event.stage == "forest" and event.done == 1:  # "fitting 5 trees": past its checks
            token.cancel()

    with pytest.raises(Cancelled):
        train(tiny_carle(), runs[:1], val_runs=[runs[1]], epochs=1, batch_size=16,
              progress=progress, cancel=token)


def test_early_stopping_says_why_the_progress_stops_short(runs: list) -> None:
    """With patience 1 the training stops long before 40 epochs: the progress says so in one
    more event that takes the bar to its end, and :func:`stopping_note` tells the analyst."""
    events: list[ProgressEvent] = []
    model = train(tiny_carle(ablation="carl"), runs[:1], val_runs=[runs[1]], epochs=40,
                  batch_size=16, patience=1, progress=events.append)
    ran = len(model.history[0]["loss"])
    assert ran < 40
    stops = [e for e in events if e.extra.get("stopped_early")]
    assert len(stops) == 1 and stops[0].done == stops[0].total == 80  # 40 epochs x 2 batches
    assert stops[0].extra["fit_eta_s"] == 0.0  # nothing left, not the epochs it skipped
    # the whole training: the validation metrics, not the epochs it skipped
    assert 0.0 < stops[0].extra["eta_s"] < 10.0
    assert stops[0].extra["overall"] == max(e.extra["overall"] for e in events
                                            if e.stage == "train")
    best = 1 + int(np.argmin(model.history[0]["val_loss"]))
    assert stops[0].message == (f"stopped early after epoch {ran}/40: val_loss did "
                                f"not improve for 1 epoch; epoch {best}'s weights kept")
    assert stopping_note(model) == (f"Stopped early after {ran} of 40 epochs: val_loss did not "
                                    f"improve for 1 epoch; epoch {best}'s weights are kept.")
    fixed = train(tiny_carle(ablation="carl"), runs[:1], epochs=2, batch_size=16, patience=0)
    assert stopping_note(fixed) == ""  # a fixed budget never stops early


# --- inference on a partial run ----------------------------------------------------------
def test_predict_run_on_partial_run(trained: TrainedModel, runs: list) -> None:
    run = runs[2]
    full = predict_run(trained, run)
    part = predict_run(trained, run, upto=3)
    assert list(full.columns) == ["snapshot", "time_s", "rul", "lower", "upper", "std"]
    assert list(full["snapshot"]) == list(range(8))
    assert list(part["snapshot"]) == [0, 1, 2]
    np.testing.assert_allclose(part["time_s"], [0.0, 10.0, 20.0])
    # CARLE windows are independent: the estimate at a snapshot does not depend on the future
    pd.testing.assert_frame_equal(part, full.iloc[:3].reset_index(drop=True))
    assert (full["lower"] <= full["rul"] + 1e-9).all() and (
        full["rul"] <= full["upper"] + 1e-9
    ).all()
    with pytest.raises(RulError, match="upto"):
        predict_run(trained, run, upto=0)


# --- evaluation --------------------------------------------------------------------------
def test_evaluate_tables(trained: TrainedModel, runs: list) -> None:
    events: list[ProgressEvent] = []
    res = evaluate(trained, [runs[2], runs[3]], progress=events.append)
    # progress follows each run's features, then its prediction, never going back
    assert all(e.stage == "evaluate" and e.total == 200 for e in events)
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert [(e.done, e.message) for e in events if "predicting" in e.message or e.done % 100 == 0
            ] == [(0, "Bearing1_3: features"), (0, "Bearing1_3: features of 0 / 32 windows"),
                  (80, "predicting Bearing1_3"), (100, "Bearing2_1: features"),
                  (100, "Bearing2_1: features of 0 / 32 windows"),
                  (180, "predicting Bearing2_1"), (200, "done")]
    w = res.windows
    assert set(w["run"]) == {"Bearing1_3", "Bearing2_1"}
    seen = dict(zip(res.table["run"], res.table["seen"], strict=False))
    assert bool(seen["Bearing1_3"]) is True
    assert bool(seen["Bearing2_1"]) is False
    # the table's numbers are the metric functions applied to the window predictions
    g = w[w["run"] == "Bearing2_1"]
    row = res.table[res.table["run"] == "Bearing2_1"].iloc[0]
    assert row["rmse"] == pytest.approx(mt.rmse(g["y_true"], g["rul"]))
    assert row["score"] == pytest.approx(mt.score(g["y_true"], g["rul"]))
    assert row["picp"] == pytest.approx(mt.picp(g["y_true"], g["lower"], g["upper"]))
    assert row["n"] == 32
    # piecewise labels: 1 for the first 30 % of the snapshots
    assert (w[w["snapshot"] == 0]["y_true"] == 1.0).all()
    assert (w[w["snapshot"] == 7]["y_true"] == 0.0).all()
    su = res.seen_unseen.set_index("conditions")
    assert su.loc["unseen", "rmse"] == pytest.approx(row["rmse"])
    assert res.summary()["rmse"] == pytest.approx(mt.rmse(w["y_true"], w["rul"]))
    # per snapshot: 8 rows per run
    assert len(res.snapshots) == 16
    # seen/unseen can be overridden
    res2 = evaluate(trained, [runs[3]], train_conditions=[(1650.0, 4200.0)], on="snapshot")
    assert bool(res2.table.iloc[0]["seen"]) is True

    abl = ablation_table({"CARLE": res, "again": res})
    assert ("CARLE", "rmse") in abl.columns and ("again", "score") in abl.columns
    assert abl.loc[("1650 rpm / 4200 N", "Bearing2_1"), ("CARLE", "rmse")] == pytest.approx(
        row["rmse"]
    )
    md = to_markdown(abl)
    assert [c.strip() for c in md.splitlines()[0].split("|")[1:4]] == [
        "condition", "run", "CARLE / rmse"]
    flat = ablation_table({"CARLE": res, "again": res}, metrics=("rmse", "mae"), flat=True)
    assert list(flat.columns) == ["condition", "run", "CARLE · rmse", "CARLE · mae",
                                  "again · rmse", "again · mae"]
    assert flat["CARLE · rmse"].tolist() == abl[("CARLE", "rmse")].tolist()
    one = ablation_table({"CARLE": res, "again": res}, metrics=("rmse",), flat=True)
    assert list(one.columns) == ["condition", "run", "CARLE", "again"]
    with pytest.raises(ValueError, match="unknown metric 'rsme'"):
        ablation_table({"CARLE": res}, metrics=("rsme",))


def test_best_variant_per_row_follows_the_metric_direction() -> None:
    values = pd.DataFrame({"CARLE": [0.2, 0.5, np.nan, 0.3], "CARL": [0.3, 0.4, np.nan, 0.3]})
    assert best_variant(values, lower_is_better=True).tolist() == [
        "CARLE", "CARL", "", "CARLE = CARL"]
    assert best_variant(values, lower_is_better=False).tolist() == [
        "CARL", "CARLE", "", "CARLE = CARL"]


def test_markdown_prints_seconds_whole_and_ratios_to_four_digits() -> None:
    df = pd.DataFrame({"run": ["a"], "elapsed_s": [18020.0], "estimate_rul_s": [2751.4],
                       "accuracy": [0.887346], "actual": [float("nan")]})
    assert to_markdown(df).splitlines() == [
        "| run | elapsed_s | estimate_rul_s | accuracy | actual |",
        "|-----|----------:|---------------:|---------:|-------:|",
        "| a   |     18020 |           2751 |   0.8873 |        |"]


def test_markdown_columns_line_up_in_a_terminal() -> None:
    """Every row is as wide as the header; text left, numbers right, None blank."""
    df = pd.DataFrame({"condition": ["condition 1 (1800 rpm, 4000 N)", "all"],
                       "seen": [True, None], "rmse": [0.2047, 0.27154]})
    lines = to_markdown(df).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert [line.index(" | ", 2) for line in lines[2:]] == [32, 32]
    assert lines[3] == "| all                            |      | 0.2715 |"


def test_validation_calibrates_the_interval(trained: TrainedModel, runs: list) -> None:
    """Split-conformal factors from the validation run: on that run the band now covers at
    least the nominal share of window labels (by construction of the factor)."""
    q = trained.interval_calibration
    assert q is not None and len(q) == 101 and q == sorted(q)
    w = predict_windows(trained, runs[2], with_labels=True)
    inside = (w["y_true"] >= w["lower"] - 1e-9) & (w["y_true"] <= w["upper"] + 1e-9)
    assert inside.mean() >= trained.level
    # never beyond the labels' range [0, 1], except to keep the mean inside the band
    assert (w["lower"] >= np.minimum(w["rul"], 0.0) - 1e-12).all()
    assert (w["upper"] <= np.maximum(w["rul"], 1.0) + 1e-12).all()
    assert (w["lower"] <= w["rul"]).all() and (w["rul"] <= w["upper"]).all()


def test_rc_lstm_keeps_the_epoch_whose_mean_fits_best(runs: list) -> None:
    """RC-LSTM's scheduled loss changes its weights between epochs (Table III), so its value
    cannot compare epochs; early stopping and the best-weight restore watch the squared error of
    the mean on the validation run instead: the kept model's error there is the history's
    minimum, recomputed here from the model's own predictions."""
    from rul_core.training import model_x, prepare_run

    cfg = ModelConfig("rc_lstm", hparams=dict(TINY_RC_LSTM))
    tm = train(cfg, runs[:2], val_runs=[runs[2]], epochs=4, batch_size=8,
               label_scheme="linear")
    hist = tm.history[0]
    prep = prepare_run(cfg, runs[2], tm.normaliser, tm.pipeline_config, "linear", {})
    mu = np.asarray(tm.models[0].predict(model_x(prep.inputs), verbose=0))[:, 0]
    kept = float(np.mean((prep.labels - mu) ** 2))
    assert kept == pytest.approx(min(hist["val_mu_mse"]), rel=1e-4)
    # the scheduled loss grows from stage to stage here: watching it would keep another epoch
    assert np.argmin(hist["val_loss"]) != np.argmin(hist["val_mu_mse"])


def test_fixed_budget_keeps_the_last_epoch(runs: list) -> None:
    """``patience=None``: no early stopping, no restore, no rate reduction; the kept model's
    error on the validation run is the last epoch's, not the best one's."""
    from rul_core.training import model_x, prepare_run

    cfg = ModelConfig("rc_lstm", hparams={**TINY_RC_LSTM, "learning_rate": 0.03})
    tm = train(cfg, runs[:2], val_runs=[runs[2]], epochs=4, batch_size=8,
               label_scheme="linear", patience=None)
    hist = tm.history[0]
    assert len(hist["loss"]) == 4 and tm.metrics["patience"] == 0.0
    assert int(np.argmin(hist["val_mu_mse"])) != 3  # the last epoch is not the best one here
    prep = prepare_run(cfg, runs[2], tm.normaliser, tm.pipeline_config, "linear", {})
    mu = np.asarray(tm.models[0].predict(model_x(prep.inputs), verbose=0))[:, 0]
    assert float(np.mean((prep.labels - mu) ** 2)) == pytest.approx(hist["val_mu_mse"][-1],
                                                                     rel=1e-4)
    assert tm.interval_calibration is not None  # the validation run still calibrates the band


# --- snapshot thinning -------------------------------------------------------------------------
def tiny_rc_lstm() -> ModelConfig:
    return ModelConfig("rc_lstm", hparams=dict(TINY_RC_LSTM))


@pytest.fixture(scope="module")
def thinned_pair(runs: list) -> tuple[TrainedModel, TrainedModel]:
    """The same model trained two ways: ``snapshot_every=2`` on the whole runs with a cap of 4
    recorded snapshots, and on runs thinned beforehand with a cap of 2 of *their* snapshots."""
    kw = {"epochs": 2, "batch_size": 8, "label_scheme": "capped", "patience": 0}
    every = train(tiny_rc_lstm(), runs[:2], val_runs=[runs[2]], label_params={"max_rul": 4},
                  snapshot_every=2, **kw)
    thinned = train(tiny_rc_lstm(), [r.every_nth(2) for r in runs[:2]],
                    val_runs=[runs[2].every_nth(2)], label_params={"max_rul": 2}, **kw)
    return every, thinned


def test_snapshot_every_trains_and_predicts_like_thinned_runs(runs: list, thinned_pair) -> None:
    every, thinned = thinned_pair
    assert every.snapshot_every == 2 and thinned.snapshot_every == 1
    assert every.metrics["train_windows"] == thinned.metrics["train_windows"]
    assert every.metrics["train_windows"] < train_windows_of(runs[:2], every)
    np.testing.assert_allclose(every.history[0]["loss"], thinned.history[0]["loss"], rtol=1e-5)
    run = runs[3]
    a = predict_run(every, run)
    b = predict_run(thinned, run.every_nth(2))
    assert list(a["snapshot"]) == [1, 3, 5, 7]  # every 2nd counted back from the last (7)
    np.testing.assert_allclose(a["time_s"], b["time_s"])
    np.testing.assert_allclose(a["rul"], b["rul"], atol=1e-5)
    # a partial run is thinned back from its own last snapshot: the estimate is for "now"
    assert list(predict_run(every, run, upto=5)["snapshot"]) == [0, 2, 4]
    # labels stay in the recording's snapshots: capped at 4 of 10 s = the thinned 2 of 20 s
    w = predict_windows(every, run, with_labels=True)
    wt = predict_windows(thinned, run.every_nth(2), with_labels=True)
    np.testing.assert_allclose(w["y_true"], wt["y_true"])


def train_windows_of(runs: list, trained: TrainedModel) -> int:
    """Windows of every snapshot of ``runs`` (what training without thinning would see)."""
    from rul_core.training import prepare_run

    return sum(len(prepare_run(trained.config, r, trained.normaliser,
                               trained.pipeline_config).snapshot_index) for r in runs)


def test_snapshot_every_converts_time_with_the_recording_interval(runs: list,
                                                                  thinned_pair) -> None:
    from rul_core.phm2012 import recording_timing, score_runs

    every, thinned = thinned_pair
    rows = pd.DataFrame({"snapshot": [1, 3, 5], "time_s": [10.0, 30.0, 50.0]})
    assert recording_timing(rows, 2) == {"interval_s": 10.0, "first_snapshot": 1}
    assert recording_timing(rows, 1) == {"interval_s": None, "first_snapshot": 0}
    a = score_runs(every, [runs[3]])
    b = score_runs(thinned, [runs[3].every_nth(2)])
    assert a["elapsed_s"].iloc[0] == pytest.approx(80.0)  # 8 snapshots of 10 s, all counted
    assert a["elapsed_s"].iloc[0] == pytest.approx(b["elapsed_s"].iloc[0])
    assert a["estimate_rul_s"].iloc[0] == pytest.approx(b["estimate_rul_s"].iloc[0], abs=1e-3)


def test_snapshot_every_is_checked(runs: list) -> None:
    with pytest.raises(RulError, match="snapshot_every"):
        train(tiny_rc_lstm(), runs[:1], snapshot_every=0, epochs=1)


# --- phase offsets of the thinning ----------------------------------------------------------
def test_cycled_batches_visit_every_window_once_per_pass() -> None:
    from rul_core.training import cycled_batch_indices

    draws = np.concatenate([cycled_batch_indices(10, 4, i, seed=5) for i in range(5)])
    assert sorted(draws[:10]) == list(range(10)) and sorted(draws[10:]) == list(range(10))
    assert list(draws[:10]) != list(draws[10:])  # each pass its own order
    # batch 2 straddles the passes: its first two windows end pass 0, the next two start pass 1
    np.testing.assert_array_equal(cycled_batch_indices(10, 4, 2, seed=5), draws[8:12])
    np.testing.assert_array_equal(cycled_batch_indices(10, 4, 3, seed=5), draws[12:16])
    assert list(cycled_batch_indices(10, 4, 0, seed=6)) != list(draws[:4])


def test_prepare_run_phase_thins_back_from_an_earlier_snapshot(runs: list) -> None:
    from rul_core import labels as lb
    from rul_core.signal import pipeline as pl
    from rul_core.training import default_pipeline_config, prepare_run

    cfg = tiny_rc_lstm()
    run = runs[3]  # 8 snapshots, 0..7
    pc = default_pipeline_config(cfg)
    norm = pl.fit_normaliser([run], pc)
    per_window = {k: prepare_run(cfg, run, norm, pc, "capped", {"max_rul": 4}, snapshot_every=3,
                                 phase=k) for k in (0, 1, 2)}
    snaps = {k: sorted(set(p.snapshot_index.tolist())) for k, p in per_window.items()}
    assert snaps == {0: [1, 4, 7], 1: [0, 3, 6], 2: [2, 5]}
    # phase 1 is the run as if recorded up to snapshot 6 ...
    head = prepare_run(cfg, run.head(7), norm, pc, snapshot_every=3)
    np.testing.assert_array_equal(per_window[1].inputs[0], head.inputs[0])
    # ... but labelled on the whole run: capped at 4 snapshots before the failure at 7
    whole = lb.label_run(run, "capped", max_rul=4)
    np.testing.assert_allclose(per_window[1].labels,
                               whole[per_window[1].snapshot_index])
    assert whole[6] == pytest.approx(0.25) and whole[0] == pytest.approx(1.0)
    with pytest.raises(RulError, match="phase"):
        prepare_run(cfg, run, norm, pc, snapshot_every=3, phase=3)


def test_rc_lstm_inputs_skip_the_features_without_changing_them(
        runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """RC-LSTM reads the filtered windows only: the shortcut gives the inputs of the full path."""
    from rul_core.models import make_inputs
    from rul_core.signal import pipeline as pl
    from rul_core.training import default_pipeline_config, prepare_run

    cfg = tiny_rc_lstm()
    run = runs[1]
    pc = default_pipeline_config(cfg)
    norm = pl.fit_normaliser([run], pc)
    fast = prepare_run(cfg, run, norm, pc)
    windows = pl.extract_windows(run, norm, pc)
    full = make_inputs(cfg, windows, pl.window_signals(run, norm, pc))
    np.testing.assert_array_equal(fast.snapshot_index, windows.snapshot_index)
    np.testing.assert_array_equal(fast.inputs[0], full[0])
    # the app's views (Noise lab, Explain) take the same shortcut
    from types import SimpleNamespace

    from rul_core.views import model_inputs

    def no_features(*args: object, **kwargs: object) -> None:
        raise AssertionError("RC-LSTM's views computed ImR rasters and TF features")

    monkeypatch.setattr(pl, "extract_windows", no_features)
    shown, snap = model_inputs(
        SimpleNamespace(config=cfg, normaliser=norm, pipeline_config=pc), run)
    np.testing.assert_array_equal(shown[0], full[0])
    np.testing.assert_array_equal(snap, windows.snapshot_index)


@pytest.mark.parametrize("name", ["carle", "rc_lstm"])
@pytest.mark.parametrize("every", [1, 2])
def test_one_window_views_see_what_predict_run_sees(runs: list, name: str, every: int) -> None:
    """Explain and Noise lab rebuild one window's input from a few snapshots: the per-run
    baseline's and the sequence's, thinned like the model's training; it must equal the
    input predict_run builds from every snapshot recorded so far."""
    from types import SimpleNamespace

    from rul_core.signal import pipeline as pl
    from rul_core.training import prepare_run
    from rul_core.views import _window_inputs, model_inputs

    run = runs[3]
    pc = pl.PipelineConfig(baseline_snapshots=2)
    cfg = tiny_carle() if name == "carle" else ModelConfig(
        "rc_lstm", hparams={**tiny_rc_lstm().hparams, "signal_baseline_snapshots": 2})
    norm = pl.fit_normaliser([run], pc)
    shown = SimpleNamespace(config=cfg, normaliser=norm, pipeline_config=pc, snapshot_every=every)
    for snapshot in (6, 7):
        inputs, row = _window_inputs(shown, run, snapshot, 1)
        so_far = prepare_run(cfg, run.take(np.arange(snapshot + 1)), norm, pc,
                             snapshot_every=every)
        want = int(np.flatnonzero(so_far.snapshot_index == snapshot)[1])
        for got, expected in zip(inputs, so_far.inputs, strict=True):
            np.testing.assert_allclose(got[row], expected[want], rtol=1e-5, atol=1e-6)
    # the three-snapshot context the views used before saw another baseline
    near, snap = model_inputs(shown, run.take(np.arange(5, 8)), thin=False)
    assert not np.allclose(near[0][np.flatnonzero(snap == 2)[1]], inputs[0][row], atol=1e-4)


@pytest.mark.parametrize("name", ["multimodal", "carle", "rc_lstm"])
@pytest.mark.parametrize("every", [1, 2])
def test_explain_background_reads_only_the_sampled_windows_snapshots(
        runs: list, name: str, every: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Explain page's background: the same windows as sampling from every window of the
    runs (the former path, rebuilt here), read from their snapshots and the baseline's only."""
    from types import SimpleNamespace

    from rul_core import training
    from rul_core.signal import pipeline as pl
    from rul_core.views import explain_background, model_inputs

    pc = pl.PipelineConfig(baseline_snapshots=2, n_scales=10)
    cfg = {"multimodal": ModelConfig("multimodal", hparams={"image_shape": [64, 100]}),
           "carle": tiny_carle(), "rc_lstm": tiny_rc_lstm()}[name]
    chosen = [runs[3], runs[1]]
    norm = pl.fit_normaliser(chosen, pc)
    shown = SimpleNamespace(config=cfg, normaliser=norm, pipeline_config=pc, snapshot_every=every)
    everything = [np.concatenate(parts) for parts in
                  zip(*(model_inputs(shown, r)[0] for r in chosen), strict=True)]
    n = len(everything[0])
    assert n == 2 * (8 // every) * 4
    prepared: list[int] = []
    real_prepare = training.prepare_run

    def counting(config, run, *args, **kwargs):
        prepared.append(run.n_snapshots)
        return real_prepare(config, run, *args, **kwargs)

    monkeypatch.setattr(training, "prepare_run", counting)
    for max_windows, seed in ((5, 0), (5, 3), (n, 0)):
        prepared.clear()
        got = explain_background(shown, chosen, max_windows=max_windows, seed=seed)
        idx = (np.sort(np.random.default_rng(seed).choice(n, max_windows, replace=False))
               if n > max_windows else np.arange(n))
        for a, b in zip(got, everything, strict=True):
            np.testing.assert_array_equal(a, b[idx])
        if name != "rc_lstm":  # per run: the sampled windows' snapshots and the baseline's 2
            per_run = n // 2
            want = sum(len({0, 1} | set((idx[(idx >= a) & (idx < a + per_run)] - a) // 4))
                       for a in (0, per_run) if ((idx >= a) & (idx < a + per_run)).any())
            assert sum(prepared) == want
            assert want < n // 4 or max_windows == n


def test_snapshot_phases_train_more_windows_in_the_same_batches_per_epoch(runs: list) -> None:
    kw = {"epochs": 2, "batch_size": 8, "label_scheme": "capped", "label_params": {"max_rul": 4},
          "patience": 0, "snapshot_every": 2, "seed": 1}
    events: list[ProgressEvent] = []
    one = train(tiny_rc_lstm(), runs[:2], **kw)
    two = train(tiny_rc_lstm(), runs[:2], snapshot_phases=2, progress=events.append, **kw)
    again = train(tiny_rc_lstm(), runs[:2], snapshot_phases=2, **kw)
    # 2 runs x 4 kept snapshots x 4 windows = 32 windows per thinning, 2 thinnings
    assert one.metrics["train_windows"] == 32 and two.metrics["train_windows"] == 64
    assert two.metrics["snapshot_phases"] == 2 and "snapshot_phases" not in one.metrics
    batches = [(e.extra["epoch"], e.extra["batch"]) for e in events
               if e.stage == "train" and not e.extra.get("epoch_end")
               and not e.extra.get("fit_start")]
    assert batches == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3), (2, 4)]
    for wa, wb in zip(two.models[0].get_weights(), again.models[0].get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not all(np.array_equal(a, b) for a, b in
                   zip(one.models[0].get_weights(), two.models[0].get_weights(), strict=True))
    assert two.snapshot_every == 2  # it predicts like any every-2nd model
    assert list(predict_run(two, runs[3])["snapshot"]) == [1, 3, 5, 7]
    with pytest.raises(RulError, match="snapshot_phases"):
        train(tiny_rc_lstm(), runs[:1], snapshot_every=2, snapshot_phases=3, epochs=1)
    # a one-snapshot run has no phase 1: 16 + 4 windows at phase 0, 16 more from runs[0]
    short = train(tiny_rc_lstm(), [runs[0], runs[1].head(1)], **{**kw, "epochs": 1},
                  snapshot_phases=2)
    assert short.metrics["train_windows"] == 36


def test_noise_augmentation_jobs_leave_validation_clean_and_seed_each_copy(runs: list) -> None:
    aug = NoiseAugmentation("gaussian", 2.0, copies=2)
    jobs = preparation_jobs(runs[:2], [runs[2]], snapshot_phases=2, augmentation=aug, seed=5)
    plain = [(r.name, k) for r, k, noise in jobs if noise is None]
    assert plain == [("Bearing1_1", 0), ("Bearing1_2", 0), ("Bearing1_3", 0),
                     ("Bearing1_1", 1), ("Bearing1_2", 1)]
    noisy = [(r.name, k, noise) for r, k, noise in jobs if noise is not None]
    assert [(n, k) for n, k, _ in noisy] == [("Bearing1_1", 0), ("Bearing1_2", 0),
                                            ("Bearing1_1", 1), ("Bearing1_2", 1)] * 2
    assert all(m.kind == "gaussian" and m.severity == 2.0 for _, _, m in noisy)
    # phases of one run in one copy share a pattern; runs and copies never do
    seeds = {(n, c // 4): m.seed for c, (n, _, m) in enumerate(noisy)}
    assert len(set(seeds.values())) == 4
    again = preparation_jobs(runs[:2], [runs[2]], 2, aug, 5)
    assert [m.seed for _, _, m in again if m] == [m.seed for _, _, m in noisy]
    assert [m.seed for *_, m in preparation_jobs(runs[:2], [], 1, aug, 6) if m] != \
        [m.seed for *_, m in preparation_jobs(runs[:2], [], 1, aug, 5) if m]


def test_noise_augmentation_adds_the_noise_to_the_model_input(runs: list) -> None:
    """RC-LSTM reads the normalised signal, mean-pooled by ``pool`` samples: a noisy copy is
    the clean input plus N(0, 0.06² / pool) at severity 2 (the papers' sigma 0.03, doubled)."""
    from rul_core.signal.pipeline import fit_normaliser
    from rul_core.training import default_pipeline_config, prepare_run

    cfg = tiny_rc_lstm()
    pcfg = default_pipeline_config(cfg)
    norm = fit_normaliser(runs[:2], pcfg)
    noise = NoiseAugmentation("gaussian", 2.0).noise_model(0, 1, runs[0].name)
    clean = prepare_run(cfg, runs[0], norm, pcfg).inputs[0]
    noisy = prepare_run(cfg, runs[0], norm, pcfg, noise=noise).inputs[0]
    diff = (noisy - clean).ravel()
    assert diff.size > 10_000
    pool = int(cfg.resolved()["pool"])
    assert pool > 1 and abs(diff.mean()) < 0.002
    assert diff.std() == pytest.approx(0.06 / np.sqrt(pool), rel=0.03)


def test_training_with_noise_augmentation(runs: list) -> None:
    kw = {"epochs": 2, "batch_size": 8, "label_scheme": "capped", "label_params": {"max_rul": 4},
          "patience": 0, "seed": 1}
    aug = NoiseAugmentation("salt_and_pepper", 0.5, copies=2)
    events: list[ProgressEvent] = []
    clean = train(tiny_rc_lstm(), runs[:2], **kw)
    noisy = train(tiny_rc_lstm(), runs[:2], val_runs=[runs[2]], augmentation=aug,
                  progress=events.append, **kw)
    again = train(tiny_rc_lstm(), runs[:2], val_runs=[runs[2]], augmentation=aug, **kw)
    # 2 runs x 8 snapshots x 4 windows = 64 clean windows, and two noisy copies of them
    assert clean.metrics["train_windows"] == 64 and noisy.metrics["train_windows"] == 192
    batches = [(e.extra["epoch"], e.extra["batch"]) for e in events
               if e.stage == "train" and not e.extra.get("epoch_end")
               and not e.extra.get("fit_start")]
    assert batches == [(e, b) for e in (1, 2) for b in range(1, 9)]  # 64 / 8 per epoch
    prepared = [e.message for e in events if e.stage == "prepare" and e.done > 0]
    assert prepared[-4:] == ["windows of Bearing1_1 (salt_and_pepper noise)",
                             "windows of Bearing1_2 (salt_and_pepper noise)"] * 2
    assert not any("Bearing1_3 (" in m for m in prepared)  # validation stays clean
    for wa, wb in zip(noisy.models[0].get_weights(), again.models[0].get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert noisy.augmentation == aug and clean.augmentation is None
    with pytest.raises(RulError, match="augmentation must be a NoiseAugmentation"):
        train(tiny_rc_lstm(), runs[:2], augmentation={"kind": "gaussian"}, **kw)


def test_noise_augmentation_checks_its_fields() -> None:
    for bad, match in (({"kind": "pink"}, "kind: expected one of"),
                       ({"kind": "gaussian", "severity": 0}, "severity: expected a finite"),
                       ({"kind": "gaussian", "copies": 1.5}, "copies: expected a whole"),
                       ({"kind": "gaussian", "severity": "x"}, "field 'severity'"),
                       ({"kind": "uniform", "seed": 3}, r"unknown field\(s\) \['seed'\]"),
                       ({"severity": 1}, "field 'kind' is missing"),
                       (["gaussian"], "expected an object")):
        with pytest.raises(ValueError, match=match):
            NoiseAugmentation.from_dict(bad)  # type: ignore[arg-type]
    aug = NoiseAugmentation("uniform", 1.5, 3)
    assert NoiseAugmentation.from_dict(aug.to_dict()) == aug
    assert aug.describe() == ("3 noisy copies of each training run with uniform noise at "
                              "severity 1.5")


def test_noise_sweep_table_by_hand(runs: list) -> None:
    """Severity 0 is the model's own window predictions; the RMSE pools the runs' windows and
    the rank correlation is the mean of each run's Spearman."""
    from scipy.stats import spearmanr

    from rul_core.views import noise_sweep_predictions, sweep_curves, sweep_table

    model = train(tiny_rc_lstm(), runs[:2], epochs=1, batch_size=8, label_scheme="capped",
                  label_params={"max_rul": 4}, patience=0, seed=2)
    test = runs[2:]
    swept = noise_sweep_predictions({"m": model}, test, "gaussian", [0.0, 2.0], seed=3)
    found = swept["m"]
    assert [len(per_run) for per_run in found] == [2, 2]
    for (y, p), run in zip(found[0], test, strict=True):
        windows = predict_windows(model, run, with_labels=True)
        np.testing.assert_allclose(p, windows["rul"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(y, windows["y_true"], rtol=0, atol=1e-7)
    for (y0, p0), (y2, p2) in zip(*found, strict=True):
        np.testing.assert_array_equal(y2, y0)
        assert np.abs(p2 - p0).max() > 1e-5  # the noise reached the predictions
    table = sweep_table(swept, [0.0, 2.0])
    assert list(table.columns) == ["model", "severity", "rmse", "rank_correlation"]
    for i, pairs in enumerate(found):
        y = np.concatenate([a for a, _ in pairs])
        p = np.concatenate([b for _, b in pairs])
        assert table["rmse"][i] == pytest.approx(np.sqrt(np.mean((y - p) ** 2)), rel=1e-6)
        assert table["rank_correlation"][i] == pytest.approx(
            np.mean([spearmanr(a, b).statistic for a, b in pairs]), rel=1e-6)
    assert sweep_curves(table) == {"m": ([0.0, 2.0], table["rmse"].tolist())}


def test_rank_correlation_known_answers() -> None:
    from rul_core.views import rank_correlation

    assert rank_correlation(np.array([1.0, 0.5, 0.0]), np.array([9.0, 3.0, 1.0])) == 1.0
    assert rank_correlation(np.array([1.0, 0.5, 0.0]), np.array([0.0, 0.2, 7.0])) == -1.0
    assert np.isnan(rank_correlation(np.ones(4), np.arange(4.0)))  # constant labels
    assert np.isnan(rank_correlation(np.arange(4.0), np.zeros(4)))  # constant estimate
