"""Model bundles: round trip for every model, tamper/pickle/Lambda refusal, atomic replace."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import keras
import pandas as pd
import pytest
from tiny_models import TINY_CARLE

from rul_core import bundle as bd
from rul_core.data.synthetic import synth_run
from rul_core.errors import BundleError
from rul_core.models import ModelConfig, build_model
from rul_core.training import TrainedModel, predict_run, train

TINY = {
    "carle": TINY_CARLE,
    "multimodal": {
        "image_shape": [64, 50],
        "image_filters": [4, 4, 4, 4],
        "tf_filters": [4, 4, 4, 4],
        "lstm_units": [4, 4, 4],
        "attention_heads": 1,
        "attention_key_dim": 4,
        "dense_units": [4, 4],
    },
    "rc_lstm": {
        "pool": 20,
        "timesteps": 3,
        "res_units": 1,
        "res_filters": 2,
        "convlstm_filters": 2,
        "tower_units": 4,
    },
}


@pytest.fixture(scope="module")
def runs() -> list:
    return [synth_run(f"Bearing1_{i}", n_snapshots=6, seed=i) for i in (1, 2)]


def _train(name: str, runs: list, **kw: object) -> TrainedModel:
    keras.utils.set_random_seed(0)
    cfg = ModelConfig(name, hparams=dict(TINY[name]), mc_samples=3, **kw)  # type: ignore[arg-type]
    return train(cfg, runs[:1], val_runs=runs[1:], epochs=1, batch_size=32)


@pytest.fixture(scope="module")
def carle_bundle(runs: list, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainedModel]:
    tm = _train("carle", runs)
    path = bd.save_bundle(tm, tmp_path_factory.mktemp("b") / "carle")
    return path, tm


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst


def _edit_card(path: Path, **changes: object) -> None:
    card = json.loads((path / "card.json").read_text())
    card.update(changes)
    (path / "card.json").write_text(json.dumps(card))


# --- round trips -------------------------------------------------------------------------
def test_carle_round_trip_predicts_the_same(
    carle_bundle: tuple[Path, TrainedModel], runs: list
) -> None:
    path, tm = carle_bundle
    assert sorted(p.name for p in path.iterdir()) == [
        "card.json",
        "card.md",
        "forest.skops",
        "model.keras",
    ]
    card = json.loads((path / "card.json").read_text())
    assert card["model"] == "carle" and card["preset"] == "quick"
    assert card["hyperparameters"]["cnn_filters"] == [4, 4, 4, 4]
    assert card["train_runs"][0]["content_hash"] == runs[0].content_hash()
    assert card["input_shapes"] == [[14, 1]]
    assert set(card["versions"]) >= {"rul_core", "keras", "tensorflow", "numpy", "sklearn"}
    # where it trained: the pinned tensorflow-cpu build has no GPU device
    assert card["versions"]["keras_backend"] == "tensorflow" and card["device"] == "tensorflow, CPU"
    assert "on tensorflow, CPU" in (path / "card.md").read_text()
    assert card["normaliser"]["minimum"] == list(tm.normaliser.minimum)
    assert card["label_scheme"] == "piecewise"
    assert len(card["interval_calibration"]) == 101  # conformal factors from the val run
    assert card["snapshot_every"] == 1 and "Sampling" not in (path / "card.md").read_text()
    assert "90 % band conformally calibrated on Bearing1_2" in (path / "card.md").read_text()
    loaded = bd.load_bundle(path)
    assert loaded.forest is not None and loaded.forest.n_trees == 5
    assert loaded.interval_calibration == tm.interval_calibration
    pd.testing.assert_frame_equal(predict_run(tm, runs[1]), predict_run(loaded, runs[1]))


def test_quantile_columns_are_the_band_bounds_of_one_feature_pass(
    carle_bundle: tuple[Path, TrainedModel], runs: list
) -> None:
    """predict_windows(quantiles=...) adds q<q> = the bound of the band at level |1 - 2q|,
    and aggregate_snapshots averages them per snapshot like the other columns."""
    import numpy as np

    from rul_core.training import aggregate_snapshots, predict_windows

    _, tm = carle_bundle
    w = predict_windows(tm, runs[1], quantiles=(0.2, 0.5, 0.9))
    np.testing.assert_allclose(w["q0.2"], predict_windows(tm, runs[1], level=0.6)["lower"])
    np.testing.assert_allclose(w["q0.9"], predict_windows(tm, runs[1], level=0.8)["upper"])
    np.testing.assert_array_equal(w["q0.5"], w["rul"])
    assert (w["q0.2"] <= w["rul"]).all() and (w["q0.2"] < w["rul"]).any()
    snaps = aggregate_snapshots(w, runs[1])
    np.testing.assert_allclose(snaps["q0.2"], w.groupby("snapshot")["q0.2"].mean().to_numpy())


@pytest.mark.parametrize("name", ["multimodal", "rc_lstm"])
def test_network_round_trip_predicts_the_same(name: str, runs: list, tmp_path: Path) -> None:
    tm = _train(name, runs)
    path = bd.save_bundle(tm, tmp_path / name)
    loaded = bd.load_bundle(path)
    a, b = predict_run(tm, runs[1]), predict_run(loaded, runs[1])
    pd.testing.assert_frame_equal(a, b, atol=1e-6, rtol=1e-5)
    assert loaded.config.to_dict() == tm.config.to_dict()
    # loading gives the dilated convolutions oneDNN's kernel (Multimodal-RUL has them)
    from rul_core.models.fastconv import fast_conv_available, fast_conv_layers

    fast = fast_conv_layers(loaded.models[0])
    assert fast_conv_layers(tm.models[0]) == []
    assert bool(fast) == (name == "multimodal" and fast_conv_available())


def test_ensemble_round_trip(
    carle_bundle: tuple[Path, TrainedModel], runs: list, tmp_path: Path
) -> None:
    """Two seeded members (built, not trained: the training loop is tested elsewhere)."""
    _, base = carle_bundle
    cfg = ModelConfig(
        "carle", ablation="carl", interval="ensemble", n_members=2, hparams=dict(TINY["carle"])
    )
    tm = dataclasses.replace(
        base, config=cfg, models=[build_model(cfg.member(i)) for i in range(2)], forest=None
    )
    path = bd.save_bundle(tm, tmp_path / "ens")
    assert {p.name for p in path.iterdir()} == {
        "card.json",
        "card.md",
        "member_0.keras",
        "member_1.keras",
    }
    loaded = bd.load_bundle(path)
    assert len(loaded.models) == 2
    a, b = predict_run(tm, runs[1], upto=3), predict_run(loaded, runs[1], upto=3)
    pd.testing.assert_frame_equal(a, b)
    assert (a["std"] > 0).all()


def test_rc_lstm_deep_ensemble_trains_saves_and_mixes_its_members(
    runs: list, tmp_path: Path
) -> None:
    """interval='ensemble' on RC-LSTM trains seeded members whose Gaussian heads are mixed:
    mean of the means, variance mean(sigma^2 + mu^2) - mean^2 (before calibration)."""
    import numpy as np

    from rul_core.training import model_x, prepare_run

    tm = _train("rc_lstm", runs, interval="ensemble", n_members=2)
    assert tm.config.interval == "ensemble" and len(tm.models) == 2
    w0, w1 = (m.get_weights() for m in tm.models)
    assert not all(np.allclose(a, b) for a, b in zip(w0, w1, strict=True))  # seeds differ
    path = bd.save_bundle(tm, tmp_path / "rc_ens")
    assert {"member_0.keras", "member_1.keras"} <= {p.name for p in path.iterdir()}
    loaded = bd.load_bundle(path)
    pd.testing.assert_frame_equal(predict_run(tm, runs[1]), predict_run(loaded, runs[1]),
                                  atol=1e-6, rtol=1e-5)
    prep = prepare_run(tm.config, runs[1], tm.normaliser, tm.pipeline_config)
    mu_sigma = np.stack([m.predict(model_x(prep.inputs), verbose=0) for m in loaded.models])
    mu, sigma = mu_sigma[..., 0].astype(np.float64), mu_sigma[..., 1].astype(np.float64)
    got = dataclasses.replace(loaded, interval_calibration=None)
    from rul_core.training import predict_inputs

    out = predict_inputs(got, prep.inputs)
    mean = mu.mean(axis=0)
    np.testing.assert_allclose(out["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(
        out["std"], np.sqrt((sigma**2 + mu**2).mean(axis=0) - mean**2), rtol=1e-5, atol=1e-9
    )


# --- refusals ----------------------------------------------------------------------------
def test_tampered_card_is_refused(carle_bundle: tuple[Path, TrainedModel], tmp_path: Path) -> None:
    src, _ = carle_bundle
    p = _copy(src, tmp_path)
    _edit_card(p, input_shapes=[[28, 1]])
    with pytest.raises(BundleError, match="input_shapes"):
        bd.load_bundle(p)

    p2 = tmp_path / "c2"
    shutil.copytree(src, p2)
    card = json.loads((p2 / "card.json").read_text())
    card["config"]["name"] = "nonsense"
    (p2 / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="invalid card content"):
        bd.load_bundle(p2)

    p4 = tmp_path / "c4"
    shutil.copytree(src, p4)
    _edit_card(p4, interval_calibration=[1.0, -2.0])
    with pytest.raises(BundleError, match=r"interval_calibration.*101 non-negative"):
        bd.load_bundle(p4)

    p5 = tmp_path / "c5"
    shutil.copytree(src, p5)
    _edit_card(p5, snapshot_every=0)
    with pytest.raises(BundleError, match=r"snapshot_every.*whole number >= 1, found 0"):
        bd.load_bundle(p5)
    card = json.loads((p5 / "card.json").read_text())
    del card["snapshot_every"]  # a bundle written before the field existed
    (p5 / "card.json").write_text(json.dumps(card))
    assert bd.load_bundle(p5).snapshot_every == 1

    p3 = tmp_path / "c3"
    shutil.copytree(src, p3)
    (p3 / "card.json").write_text("{not json")
    with pytest.raises(BundleError, match="expected JSON"):
        bd.load_bundle(p3)


@pytest.mark.parametrize(
    ("changes", "match"),
    [({"versions": "3.15.1"}, r"field 'versions': expected an object, found \"3\.15\.1\""),
     ({"model_files": 3}, "field 'model_files': expected a list, found 3"),
     ({"model_files": []}, "field 'model_files': expected a non-empty list"),
     ({"seed": "abc"}, "field 'seed': expected an integer"),
     ({"seed": True}, "field 'seed': expected an integer, found true"),
     ({"level": "high"}, "field 'level': expected an integer or a number"),
     ({"level": 1.5}, r"field 'level': expected a coverage in \(0, 1\), found 1\.5"),
     ({"history": 5}, "field 'history': expected a list"),
     ({"label_params": 5}, "field 'label_params': expected an object"),
     ({"files": {"../../../etc/hostname": "0" * 64}},
      r"field 'files' names an unexpected file '\.\./\.\./\.\./etc/hostname'"),
     # a file outside the bundle: the field is named, with what was expected
     ({"model_files": ["../good/model.keras"]},
      r"field 'model_files': expected model\.keras or member_<n>\.keras inside the bundle, "
      r"found '\.\./good/model\.keras'"),
     ({"model_files": ["card.json"]},
      r"field 'model_files': expected model\.keras or member_<n>\.keras inside the bundle, "
      r"found 'card\.json'"),
     ({"forest_file": "/etc/passwd"},
      r"field 'forest_file': expected 'forest\.skops' inside the bundle or null, "
      r"found '/etc/passwd'")],
)
def test_malformed_card_fields_are_named(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path, changes: dict, match: str
) -> None:
    p = _copy(carle_bundle[0], tmp_path)
    _edit_card(p, **changes)
    with pytest.raises(BundleError, match=match) as e:
        bd.load_bundle(p)
    assert str(e.value).startswith(f"{p / 'card.json'}: ")


def test_an_inflated_keras_config_is_refused_unread(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    p = _copy(carle_bundle[0], tmp_path)
    monkeypatch.setattr(bd, "MAX_KERAS_CONFIG_BYTES", 1000)
    with zipfile.ZipFile(p / "model.keras") as zf:
        size = zf.getinfo("config.json").file_size
    refused = f"config.json: expected at most 1000 bytes, found {size}"
    with pytest.raises(BundleError, match=refused):
        bd.load_bundle(p)


def test_a_bundle_uploaded_as_loose_files_loads(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path
) -> None:
    from rul_core import ui_state

    src, tm = carle_bundle
    files = [(f.name, f.read_bytes()) for f in sorted(src.iterdir())]
    folder = ui_state.bundle_from_upload(files, root=tmp_path)
    assert (folder / bd.UPLOAD_RECORD).is_file()  # the app's record sits beside the card
    loaded = bd.load_bundle(folder)
    assert loaded.config.to_dict() == tm.config.to_dict()


def test_modified_model_file_is_refused(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path
) -> None:
    p = _copy(carle_bundle[0], tmp_path)
    with open(p / "forest.skops", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"forest\.skops: SHA-256 differs"):
        bd.load_bundle(p)


@pytest.mark.parametrize("name", ["evil.pkl", "model.h5", "extra.json"])
def test_unexpected_files_are_refused(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path, name: str
) -> None:
    p = _copy(carle_bundle[0], tmp_path)
    (p / name).write_bytes(b"\x80\x04K\x01.")  # a tiny pickle stream
    with pytest.raises(BundleError, match=name.replace(".", r"\.")):
        bd.load_bundle(p)


def test_version_checks(carle_bundle: tuple[Path, TrainedModel], tmp_path: Path) -> None:
    src, _ = carle_bundle
    p = _copy(src, tmp_path)
    card = json.loads((p / "card.json").read_text())
    major, minor = (int(v) for v in keras.__version__.split(".")[:2])
    card["versions"]["keras"] = f"{major}.{minor + 1}.0"
    (p / "card.json").write_text(json.dumps(card))
    with pytest.warns(UserWarning, match="minor version differs"):
        bd.load_bundle(p)
    card["versions"]["keras"] = f"{major - 1}.15.0"
    (p / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="major version"):
        bd.load_bundle(p)


def test_lambda_layer_is_refused(carle_bundle: tuple[Path, TrainedModel], tmp_path: Path) -> None:
    p = _copy(carle_bundle[0], tmp_path)
    inp = keras.Input((14, 1))
    out = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    out = keras.layers.Dense(1)(keras.layers.Flatten()(out))
    keras.Model(inp, out).save(p / "model.keras")
    card = json.loads((p / "card.json").read_text())
    card["files"]["model.keras"] = bd._sha256(p / "model.keras")  # a consistent forgery
    (p / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match="Lambda"):
        bd.load_bundle(p)


# --- atomic writes -----------------------------------------------------------------------
def test_failed_save_leaves_the_old_bundle(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, tm = carle_bundle
    target = _copy(src, tmp_path)
    before = {f.name: f.read_bytes() for f in target.iterdir()}
    real = bd._write_contents

    def half_then_fail(trained: TrainedModel, tmp: Path) -> None:
        trained.models[0].save(tmp / "model.keras")
        raise OSError("disk full")

    monkeypatch.setattr(bd, "_write_contents", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        bd.save_bundle(tm, target)
    assert {f.name: f.read_bytes() for f in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]  # no temp dirs left

    monkeypatch.setattr(bd, "_write_contents", real)
    tm.metrics["note"] = 1.0
    bd.save_bundle(tm, target)  # a successful save replaces it
    assert json.loads((target / "card.json").read_text())["metrics"]["note"] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]
    del tm.metrics["note"]


def test_never_replaces_a_folder_that_is_not_a_bundle(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path
) -> None:
    folder = tmp_path / "mydata"
    folder.mkdir()
    (folder / "precious.csv").write_text("1,2\n")
    with pytest.raises(BundleError, match="not a model bundle"):
        bd.save_bundle(carle_bundle[1], folder)
    assert (folder / "precious.csv").read_text() == "1,2\n"
    with pytest.raises(BundleError, match="missing"):
        bd.load_bundle(folder)


# --- catalogued bundles gone or damaged --------------------------------------------------
def test_catalog_listings_mark_missing_and_damaged_bundles(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`models` (CLI) and the app's Load choices mark a catalogued bundle that is gone or no
    longer loads (truncated card or model file) and keep listing it, next to a sound one."""
    import argparse

    from rul_core import ui_state
    from rul_core.cli.model_cmds import cmd_models
    from rul_core.workspace import Workspace

    src, _ = carle_bundle
    ws = Workspace(tmp_path / "ws")
    for name in ("good", "gone", "badcard", "badkeras"):
        shutil.copytree(src, tmp_path / name)
        ws.add_bundle(tmp_path / name, "carle")
    shutil.rmtree(tmp_path / "gone")
    card = (tmp_path / "badcard" / "card.json").read_bytes()
    (tmp_path / "badcard" / "card.json").write_bytes(card[:100])
    with open(tmp_path / "badkeras" / "model.keras", "r+b") as fh:
        fh.truncate(500)

    assert bd.bundle_status(tmp_path / "good") == ""
    assert bd.bundle_status(tmp_path / "gone") == "missing"
    assert bd.bundle_status(tmp_path / "badcard").startswith("damaged: card.json: expected JSON")
    assert bd.bundle_status(tmp_path / "badkeras") == (
        "damaged: model.keras: SHA-256 differs from the card (file modified or card tampered "
        "with)")

    cmd_models(argparse.Namespace(workspace=str(tmp_path / "ws"), model_filter=None,
                                  rescan=None, tsv=True))
    lines = {line.rsplit("\t", 1)[-1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert f"{tmp_path / 'good'}" in lines
    assert f"{tmp_path / 'gone'} (missing)" in lines
    assert any(s.startswith(f"{tmp_path / 'badcard'} (damaged: card.json: expected JSON")
               for s in lines)
    assert f"{tmp_path / 'badkeras'} (damaged: model.keras: SHA-256 differs" in " ".join(lines)

    labels = [ui_state.bundle_choice_label(r) for r in ws.list_bundles()]
    assert labels[0] == f"carle/full  — {tmp_path / 'good'}"
    assert labels[1] == f"carle/full  — {tmp_path / 'gone'} (missing)"
    assert labels[2].startswith(f"carle/full  — {tmp_path / 'badcard'} (damaged: card.json")


def _forge_keras_config(path: Path, change: object) -> None:
    """Rewrite the first Dense layer of ``path/model.keras`` with ``change`` (a dict update)
    and make the card's checksum match (a consistent forgery)."""
    import zipfile

    keras_file = path / "model.keras"
    with zipfile.ZipFile(keras_file) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(members["config.json"])
    done = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Dense" and not done:
                node.update(change)  # type: ignore[call-overload]
                done.append(1)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    assert done
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(keras_file, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    _edit_card(path, files={**json.loads((path / "card.json").read_text())["files"],
                            "model.keras": bd._sha256(keras_file)})


@pytest.mark.parametrize(
    ("change", "named"),
    [({"class_name": "EvilDense", "module": None, "registered_name": "evil>EvilDense"},
      "'EvilDense' (registered as 'evil>EvilDense', module None)"),
     ({"class_name": "system", "module": "os", "registered_name": None},
      "'system' (registered as None, module 'os')"),
     ({"class_name": "MCDropout", "module": "rul_core.evil", "registered_name": "rul_core>Nope"},
      "'MCDropout' (registered as 'rul_core>Nope', module 'rul_core.evil')")],
)
def test_a_class_outside_keras_and_the_registry_is_refused_in_one_line(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path, change: dict, named: str
) -> None:
    p = _copy(carle_bundle[0], tmp_path)
    _forge_keras_config(p, change)
    with pytest.raises(BundleError) as e:
        bd.load_bundle(p)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{p / 'model.keras'}: member config.json: class {named}")
    assert "expected Keras built-in classes or rul_core's registered ones" in msg


def test_a_bundle_saved_meanwhile_under_the_same_name_is_not_replaced(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two app sessions save a model under one name at once, neither asking to replace: the
    name was free when each checked, so the one finishing second must fail, not swap the
    other's bundle out."""
    from rul_core import ui_state

    src, tm = carle_bundle
    target = ui_state.bundle_path("same", tmp_path)
    real = bd._write_contents

    def other_session_finishes_first(trained: TrainedModel, tmp: Path) -> None:
        shutil.copytree(src, target)  # the other session's bundle lands meanwhile
        _edit_card(target, metrics={"theirs": 1.0})
        real(trained, tmp)

    monkeypatch.setattr(bd, "_write_contents", other_session_finishes_first)
    with pytest.raises(BundleError, match=f"{target}: .*appeared while saving; not replaced"):
        ui_state.save_model(tm, "same", root=tmp_path)
    assert json.loads((target / "card.json").read_text())["metrics"] == {"theirs": 1.0}
    assert sorted(p.name for p in target.parent.iterdir()) == ["same"]  # no temporaries


def test_a_long_bundle_name_is_saved(
    carle_bundle: tuple[Path, TrainedModel], tmp_path: Path
) -> None:
    """A long name typed on the Train page is saved (cut to a folder name the file system
    accepts), not refused with 'File name too long' about a hidden temporary folder."""
    from rul_core import ui_state

    path = ui_state.save_model(carle_bundle[1], "é" * 200, root=tmp_path)
    assert path.name == "é" * (ui_state.MAX_BUNDLE_NAME_BYTES // 2)
    assert bd.bundle_status(path) == ""
