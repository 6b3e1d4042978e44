"""Cross-validation over bearings: the fold plan, out-of-fold predictions that equal a model
trained on the fold by hand, pooled metrics, seen/unseen per fold, saving, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_models import TINY_CARLE

from rul_core.crossval import cross_validate, fold_plan
from rul_core.data.synthetic import synth_run
from rul_core.errors import Cancelled, InputError, RulError
from rul_core.models import ModelConfig
from rul_core.progress import CancelToken
from rul_core.training import predict_windows, train

TRAIN_KW = {"epochs": 1, "batch_size": 16, "label_scheme": "capped",
            "label_params": {"max_rul": 5}, "patience": 0}


def tiny_carl() -> ModelConfig:
    """CARL (no forest) at test size, MC dropout band."""
    return ModelConfig("carle", ablation="carl", hparams=dict(TINY_CARLE), mc_samples=3, seed=2)


@pytest.fixture(scope="module")
def runs() -> list:
    """Two bearings at condition 1 and one at condition 2 (unseen when it is held out)."""
    return [synth_run("Bearing1_1", n_snapshots=8, seed=1),
            synth_run("Bearing1_2", n_snapshots=8, seed=2),
            synth_run("Bearing2_1", n_snapshots=8, rpm=1650.0, load_n=4200.0, seed=9)]


@pytest.fixture(scope="module")
def result(runs: list):
    events: list = []
    cv = cross_validate(tiny_carl(), runs, isolate=False, progress=events.append, **TRAIN_KW)
    cv.events = events  # type: ignore[attr-defined]
    return cv


def test_fold_plan_is_leave_one_out_or_k_groups() -> None:
    names = ["a", "b", "c", "d"]
    assert fold_plan(names) == fold_plan(names, 4) == [
        (["b", "c", "d"], ["a"]), (["a", "c", "d"], ["b"]),
        (["a", "b", "d"], ["c"]), (["a", "b", "c"], ["d"])]
    two = fold_plan(names, 2, seed=1)
    assert len(two) == 2
    assert sorted(n for _, held in two for n in held) == names  # each bearing held out once
    for training, held in two:
        assert not set(training) & set(held) and sorted(training + held) == names
    for bad in (1, 5):
        with pytest.raises(InputError, match="between 2 and the number of bearings"):
            fold_plan(names, bad)


def test_out_of_fold_predictions_are_those_of_the_fold_model(runs: list, result) -> None:
    """Fold 2 holds out Bearing1_2: its predictions equal a model trained by hand on the
    other two bearings with the same seed, predicted on Bearing1_2."""
    by_hand = train(tiny_carl(), [runs[0], runs[2]], **TRAIN_KW)
    expected = predict_windows(by_hand, runs[1], with_labels=True)
    got = result.evaluation.windows.query("run == 'Bearing1_2'")
    assert (got["fold"] == 2).all()
    np.testing.assert_allclose(got["rul"].to_numpy(), expected["rul"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(got["y_true"].to_numpy(), expected["y_true"].to_numpy())


def test_each_bearing_once_and_pooled_metrics_by_hand(result) -> None:
    w = result.evaluation.windows
    assert w.groupby("run")["fold"].unique().map(list).to_dict() == {
        "Bearing1_1": [1], "Bearing1_2": [2], "Bearing2_1": [3]}
    table = result.evaluation.table.set_index("run")
    rmse = float(np.sqrt(np.mean((w["rul"] - w["y_true"]) ** 2)))
    assert table.loc["all", "rmse"] == pytest.approx(rmse)
    one = w[w["run"] == "Bearing2_1"]
    assert table.loc["Bearing2_1", "mae"] == pytest.approx(float(np.mean(
        np.abs(one["rul"] - one["y_true"]))))
    assert result.summary()["rmse"] == pytest.approx(rmse)


def test_seen_is_decided_per_fold(result) -> None:
    """Bearing2_1's fold trained on condition 1 only: unseen; the others saw a twin."""
    seen = result.evaluation.table.set_index("run")["seen"]
    assert seen["Bearing1_1"] and seen["Bearing1_2"] and not seen["Bearing2_1"]
    su = result.evaluation.seen_unseen.set_index("conditions")
    assert su.loc["seen", "runs"] == 2 and su.loc["unseen", "runs"] == 1


