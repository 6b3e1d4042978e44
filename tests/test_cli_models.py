"""CLI: train -> catalog -> models -> predict (partial run) -> evaluate, and --help."""

from __future__ import annotations

import io
import json
from pathlib import Path

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


@pytest.mark.parametrize("cmd", ["train", "evaluate", "predict", "models"])
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
    assert "carle\tfull\tquick" in listing and str(bundle.resolve()) in listing

    run_dir = data / "Learning_set" / "Bearing1_3"
    assert main(["predict", "--model", str(bundle), "--run", str(run_dir), "--upto", "3",
                 *common]) == 0  # fmt: skip
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(df.columns) == ["snapshot", "time_s", "rul", "lower", "upper", "std"]
    assert list(df["snapshot"]) == [0, 1, 2]
    assert list(df["time_s"]) == [0.0, 10.0, 20.0]

    csv = tmp_path / "eval.csv"
    assert main(["evaluate", "--model", str(bundle), "--data", str(data), "--runs",
                 "Bearing1_3", "--out", str(csv), *common]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "seen vs unseen" in printed
    table = pd.read_csv(csv)
    assert list(table["run"]) == ["Bearing1_3", "all runs", "all"]
    assert len(ws.list_evaluations(bundle)) == 2


def test_user_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = ["--workspace", str(tmp_path / "ws"), "--quiet"]
    rc = main(["train", "--model", "carle", "--data", str(tmp_path / "nope"), "--out",
               str(tmp_path / "b"), *ws])  # fmt: skip
    assert rc == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["predict", "--model", str(tmp_path / "nobundle"), "--run", str(tmp_path),
                 *ws]) == 2  # fmt: skip
    assert "bundle" in capsys.readouterr().err
    assert main(["models", *ws]) == 0
    assert "no model bundles" in capsys.readouterr().out
