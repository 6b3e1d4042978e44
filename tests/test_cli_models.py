"""CLI: train -> catalog -> models -> predict (partial run) -> evaluate, and --help."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rul_core.cli import main
from rul_core.data.synthetic import write_dataset
from rul_core.workspace import Workspace

TINY = [
    "--hparam", "cnn_filters=[4,4,4,4]",
    "--hparam", "lstm_units=[4,4]",
    "--hparam", "attention_heads=1",
    "--hparam", "attention_key_dim=4",
    "--hparam", "dense_units=[8,6,4]",
    "--hparam", "forest_trees=5",
]  # fmt: skip


@pytest.mark.parametrize("cmd", ["train", "crossval", "evaluate", "predict", "phm2012", "models"])
def test_every_subcommand_has_help(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_train_predict_evaluate_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_dataset(tmp_path / "femto", layout="femto", n_bearings=3, n_snapshots=6)
    ws_dir = tmp_path / "ws"
    bundle = tmp_path / "bundles" / "carle"
    common = ["--workspace", str(ws_dir), "--quiet"]

    rc = main(["train", "--model", "carle", "--preset", "quick", "--data", str(data),
               "--test", "Bearing1_3", "--epochs", "1", "--seed", "1", "--out", str(bundle),
               *TINY, *common])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "bundle written to" in out and "## test runs" in out
    assert "units: rmse, mae, piaw: normalised RUL" in out  # the val_* metrics above
    card = json.loads((bundle / "card.json").read_text())
    # defaults: training = every run but --test; validation = the last training run
    assert [r["name"] for r in card["train_runs"]] == ["Bearing1_1"]
    assert [r["name"] for r in card["val_runs"]] == ["Bearing1_2"]
    assert card["hyperparameters"]["forest_trees"] == 5
    ws = Workspace(ws_dir)
    rows = ws.list_bundles()
    assert [(r["model"], r["ablation"], r["preset"]) for r in rows] == [("carle", "full", "quick")]
    assert "val_rmse" in rows[0]["metrics"]
    assert len(ws.list_evaluations(bundle)) == 1

    assert main(["models", *common]) == 0
    listing = capsys.readouterr().out
    assert any(line.split()[1:4] == ["carle", "full", "quick"] for line in listing.splitlines())
    assert str(bundle.resolve()) in listing

    run_dir = data / "Learning_set" / "Bearing1_3"
    assert main(["predict", "--model", str(bundle), "--run", str(run_dir), "--upto", "3",
                 *common]) == 0  # fmt: skip
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(df.columns) == ["snapshot", "time_s", "rul", "lower", "upper", "std", "rul_s"]
    assert list(df["snapshot"]) == [0, 1, 2]
    assert list(df["time_s"]) == [0.0, 10.0, 20.0]

    csv = tmp_path / "eval.csv"
    assert main(["evaluate", "--model", str(bundle), "--data", str(data), "--runs",
                 "Bearing1_3", "--out", str(csv), *common]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "seen vs unseen" in printed
    # Bearing1_3 is a challenge test bearing's name, but 6 snapshots are not its 1802
    assert "## PHM 2012 replay on runs recorded to failure" in printed
    assert "Bearing1_3: 6 snapshots, not the 1802 the challenge kept" in printed
    assert "challenge score" not in printed
    table = pd.read_csv(csv)
    assert list(table["run"]) == ["Bearing1_3", "all runs", "all"]
    assert len(ws.list_evaluations(bundle)) == 2

    # two bundles (a copy of the same model): each one's tables, then side by side
    import shutil

    twin = tmp_path / "bundles" / "twin"
    shutil.copytree(bundle, twin)
    preds = tmp_path / "predictions.csv"
    assert main(["evaluate", "--model", str(bundle), str(twin), "--data", str(data), "--runs",
                 "Bearing1_3", "--out", str(csv), "--predictions", str(preds),
                 *common]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    per_snapshot = pd.read_csv(preds)
    assert list(per_snapshot.columns) == ["model", "run", "condition", "seen", "snapshot",
                                          "time_s", "y_true", "rul", "lower", "upper", "std",
                                          "level"]
    assert list(per_snapshot["model"]) == ["carle"] * 6 + ["twin"] * 6
    assert list(per_snapshot["snapshot"]) == [*range(6)] * 2
    assert per_snapshot["seen"].all()  # condition 1, as the training bearing
    # the same model predicts what `predict` printed for the snapshots recorded so far
    np.testing.assert_allclose(per_snapshot["rul"].iloc[:3], df["rul"], atol=1e-5)
    np.testing.assert_allclose(per_snapshot["rul"].iloc[:6], per_snapshot["rul"].iloc[6:])
    assert (per_snapshot["lower"] <= per_snapshot["rul"]).all() and set(per_snapshot["level"]) == {
        0.9}
    assert f"predictions written to {preds.resolve()}" in printed
    assert "## per bearing x condition (windows): twin" in printed
    assert "## side by side (the papers' ablation table)" in printed
    side = pd.read_csv(csv)
    assert list(side.columns[:4]) == ["condition", "run", "carle · rmse", "carle · mae"]
    assert side["carle · rmse"].tolist() == side["twin · rmse"].tolist()
    assert side["twin · rmse"].iloc[0] == pytest.approx(table["rmse"].iloc[0])
    assert len(ws.list_evaluations(twin)) == 1


def test_user_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = ["--workspace", str(tmp_path / "ws"), "--quiet"]
    rc = main(["train", "--model", "carle", "--data", str(tmp_path / "nope"), "--out",
               str(tmp_path / "b"), *ws])  # fmt: skip
    assert rc == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["train", "--model", "carle", "--data", str(tmp_path), "--patience", "-1",
                 "--out", str(tmp_path / "b"), *ws]) == 2  # fmt: skip
    assert "--patience must be 0" in capsys.readouterr().err
    assert main(["train", "--model", "carle", "--data", str(tmp_path), "--every", "0",
                 "--out", str(tmp_path / "b"), *ws]) == 2  # fmt: skip
    assert "--every must be 1" in capsys.readouterr().err
    assert main(["train", "--model", "carle", "--data", str(tmp_path), "--every", "2",
                 "--phases", "3", "--out", str(tmp_path / "b"), *ws]) == 2  # fmt: skip
    assert "--phases must lie between 1 and --every (2), got 3" in capsys.readouterr().err
    short = write_dataset(tmp_path / "short", layout="femto", n_bearings=2, n_snapshots=2,
                          samples=512)  # a quick CARLE window is 1000 samples
    assert main(["train", "--model", "carle", "--data", str(short), "--epochs", "1",
                 "--out", str(tmp_path / "b"), *ws]) == 2  # fmt: skip
    assert ("window_length: 1000 samples is longer than the 512-sample snapshots of run "
            "Bearing1_1") in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "nobundle"), "--run", str(tmp_path),
                 *ws]) == 2  # fmt: skip
    assert "bundle" in capsys.readouterr().err
    assert main(["models", *ws]) == 0
    assert "no model bundles" in capsys.readouterr().out


def test_phm2012_scores_a_truncated_test_bearing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run named and truncated like the challenge's Bearing2_7 is scored against 580 s."""
    from rul_core.data.synthetic import synth_run, write_femto_run
    from rul_core.metrics import phm2012_accuracy

    data = write_dataset(tmp_path / "femto", layout="femto", n_bearings=2, n_snapshots=6)
    bundle = tmp_path / "bundle"
    common = ["--workspace", str(tmp_path / "ws"), "--quiet"]
    assert main(["train", "--model", "carle", "--ablation", "carl", "--data", str(data),
                 "--no-val", "--epochs", "1", "--every", "2", "--phases", "2", "--out",
                 str(bundle), "--augment-noise", "uniform", "--augment-copies", "2",
                 *TINY, *common]) == 0  # fmt: skip
    card = json.loads((bundle / "card.json").read_text())
    assert card["snapshot_every"] == 2 and card["metrics"]["snapshot_phases"] == 2
    assert card["augmentation"] == {"kind": "uniform", "severity": 1.0, "copies": 2}
    assert "Augmentation: 2 noisy copies of each training run with uniform noise at " \
        "severity 1 (the same batches per epoch; validation runs clean)." \
        in (bundle / "card.md").read_text()
    assert "one snapshot in 2, counted back from each run's last (and from the 1 snapshot(s) " \
        "before it: 2 phase offsets" in (bundle / "card.md").read_text()
    test_set = tmp_path / "Test_set"
    for name, n in (("Bearing2_7", 172), ("Bearing2_9", 8)):
        write_femto_run(test_set / name, synth_run(name, n_snapshots=n, seed=3))
    capsys.readouterr()
    out_csv = tmp_path / "phm.csv"
    assert main(["phm2012", "--model", str(bundle), "--test-set", str(test_set), "--out",
                 str(out_csv), *common]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    table = pd.read_csv(out_csv).set_index("run")
    b27 = table.loc["Bearing2_7"]
    assert b27["snapshots"] == 172 and b27["actual_rul_s"] == 580
    assert b27["elapsed_s"] == pytest.approx(1720.0)  # every snapshot counts, not every 2nd
    assert b27["estimate_rul_s"] >= 0
    assert b27["accuracy"] == pytest.approx(
        phm2012_accuracy([580.0], [b27["estimate_rul_s"]])[0], rel=1e-9
    )
    assert np.isnan(table.loc["Bearing2_9", "accuracy"])  # not a challenge test bearing
    assert f"score: {b27['accuracy']:.4f} over 1 of the challenge's test bearings" in printed
    assert main(["phm2012", "--model", str(bundle), "--test-set", str(test_set), "--quantile",
                 "10", *common]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == (
        "error: phm2012: --quantile: expected a quantile between 0 and 1 (0.5: the point "
        "estimate), got 10")


def test_phm2012_on_the_real_test_set_copy(
    real_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real Test_set/Bearing1_4 copy holds its first 40 snapshots, not the 1139 the
    challenge kept: it gets an estimate after 400 s but no score, and the user is told why."""
    demo_model = Path(__file__).resolve().parents[1] / "assets" / "demo" / "model"
    out_csv = tmp_path / "phm.csv"
    assert main(["phm2012", "--model", str(demo_model), "--test-set",
                 str(real_data_dir / "femto" / "Test_set"), "--out", str(out_csv),
                 "--workspace", str(tmp_path / "ws"), "--quiet"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "Bearing1_4: 40 snapshots, but the challenge truncated it at 1139: not scored" in printed
    table = pd.read_csv(out_csv)
    assert list(table["run"]) == ["Bearing1_4"]
    assert table["elapsed_s"].iloc[0] == pytest.approx(400.0, abs=1.0)
    assert table["estimate_rul_s"].iloc[0] >= 0 and np.isnan(table["accuracy"].iloc[0])
    # a cautious quantile of the calibrated band: an earlier failure, so less time left
    base = ["phm2012", "--model", str(demo_model), "--test-set",
            str(real_data_dir / "femto" / "Test_set"), "--workspace", str(tmp_path / "ws"),
            "--quiet"]  # fmt: skip
    assert main([*base, "--out", str(out_csv), "--quantile", "0.2"]) == 0
    assert "0.2 quantile estimate" in capsys.readouterr().out
    cautious = pd.read_csv(out_csv)["estimate_rul_s"].iloc[0]
    assert 0 <= cautious < table["estimate_rul_s"].iloc[0]
    assert main([*base, "--quantile", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: phm2012: --quantile: expected a quantile between 0 and 1 (0.5: the point "
        "estimate), got 1")


@pytest.mark.parametrize(("options", "message"), [
    (["--augment-noise", "gaussian", "--augment-copies", "0"],
     "--augment-copies: expected a whole number >= 1, got 0"),
    (["--augment-noise", "gaussian", "--augment-severity", "-1"],
     "--augment-severity: expected a finite value > 0, got -1.0"),
    (["--augment-copies", "2"], "--augment-severity and --augment-copies need --augment-noise"),
])
def test_train_refuses_bad_noise_augmentation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    assert main(["train", "--model", "rc_lstm", "--data", str(tmp_path), "--out",
                 str(tmp_path / "b"), "--workspace", str(tmp_path / "ws"), "--quiet",
                 *options]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert message in err and "train:" in err
    assert not (tmp_path / "b").exists()


def _python(code: str, env_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (optionally with ``env_path`` first on the path)."""
    env = dict(os.environ)
    if env_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(env_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_backend_import_drops_startup_notices_and_keeps_other_stderr(tmp_path: Path) -> None:
    # A stand-in 'keras' writes one TensorFlow start-up notice and one real message to fd 2.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "keras.py").write_text(
        "import os\n"
        "os.write(2, b'I0000 port.cc:153] oneDNN custom operations are on. You may see\\n')\n"
        "os.write(2, b'a real problem\\n')\n"
    )
    proc = _python("from rul_core.device import import_backend_quietly\n"
                   "import_backend_quietly()\nimport sys\nassert 'keras' in sys.modules\n",
                   env_path=fake)
    assert proc.returncode == 0, proc.stderr
    assert "a real problem" in proc.stderr
    assert "oneDNN" not in proc.stderr


def test_model_commands_print_no_tensorflow_startup_notices(tmp_path: Path) -> None:
    env = {**os.environ, "RUL_WORKSPACE": str(tmp_path / "ws")}  # not ./workspace in the repo
    proc = subprocess.run(
        [sys.executable, "-m", "rul_core", "predict", "--model", str(tmp_path / "missing"),
         "--run", str(tmp_path)], capture_output=True, text=True, timeout=120, check=False,
        env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing'}: expected a model bundle directory"]


DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"


@pytest.mark.parametrize("level", ["90", "0", "1"])
def test_predict_refuses_a_level_outside_0_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    """``--level 90`` (a percentage) was a ValueError traceback from deep in the model."""
    rc = main(["predict", "--model", str(DEMO / "model"), "--run",
               str(DEMO / "data" / "Learning_set" / "Bearing1_1"), "--level", level,
               "--workspace", str(tmp_path / "ws")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip() == (f"error: predict: --level: expected an interval level between 0 "
                           f"and 1 (0.9 for a 90 % band), got {level}")


@pytest.mark.parametrize(("options", "message"), [
    (["--epochs", "0"], "train: --epochs must be 1 or more, got 0"),
    (["--batch-size", "0"], "train: --batch-size must be 1 or more, got 0"),
    (["--hparam", "batch_size=0", "--epochs", "1"],
     "train: batch_size must be a whole number >= 1, got 0"),
    (["--hparam", "epochs=0"], "train: epochs must be a whole number >= 1, got 0"),
])
def test_train_refuses_no_epochs_or_empty_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    """``--batch-size 0`` was a ZeroDivisionError traceback; ``--epochs 0`` wrote an untrained
    bundle and catalogued it as a model."""
    rc = main(["train", "--model", "carle", "--ablation", "carl", "--data", str(DEMO / "data"),
               "--out", str(tmp_path / "b"), "--workspace", str(tmp_path / "ws"), "--quiet",
               *options])  # fmt: skip
    assert rc == 2
    assert capsys.readouterr().err.strip().endswith(message)
    assert not (tmp_path / "b").exists()


def test_train_refuses_no_val_with_val(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--no-val --val RUN`` silently trained with RUN as validation."""
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model", "carle", "--data", str(DEMO / "data"), "--no-val", "--val",
              "Bearing1_1", "--out", str(tmp_path / "b"), "--workspace", str(tmp_path / "ws")])
    assert exc.value.code == 2
    assert "argument --val: not allowed with argument --no-val" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_evaluate_says_what_the_metrics_are_measured_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The metric tables printed rmse 0.245 and score 1030 with no unit: normalised RUL? hours?
    snapshots? A units line now follows the first table."""
    assert main(["evaluate", "--model", str(DEMO / "model"), "--data", str(DEMO / "data"),
                 "--runs", "Bearing2_1", "--workspace", str(tmp_path / "ws"), "--quiet"]) == 0
    out = capsys.readouterr().out
    first_table_end = out.index("\n\n## seen vs unseen")
    units = out.index("units: rmse, mae, piaw: normalised RUL of the model's label scheme")
    assert out.index("## per bearing x condition") < units < first_table_end
    assert "score: CARLE eq. 16 summed over the row" in " ".join(out.split())
    assert max(len(line) for line in out[units:first_table_end].splitlines()) <= 100


def test_predict_shows_progress_unless_quiet(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """predict offered --quiet ("no progress bars") but never showed one, not even while
    loading and extracting the features of a whole real bearing (2060 windows for FEMTO
    Bearing3_1)."""
    base = ["predict", "--model", str(DEMO / "model"), "--run",
            str(DEMO / "data" / "Learning_set" / "Bearing1_1"), "--workspace",
            str(tmp_path / "ws")]  # fmt: skip
    assert main(base) == 0
    captured = capsys.readouterr()
    assert "features: 100%" in captured.err and "48/48" in captured.err
    assert captured.out.startswith("snapshot,time_s,rul,lower,upper,std,rul_s")
    assert main([*base, "--quiet"]) == 0
    assert "features:" not in capsys.readouterr().err


def test_explain_shows_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """explain ran silently (30 s for the demo Multimodal-RUL with its default LIME and SHAP
    samples): no bar while loading, extracting features or attributing."""
    out = tmp_path / "explain"
    assert main(["explain", "--model", str(DEMO / "model"), "--run", str(DEMO / "data"),
                 "--run-name", "Bearing2_1", "--window", "3", "--methods", "lrp", "--out",
                 str(out)]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "loading runs: 100%" in err and "features: 100%" in err
    assert "compare:   0%" in err and "compare: 100%" in err and "2/2" in err
    assert (out / "lrp.npz").is_file() and (out / "compare.json").is_file()


def test_explain_parses_through_the_workspace_cache(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """explain parsed the dataset on every call, without the workspace cache the other model
    commands use, and had no --workspace, --layout or --quiet."""
    ws = tmp_path / "ws"
    args = ["explain", "--model", str(DEMO / "model"), "--run", str(DEMO / "data"),
            "--run-name", "Bearing1_1", "--window", "0", "--methods", "lrp", "--layout",
            "femto", "--workspace", str(ws), "--quiet", "--out", str(tmp_path / "explain")]
    assert main(args) == 0
    assert "%" not in capsys.readouterr().err  # --quiet: no bars
    cached = sorted(p.name for p in (ws / "cache").rglob("*") if p.is_file())
    assert cached  # the parsed runs, reused by the next command on this dataset
    assert main([*args[:-1], str(tmp_path / "explain2")]) == 0
    assert sorted(p.name for p in (ws / "cache").rglob("*") if p.is_file()) == cached


def test_train_help_describes_train(capsys: pytest.CaptureFixture[str]) -> None:
    """train --help opened with "Subcommands ``train``, ``evaluate``, ``predict``, ``phm2012``
    and ``models``." (the module docstring, RST markup included)."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    description = out[out.index("\n\n") + 2:]
    assert description.startswith("Train a model on runs of --data and write its bundle to --out.")
    assert "Subcommands" not in out and "``" not in out


def test_model_commands_tell_which_files_they_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """predict (and train, evaluate, phm2012, crossval) loaded the good files of a run with a
    broken one and said nothing about the file left out."""
    import shutil

    run = tmp_path / "femto" / "Learning_set" / "Bearing2_1"
    shutil.copytree(DEMO / "data" / "Learning_set" / "Bearing2_1", run)
    (run / "acc_00005.csv").write_text("")
    assert main(["predict", "--model", str(DEMO / "model"), "--run", str(run),
                 "--workspace", str(tmp_path / "ws"), "--quiet"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "warning: 1 file(s) skipped with a problem, 11 used:\n" in captured.err
    assert (f"  - {run / 'acc_00005.csv'}: expected at least one row of 6 numbers, found an "
            "empty file\n") in captured.err
    assert len(pd.read_csv(io.StringIO(captured.out))) == 11


@pytest.mark.parametrize("command", ["predict", "evaluate", "phm2012"])
def test_csv_out_that_is_a_folder_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """``--out`` naming an existing folder ended, after all the work, in an IsADirectoryError
    traceback from the atomic rename."""
    data = ["--run"] if command == "predict" else ["--data"] if command == "evaluate" \
        else ["--test-set"]
    folder = tmp_path / "results"
    folder.mkdir()
    rc = main([command, "--model", str(DEMO / "model"), *data,
               str(DEMO / "data" / "Learning_set" / "Bearing2_1"), "--out", str(folder),
               "--workspace", str(tmp_path / "ws"), "--quiet"])  # fmt: skip
    assert rc == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {command}: --out {folder}: is a folder; expected the path of a CSV file to write")
    assert list(folder.iterdir()) == []


def test_train_refuses_an_out_that_is_not_a_bundle_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train --out`` naming a file or a folder of other files was refused only after the
    whole training (minutes to hours with the paper preset), which was then lost."""
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    assert main(["train", "--model", "carle", "--data", str(DEMO / "data"), "--out",
                 str(notes), "--workspace", str(tmp_path / "ws"), "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err == f"error: {notes}: exists and is not a model bundle; refusing to replace it\n"
    assert "training carle" not in err and notes.read_text() == "keep me"


def test_explain_never_replaces_a_folder_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``explain --out DIR`` swapped DIR for its own output folder: a folder holding the
    user's other files, or a plain file of that name, was deleted without a word."""
    base = ["explain", "--model", str(DEMO / "model"), "--run", str(DEMO / "data"),
            "--window", "2", "--methods", "lrp", "--out"]  # fmt: skip
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    assert main([*base, str(mine)]) == 2
    assert capsys.readouterr().err == (
        f"error: {mine}: holds 'thesis.tex', not only explain output; refusing to replace it "
        "(name a new or empty folder)\n")
    assert (mine / "thesis.tex").read_text() == "precious"
    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    assert main([*base, str(notes)]) == 2
    assert "exists and is not a folder of explain output" in capsys.readouterr().err
    assert notes.read_text() == "keep"
    out = tmp_path / "explain"  # an earlier explain output is replaced
    assert main([*base, str(out)]) == 0
    assert main([*base, str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "lrp.npz", "lrp.png"]


def test_crossval_refuses_an_out_that_is_a_file_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``crossval --out FILE`` ran every fold, then died in a FileExistsError traceback and the
    whole cross-validation was lost."""
    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    rc = main(["crossval", "--model", "carle", "--ablation", "carl", "--data",
               str(DEMO / "data"), "--epochs", "1", "--folds", "2", "--out", str(notes),
               "--workspace", str(tmp_path / "ws"), "--quiet"])  # fmt: skip
    assert rc == 2
    assert capsys.readouterr().err == (
        f"error: crossval: --out {notes}: is a file; expected a folder for the result files\n")
    assert notes.read_text() == "keep"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    rc = main(["crossval", "--model", "carle", "--ablation", "carl", "--data",
               str(DEMO / "data"), "--epochs", "1", "--folds", "2", "--out", str(mine),
               "--workspace", str(tmp_path / "ws"), "--quiet"])  # fmt: skip
    assert rc == 2
    assert capsys.readouterr().err == (
        f"error: {mine}: holds 'thesis.tex', not only cross-validation results; refusing to "
        "replace it (name a new or empty folder)\n")


def test_a_warning_repeated_by_every_run_prints_once(tmp_path: Path) -> None:
    """The demo's 39 ms windows are shorter than the band's lowest wavelet: every run's feature
    extraction warns the same. It printed once per run (the 'once' filter forgets whenever a
    library touches the filters); one line per distinct warning now."""
    env = {**os.environ, "RUL_WORKSPACE": str(tmp_path / "ws")}
    proc = subprocess.run(
        [sys.executable, "-m", "rul_core", "evaluate", "--model", str(DEMO / "model"), "--data",
         str(DEMO / "data"), "--quiet"], capture_output=True, text=True, timeout=300,
        check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: ")]
    assert any("cone of influence" in ln for ln in lines)
    assert len(lines) == len(set(lines))


def test_listing_models_creates_no_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    """`models --workspace DIR` on an empty DIR wrote DIR/catalog.sqlite just by listing."""
    assert main(["models", "--workspace", str(tmp_path / "ws")]) == 0
    assert not (tmp_path / "ws").exists()
    assert capsys.readouterr().out.strip() == (
        f"no model bundles: no workspace catalog at {tmp_path / 'ws' / 'catalog.sqlite'} yet")


def test_models_lists_past_a_damaged_catalog_row(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """One catalog row with damaged JSON made `models` end in an error, listing nothing: the
    rows are listed, and a warning names the damaged row and column."""
    import sqlite3

    ws = Workspace(tmp_path / "ws")
    bid = ws.add_bundle(tmp_path / "a", "carle", metrics={"val_rmse": 0.5})
    ws.add_bundle(tmp_path / "b", "carle", metrics={"val_rmse": 0.25})
    with sqlite3.connect(ws.db_path) as con:
        con.execute("UPDATE bundles SET metrics_json='{' WHERE id=?", (bid,))
    assert main(["models", "--workspace", str(tmp_path / "ws")]) == 0
    captured = capsys.readouterr()
    assert f"{tmp_path / 'a'} (missing)" in captured.out
    assert any("0.25" in line.split() for line in captured.out.splitlines())
    assert f"{tmp_path / 'b'} (missing)" in captured.out
    assert captured.err.startswith(f"warning: {ws.db_path}: bundles row id {bid} "
                                   f"({tmp_path / 'a'}): column metrics_json: expected JSON")


def test_models_columns_line_up_and_tsv_is_for_scripts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The listing was tab-separated: with names of different lengths its columns did not
    line up. Aligned now (numbers right-aligned); --tsv keeps the tab-separated form."""
    ws = Workspace(tmp_path / "ws")
    ws.add_bundle(tmp_path / "a", "rc_lstm", ablation="full", preset="quick",
                  metrics={"val_rmse": 0.25})
    ws.add_bundle(tmp_path / "bb", "carle", ablation="carl", preset="paper",
                  metrics={"val_rmse": 0.125})
    assert main(["models", "--workspace", str(tmp_path / "ws")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "model", "ablation", "preset", "dataset", "val_rmse",
                                "created", "path"]
    assert "\t" not in "".join(lines)
    rows = lines[2:4]
    assert len({line.index(str(tmp_path)) for line in rows}) == 1  # paths start together
    assert len({line.index("0.25") + 4 for line in rows if "0.25" in line}
               | {line.index("0.125") + 5 for line in rows if "0.125" in line}) == 1
    assert main(["models", "--workspace", str(tmp_path / "ws"), "--tsv"]) == 0
    tsv = capsys.readouterr().out.splitlines()
    assert tsv[0] == "id\tmodel\tablation\tpreset\tdataset\tval_rmse\tcreated\tpath"
    assert tsv[1].split("\t")[1:6] == ["rc_lstm", "full", "quick", "", "0.25"]


def test_models_rescan_catalogs_uncatalogued_bundles(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle saved by a process killed before cataloguing it was in no listing, and
    nothing put it back: `models` points at it, `models --rescan` checks and adds it (a
    damaged one is skipped, with why), also where no catalog existed yet."""
    import shutil

    ws_dir = tmp_path / "ws"
    shutil.copytree(DEMO / "model", ws_dir / "bundles" / "lost")
    shutil.copytree(DEMO / "model", ws_dir / "bundles" / "broken")
    (ws_dir / "bundles" / "broken" / "model.keras").write_bytes(b"not a model")
    assert main(["models", "--workspace", str(ws_dir), "--rescan"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        f"added {ws_dir / 'bundles' / 'lost'}",
        f"skipped {ws_dir / 'bundles' / 'broken'}: damaged: model.keras: SHA-256 differs from "
        "the card (file modified or card tampered with)",
        f"1 bundle(s) added to the catalog, 1 skipped, of those under {ws_dir / 'bundles'} it "
        "did not list"]
    assert any(line.split()[:4] == ["1", "carle", "carl", "quick"] and
               line.endswith(str(ws_dir / "bundles" / "lost")) for line in out)
    assert main(["models", "--workspace", str(ws_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.err == (f"note: 1 bundle folder(s) under {ws_dir / 'bundles'} are not in "
                            "the catalog (e.g. a save interrupted before cataloguing it); "
                            "'models --rescan' checks and adds them\n")
    elsewhere = tmp_path / "saved" / "other"
    shutil.copytree(DEMO / "model", elsewhere)
    assert main(["models", "--workspace", str(ws_dir), "--rescan", str(tmp_path / "saved")]) == 0
    assert capsys.readouterr().out.startswith(f"added {elsewhere}\n")


def test_ctrl_c_after_training_keeps_the_bundle_whole(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C once the training has finished, while the bundle is being catalogued: the
    command used to say "cancelled" and leave a bundle on disk that the catalog did not list;
    now the bundle is written and catalogued whole and the command says the cancel came too
    late. (The Ctrl-C is played by calling the process's SIGINT handler there, which is what
    the signal does, without sending one to the test process.) The bars show the training's
    own ETA, "estimating…" until it has one."""
    import re
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed by the main thread only")
    original = Workspace.add_dataset

    def add_dataset_interrupted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # Ctrl-C, right here
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "add_dataset", add_dataset_interrupted)
    data = write_dataset(tmp_path / "femto", layout="femto", n_bearings=2, n_snapshots=6)
    ws_dir, bundle = tmp_path / "ws", tmp_path / "bundles" / "carle"
    rc = main(["train", "--model", "carle", "--preset", "quick", "--data", str(data),
               "--epochs", "3", "--batch-size", "8", "--out", str(bundle), *TINY,
               "--workspace", str(ws_dir)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0
    assert f"train: finished before the cancel arrived — the bundle is kept ({bundle.resolve()}, " \
           "catalogued)" in captured.err
    assert (bundle / "card.json").is_file()
    assert [r["path"] for r in Workspace(ws_dir).list_bundles()] == [str(bundle.resolve())]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    job_bar = [p for p in captured.err.split("\r")
               if re.match(r"(prepare|build|compile|train|forest|validate|save): ", p)]
    train_bar = [p for p in job_bar if p.startswith("train")]
    assert "loss" in train_bar[0] and "· ETA estimating…]" in train_bar[0]  # the first batch
    # the last epoch: the whole training's ETA (patience 10: at most), the forest head and
    # the validation metrics still in it, not 0 s
    assert re.search(r"epoch 3/3 done · ETA (≤ [1-9]\d* s|< 1 s)\]", train_bar[-1])
    assert not any(re.search(r"\d\d:\d\d<", p) for p in job_bar)  # not tqdm's own guess
    # one bar for the whole training: it names the stage and only moves forward, to 100 %
    # once the bundle is written and catalogued
    percent = [int(re.search(r"(\d+)%\|", p).group(1)) for p in job_bar]
    assert percent == sorted(percent) and percent[-1] == 100
    assert [p.split(":")[0] for p in job_bar][-1] == "save"
    assert "bundle written and catalogued]" in job_bar[-1]


def test_ctrl_c_during_training_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import rul_core.training

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(rul_core.training, "train", interrupted)
    data = write_dataset(tmp_path / "femto", layout="femto", n_bearings=2, n_snapshots=6)
    bundle = tmp_path / "bundles" / "carle"
    rc = main(["train", "--model", "carle", "--data", str(data), "--out", str(bundle),
               "--workspace", str(tmp_path / "ws"), "--quiet"])
    assert rc == 130
    assert capsys.readouterr().err.endswith(
        f"train: cancelled before the training finished; no bundle written to {bundle}, nothing "
        "catalogued\n")
    assert not bundle.exists() and not Workspace(tmp_path / "ws").list_bundles()


def test_train_bar_ends_once_the_bundle_is_written_and_catalogued(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The training's bar covers saving the bundle and cataloguing it (the plan's ``save``
    stage): it reaches 100 % only once both are done, and until then its ETA counts them."""
    from rul_core.cli import model_cmds

    data = write_dataset(tmp_path / "femto", layout="femto", n_bearings=2, n_snapshots=6)
    ws_dir, bundle = tmp_path / "ws", tmp_path / "bundles" / "carle"
    seen: list[tuple[str, float, float | None, bool, bool]] = []

    class Recorder:
        def __call__(self, event):  # type: ignore[no-untyped-def]
            if "overall" in event.extra:
                written = (bundle / "card.json").is_file()
                listed = written and bool(Workspace(ws_dir).list_bundles())
                seen.append((event.stage, event.extra["overall"], event.extra.get("eta_s"),
                             written, listed))

        def close(self) -> None:
            pass

    monkeypatch.setattr(model_cmds, "_progress", lambda args: Recorder())
    rc = main(["train", "--model", "carle", "--preset", "quick", "--data", str(data),
               "--epochs", "1", "--out", str(bundle), *TINY, "--workspace", str(ws_dir)])
    assert rc == 0
    overall = [s[1] for s in seen]
    assert overall == sorted(overall) and overall[-1] == 1.0
    full = [s for s in seen if s[1] >= 1.0]
    assert full and all(s[0] == "save" and s[3] and s[4] for s in full)  # written, catalogued
    assert [s[0] for s in seen if not s[3]][-1] == "save"  # the bar was short of it before
    from rul_core.job_progress import FOREST_IMPORT_S, SAVE_S

    trained = [s for s in seen if s[0] == "validate"][-1]  # the saving still to come (a forest)
    assert trained[1] < 1.0 and trained[2] == pytest.approx(SAVE_S + FOREST_IMPORT_S)