def test_folds_replay_and_progress(result, runs: list) -> None:
    folds = result.folds
    assert folds["held_out"].tolist() == ["Bearing1_1", "Bearing1_2", "Bearing2_1"]
    assert folds.loc[0, "training"] == "Bearing1_2, Bearing2_1"
    assert (folds["epochs"] == 1).all() and (folds["train_windows"] == 64).all()
    # capped labels turn into time: one PHM 2012 replay row per held-out bearing
    assert result.replay["run"].tolist() == folds["held_out"].tolist()
    assert result.summary()["grid_proxy"] == pytest.approx(result.replay["grid_proxy"].mean())
    assert [e.done for e in result.events if e.stage == "cross-validation"] == [0, 1, 2, 3]
    epochs = [e for e in result.events if e.extra.get("epoch_end")]
    assert [e.extra["fold"] for e in epochs] == [1, 2, 3]  # one epoch per fold
    # one line of the whole run, the same shape whichever fold reports
    assert [e.message for e in epochs] == [
        "0/3 folds done · fold 1: epoch 1/1 done · 2 waiting",
        "1/3 folds done · fold 2: epoch 1/1 done · 1 waiting",
        "2/3 folds done · fold 3: epoch 1/1 done"]
    assert all(e.extra["label"] == "cross-validation" for e in result.events)
    # the share of the whole run done: the folds before, and this fold's training (its
    # scoring still to come), each weighed by its reference cost
    from rul_core.job_progress import scoring_weight, training_plan

    names = ["Bearing1_1", "Bearing1_2", "Bearing2_1"]
    by_name = {r.name: r for r in runs}
    train_w = [training_plan(tiny_carl(), [by_name[n] for n in names if n != held],
                             **TRAIN_KW).stages.total for held in names]
    score_w = [scoring_weight(tiny_carl(), [by_name[held]]) for held in names]
    total = sum(train_w) + sum(score_w)
    expected = [(sum(train_w[:k]) + sum(score_w[:k]) + train_w[k]) / total for k in range(3)]
    assert [e.extra["overall"] for e in epochs] == pytest.approx(expected)
    overall = [e.extra["overall"] for e in result.events if "overall" in e.extra]
    assert overall == sorted(overall) and overall[-1] == 1.0  # never goes back
    # the whole run's ETA: from fold 2 on, the pace of the folds done; nothing left at the end
    assert all(e.extra["eta_s"] is not None for e in epochs[1:])
    assert result.events[-1].extra["eta_s"] == 0.0


def test_save_writes_every_table_and_load_reads_it_back(result, tmp_path: Path) -> None:
    from rul_core.crossval import load

    out = result.save(tmp_path / "cv")
    assert sorted(p.name for p in out.iterdir()) == [
        "folds.csv", "predictions.csv", "replay.csv", "summary.json", "table.csv", "windows.csv"]
    back = load(out)
    pd.testing.assert_frame_equal(back.evaluation.table, result.evaluation.table,
                                  check_dtype=False)
    pd.testing.assert_frame_equal(back.evaluation.seen_unseen, result.evaluation.seen_unseen,
                                  check_dtype=False)
    pd.testing.assert_frame_equal(back.folds, result.folds, check_dtype=False)
    assert back.summary() == pytest.approx(result.summary())
    assert back.settings == result.settings
    saved = json.loads((out / "summary.json").read_text())
    assert saved["summary"]["rmse"] == pytest.approx(result.summary()["rmse"])
    assert saved["settings"]["config"]["ablation"] == "carl"
    assert saved["settings"]["train"]["label_params"] == {"max_rul": 5}
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == len(result.evaluation.snapshots) == 24  # 3 bearings x 8 snapshots
    (out / "summary.json").write_text('{"settings": {}}')
    with pytest.raises(RulError, match=r"summary\.json: expected the settings"):
        load(out)
    (out / "windows.csv").unlink()
    with pytest.raises(RulError, match=r"windows\.csv missing"):
        load(out)


def test_record_saves_into_new_folders_and_catalogs(result, tmp_path: Path) -> None:
    from rul_core.crossval import record
    from rul_core.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    first, second = record(result, ws, dataset="synth"), record(result, ws, dataset="synth")
    assert first != second and first.parent == second.parent == ws.path / "crossval"
    assert first.name.startswith("carle-carl-") and (second / "table.csv").is_file()
    rows = ws.list_cross_validations()
    assert [r["path"] for r in rows] == [str(first), str(second)]
    assert rows[0]["runs"] == ["Bearing1_1", "Bearing1_2", "Bearing2_1"]
    assert rows[0]["metrics"] == pytest.approx(result.summary())


def test_a_crash_while_recording_leaves_nothing_half_written(
    result, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record that died mid-save left a folder of some of the files (uncatalogued, and an
    earlier result at ``out`` half overwritten): the files are written into a temporary folder
    that takes its name only once complete."""
    from rul_core import crossval
    from rul_core.crossval import load, record
    from rul_core.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    out = record(result, ws, out=tmp_path / "cv")
    before = (out / "windows.csv").read_bytes()

    def dies_half_way(self, folder):  # type: ignore[no-untyped-def]
        (Path(folder) / "windows.csv").write_text("fold\n1\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(crossval.CrossValidation, "save", dies_half_way)
    for target in (None, out):
        with pytest.raises(OSError, match="No space left"):
            record(result, ws, out=target)
    assert [p.name for p in (ws.path / "crossval").iterdir()] == []
    assert (out / "windows.csv").read_bytes() == before and sorted(
        p.name for p in tmp_path.iterdir()) == ["cv", "ws"]
    monkeypatch.undo()
    assert load(out).summary() == pytest.approx(result.summary())
    assert [r["path"] for r in ws.list_cross_validations()] == [str(out)]


def test_record_never_replaces_a_folder_of_other_files(result, tmp_path: Path) -> None:
    from rul_core.crossval import record
    from rul_core.workspace import Workspace

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match=r"holds 'thesis\.tex', not only cross-validation "
                                         "results; refusing to replace it"):
        record(result, Workspace(tmp_path / "ws"), out=mine)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


def test_settings_are_plain_json(runs: list) -> None:
    """Widget values arrive as numpy scalars; the saved settings hold plain numbers, and a
    noise augmentation its fields."""
    from rul_core.signal.noise import NoiseAugmentation

    cv = cross_validate(tiny_carl(), runs[:2], isolate=False,
                        **{**TRAIN_KW, "epochs": np.int64(1),
                           "label_params": {"max_rul": np.int64(5)},
                           "augmentation": NoiseAugmentation("gaussian", 0.5)})
    assert cv.settings["train"]["epochs"] == 1
    assert type(cv.settings["train"]["label_params"]["max_rul"]) is int
    assert cv.settings["train"]["augmentation"] == {"kind": "gaussian", "severity": 0.5,
                                                    "copies": 1}
    json.dumps(cv.settings)


def test_impossible_plans_and_cancel(runs: list) -> None:
    with pytest.raises(InputError, match="at least two training bearings"):
        cross_validate(tiny_carl(), runs[:2], inner_val=True, isolate=False, **TRAIN_KW)
    with pytest.raises(InputError, match="share a name"):
        cross_validate(tiny_carl(), [runs[0], runs[0]], isolate=False, **TRAIN_KW)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        cross_validate(tiny_carl(), runs, isolate=False, cancel=token, **TRAIN_KW)


def test_folds_at_once_in_child_processes_match_one_at_a_time(runs: list, result) -> None:
    """jobs=3: the three folds train at once, each in its own child process; the pooled
    predictions and the fold table are those of the folds trained one at a time in this
    process, and every fold's progress arrives, labelled."""
    events: list = []
    cv = cross_validate(tiny_carl(), runs, jobs=3, progress=events.append, **TRAIN_KW)
    got, expected = cv.evaluation.windows, result.evaluation.windows
    assert got[["fold", "run", "snapshot"]].equals(expected[["fold", "run", "snapshot"]])
    np.testing.assert_allclose(got["rul"].to_numpy(), expected["rul"].to_numpy(), rtol=1e-5)
    same = ["fold", "held_out", "training", "validation", "epochs", "train_windows"]
    assert cv.folds[same].equals(result.folds[same])
    np.testing.assert_allclose(cv.folds["final_loss"], result.folds["final_loss"], rtol=1e-5)
    assert cv.replay["run"].tolist() == result.replay["run"].tolist()
    stage = [e for e in events if e.stage == "cross-validation"]
    assert [e.done for e in stage] == [0, 1, 2, 3] and stage[0].message == (
        "0/3 folds done, 3 at once · 3 waiting")
    epochs = [e for e in events if e.extra.get("epoch_end")]
    assert sorted(e.extra["fold"] for e in epochs) == [1, 2, 3]
    overall = [e.extra["overall"] for e in events if "overall" in e.extra]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0)
    # one line, listing the folds training side by side in their order
    both = [e.message for e in events if e.message.startswith("0/3 folds done, 3 at once · "
                                                              "fold 1: ")
            and " · fold 2: " in e.message]
    assert both, [e.message for e in events]


def test_folds_at_once_need_child_processes_and_stop_on_cancel(runs: list) -> None:
    with pytest.raises(InputError, match="isolate=True"):
        cross_validate(tiny_carl(), runs, jobs=2, isolate=False, **TRAIN_KW)
    with pytest.raises(InputError, match="jobs must be 1"):
        cross_validate(tiny_carl(), runs, jobs=0, **TRAIN_KW)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        cross_validate(tiny_carl(), runs, jobs=2, cancel=token, **TRAIN_KW)


def test_folds_at_once_stop_when_cancelled_mid_run(runs: list) -> None:
    """Cancelled at the first training batch of any fold: every fold's process stops and
    none is left behind."""
    import multiprocessing

    token = CancelToken()

    def cancel_once_training(event) -> None:
        if event.stage == "train":
            token.cancel()

    before = set(multiprocessing.active_children())
    with pytest.raises(Cancelled):
        cross_validate(tiny_carl(), runs[:2], jobs=2, cancel=token,
                       progress=cancel_once_training, **{**TRAIN_KW, "epochs": 500})
    assert set(multiprocessing.active_children()) == before


def test_cli_crossval_in_child_processes(make_synth, tmp_path: Path, capsys) -> None:
    """Two bearings, two folds, trained at once, each in a fresh child process; the tables
    are printed, saved, and the run is in the catalog."""
    from rul_core.cli import main
    from rul_core.workspace import Workspace

    data = make_synth("femto", n_snapshots=8, samples=2560)
    out = tmp_path / "cv"
    code = main(["crossval", "--model", "carle", "--ablation", "carl", "--data", str(data),
                 "--labels", "capped", "--label-param", "max_rul=5", "--epochs", "1",
                 "--patience", "0", "--batch-size", "16", "--out", str(out), "--quiet",
                 "--workspace", str(tmp_path / "ws"), "--jobs", "2",
                 *(a for k, v in TINY_CARLE.items() for a in ("--hparam", f"{k}={json.dumps(v)}"))])
    assert code == 0
    folds = pd.read_csv(out / "folds.csv")
    assert folds["held_out"].tolist() == ["Bearing1_1", "Bearing1_2"]
    rows = Workspace(tmp_path / "ws").list_cross_validations()
    assert [r["path"] for r in rows] == [str(out.resolve())]
    assert rows[0]["metrics"]["rmse"] == pytest.approx(
        pd.read_csv(out / "table.csv").set_index("run").loc["all", "rmse"])
    capsys.readouterr()
    assert main(["models", "--workspace", str(tmp_path / "ws")]) == 0
    listing = capsys.readouterr().out
    assert "cross-validations (out-of-fold scores)" in listing
    assert any(line.split()[1:6] == ["carle", "carl", "quick", data.name, "2"]
               for line in listing.splitlines())
    assert str(out.resolve()) in listing
    assert main(["crossval", "--model", "carle", "--data", str(data), "--folds", "3",
                 "--workspace", str(tmp_path / "ws"), "--quiet"]) == 2  # 2 bearings


def test_cli_crossval_several_ablations_side_by_side(make_synth, tmp_path: Path, capsys) -> None:
    """Each ablation cross-validated in turn, saved in its own subfolder, then the papers'
    ablation table of the out-of-fold metrics; a wrong ablation stops before any training."""
    from rul_core.cli import main
    from rul_core.workspace import Workspace

    data = make_synth("femto", n_snapshots=8, samples=2560)
    common = ["--data", str(data), "--epochs", "1", "--patience", "0", "--batch-size", "16",
              "--in-process", "--quiet", "--workspace", str(tmp_path / "ws"),
              *(a for k, v in TINY_CARLE.items() for a in ("--hparam", f"{k}={json.dumps(v)}"))]
    out = tmp_path / "cv"
    assert main(["crossval", "--model", "carle", "--ablation", "carl", "cale", "--out",
                 str(out), *common]) == 0
    printed = capsys.readouterr().out
    assert "## folds: carle/cale" in printed
    assert "## out-of-fold metrics side by side (the papers' ablation table)" in printed
    header = next(line for line in printed.splitlines() if "carl / rmse" in line)
    assert "cale / rmse" in header
    carl = pd.read_csv(out / "carl" / "table.csv").set_index("run")
    row = [line for line in printed.splitlines()
           if [c.strip() for c in line.split("|")[1:3]] == ["all", "all"]][-1]
    assert row.split("|")[3].strip() == f"{carl.loc['all', 'rmse']:.4g}"  # carl's rmse first
    assert [r["ablation"] for r in Workspace(tmp_path / "ws").list_cross_validations()] == [
        "carl", "cale"]
    assert main(["crossval", "--model", "carle", "--ablation", "carl", "mmv1", *common]) == 2
    assert "ablation of 'carle' must be one of" in capsys.readouterr().err
    assert main(["crossval", "--model", "carle", "--jobs", "2", *common]) == 2  # --in-process
    assert capsys.readouterr().err.strip() == (
        "error: crossval: --jobs 2 trains folds in their own processes; not with --in-process")
    assert main(["crossval", "--model", "carle", "--jobs", "0", *common]) == 2
    assert capsys.readouterr().err.strip() == "error: crossval: --jobs must be 1 or more, got 0"


def test_cli_crossval_ctrl_c_in_a_later_ablation_keeps_the_earlier_ones(
        make_synth, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ablation was saved only after all of them had trained: a Ctrl-C during the last
    one lost the finished ones (hours at the paper preset)."""
    from rul_core import crossval
    from rul_core.cli import main
    from rul_core.workspace import Workspace

    real = crossval.cross_validate

    def second_interrupted(config, *args, **kwargs):  # type: ignore[no-untyped-def]
        if config.ablation == "cale":
            raise KeyboardInterrupt
        return real(config, *args, **kwargs)

    monkeypatch.setattr(crossval, "cross_validate", second_interrupted)
    data = make_synth("femto", n_snapshots=8, samples=2560)
    out = tmp_path / "cv"
    assert main(["crossval", "--model", "carle", "--ablation", "carl", "cale", "--out",
                 str(out), "--data", str(data), "--epochs", "1", "--patience", "0",
                 "--batch-size", "16", "--in-process", "--quiet", "--workspace",
                 str(tmp_path / "ws"),
                 *(a for k, v in TINY_CARLE.items() for a in ("--hparam", f"{k}={json.dumps(v)}"))
                 ]) == 130
    err = capsys.readouterr().err
    assert (f"crossval: cancelled while cross-validating carle/cale; 1 of 2 ablation(s) kept "
            f"whole (saved and catalogued): carl ({(out / 'carl').resolve()})") in err
    assert (out / "carl" / "table.csv").is_file() and not (out / "cale").exists()
    ws = Workspace(tmp_path / "ws")
    assert [r["ablation"] for r in ws.list_cross_validations()] == ["carl"]
    assert [d["name"] for d in ws.list_datasets()] == [data.name]


def test_cli_progress_is_one_bar_of_the_whole_run(make_synth, tmp_path: Path, capsys) -> None:
    """The command line showed a bar per stage that every fold moved back to 0 (and, with
    ``--jobs``, a bar of the folds without an ETA): it now shows one bar of the whole run,
    forward only, with its ETA and the line of every fold."""
    import re

    from rul_core.cli import main

    data = make_synth("femto", n_snapshots=8, samples=2560, n_bearings=3)
    assert main(["crossval", "--model", "carle", "--ablation", "carl", "--data", str(data),
                 "--epochs", "2", "--patience", "0", "--batch-size", "16", "--in-process",
                 "--out", str(tmp_path / "cv"), "--workspace", str(tmp_path / "ws"),
                 *(a for k, v in TINY_CARLE.items() for a in ("--hparam", f"{k}={json.dumps(v)}"))
                 ]) == 0
    refreshes = [line.strip() for line in re.split(r"[\r\n]", capsys.readouterr().err)
                 if "%|" in line]
    bars = [line for line in refreshes if not line.startswith("load")]
    assert bars and all(line.startswith("cross-validation: ") for line in bars)
    percent = [int(re.search(r"(\d+)%\|", line).group(1)) for line in bars]
    assert percent == sorted(percent) and percent[-1] == 100
    assert any("1/3 folds done · fold 2: " in line and "ETA " in line for line in bars)


def test_two_records_at_the_same_moment_get_their_own_folders(
    result, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app and a CLI run record a cross-validation of the same model in the same second:
    each must get its own folder (one shared folder mixes their files under two catalog
    rows)."""
    import threading

    from rul_core import crossval
    from rul_core.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    real_save = crossval.CrossValidation.save
    both_chose = threading.Barrier(2)

    def save_once_both_chose(self, folder):  # type: ignore[no-untyped-def]
        both_chose.wait(timeout=30)  # each has picked its folder (a slow disk widens this)
        return real_save(self, folder)

    monkeypatch.setattr(crossval.CrossValidation, "save", save_once_both_chose)
    monkeypatch.setattr(crossval.time, "strftime", lambda fmt: "20260101-000000")
    folders: list[Path] = []
    threads = [threading.Thread(target=lambda: folders.append(crossval.record(result, ws)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(folders) == 2 and folders[0] != folders[1]
    assert sorted(r["path"] for r in ws.list_cross_validations()) == sorted(map(str, folders))
