"""Background jobs, upload storage and summary statistics used by the app."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rul_core import ui_state
from rul_core.errors import DataFormatError, RulError
from rul_core.progress import check, emit


def test_job_reports_progress_and_result():
    def target(progress, cancel):
        for i in range(3):
            emit(progress, "train", i + 1, 3, "", epoch_end=True, loss=1.0 / (i + 1), member=0)
        return 42

    job = ui_state.start_job("t", target)
    job.join(5)
    assert (job.status, job.result) == ("done", 42)
    assert job.last.fraction == 1.0
    assert job.epoch_history() == {"loss": [1.0, 0.5, 1.0 / 3.0]}


def test_epoch_history_keeps_folds_and_members_apart():
    def target(progress, cancel):
        for fold, member, loss in ((1, 0, 3.0), (1, 1, 2.0), (2, 0, 1.0), (2, 0, 0.5)):
            emit(progress, "train", 1, 1, "", epoch_end=True, loss=loss, member=member,
                 fold=fold)

    job = ui_state.start_job("cv", target)
    job.join(5)
    assert job.epoch_history() == {"loss (fold 1)": [3.0], "loss (fold 1, member 2)": [2.0],
                                   "loss (fold 2)": [1.0, 0.5]}


def test_job_cancel_and_failure_are_readable():
    def slow(progress, cancel):
        for _ in range(500):
            check(cancel)
            time.sleep(0.01)

    job = ui_state.start_job("c", slow)
    job.cancel()
    job.join(5)
    assert job.status == "cancelled" and "cancelled" in job.error

    def bad(progress, cancel):
        raise DataFormatError("x.csv", "6 columns", "5", line=3)

    job = ui_state.start_job("b", bad)
    job.join(5)
    assert (job.status, job.error) == ("failed", "x.csv, line 3: expected 6 columns, found 5")

    def crash(progress, cancel):
        raise ZeroDivisionError("division by zero")

    job = ui_state.start_job("z", crash)
    job.join(5)
    assert job.error == "ZeroDivisionError: division by zero" and "Traceback" in job.detail


def test_save_uploads_is_content_addressed_and_safe(tmp_path):
    files = [("Bearing1_1/acc_00001.csv", b"1,2"), ("../../etc/evil.csv", b"3")]
    p1 = ui_state.save_uploads(files, tmp_path)
    p2 = ui_state.save_uploads(list(reversed(files)), tmp_path)
    assert p1 == p2 and p1.parent == tmp_path / "uploads"
    assert (p1 / "Bearing1_1" / "acc_00001.csv").read_bytes() == b"1,2"
    assert (p1 / "etc" / "evil.csv").is_file()  # '..' parts dropped, stays inside
    assert not (tmp_path / "etc").exists()
    arch = ui_state.save_uploads([("data.zip", b"PK")], tmp_path)
    assert arch.name == "data.zip" and arch.is_file()
    with pytest.raises(RulError, match="no files"):
        ui_state.save_uploads([], tmp_path)
    # two files that would land on one name: refused, nothing stored, instead of one lost
    before = sorted((tmp_path / "uploads").iterdir())
    with pytest.raises(RulError, match=r"distinct names, found \['acc_00001.csv'\]"):
        ui_state.save_uploads([("acc_00001.csv", b"1"), ("./acc_00001.csv", b"2")], tmp_path)
    assert sorted((tmp_path / "uploads").iterdir()) == before


def test_snapshot_stats_known_answers():
    t = np.arange(2560) / 25600.0
    sine = np.sin(2 * np.pi * 100 * t) * 2.0  # 10 whole periods
    flat = np.full_like(t, 3.0)
    stats = ui_state.snapshot_stats(np.stack([np.stack([sine, flat], axis=1)]))
    np.testing.assert_allclose(stats["rms"][0], [2.0 / np.sqrt(2.0), 3.0], rtol=1e-9)
    np.testing.assert_allclose(stats["kurtosis"][0], [1.5, 0.0], atol=1e-9)  # sine: 3/2
    np.testing.assert_allclose(stats["peak"][0], [2.0, 3.0], atol=1e-3)


def test_friendly_error_has_no_traceback():
    assert ui_state.friendly_error(FileNotFoundError(2, "x", "/a/b")) == (
        "file or folder not found: /a/b")
    assert ui_state.friendly_error(ValueError("bad\nsecond line")) == "ValueError: bad"


def test_demo_dataset_is_deterministic_and_listed(tmp_path):
    from rul_core.cli.demo_cmd import DEMO_BEARINGS, build_demo
    from rul_core.data import load_dataset

    a = build_demo(tmp_path / "a", n_snapshots=3, models=())
    b = build_demo(tmp_path / "b", n_snapshots=3, models=())
    assert a["files"] == b["files"] and len(a["files"]) == 3 * sum(DEMO_BEARINGS.values())
    for f in a["files"]:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    ds = load_dataset(tmp_path / "a" / a["dataset"])
    assert ds.layout == "femto" and ds.run_names == ["Bearing1_1", "Bearing1_2", "Bearing1_3",
                                                     "Bearing2_1"]
    assert ui_state.demo_manifest(tmp_path / "a")["total_bytes"] == a["total_bytes"]
    assert ui_state.demo_models(a, tmp_path / "a") == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temp folders left


def test_train_config_reads_overrides_like_the_cli_and_names_bad_lines():
    from rul_core.errors import RulError
    from rul_core.ui_state import overrides_text, train_config

    text = "timesteps=14\n\n pool_stat=mean_std \nres_filters=[4, 8]"
    cfg = train_config("rc_lstm", "full", "quick", "femto", 3, "ensemble", 2, text)
    assert cfg.hparams == {"timesteps": 14, "pool_stat": "mean_std", "res_filters": [4, 8]}
    assert (cfg.seed, cfg.interval, cfg.n_members) == (3, "ensemble", 2)
    assert cfg.resolved()["timesteps"] == 14
    assert train_config("rc_lstm", "full", "quick", "femto", 0, "gaussian", 1,
                        overrides_text(cfg.hparams)).hparams == cfg.hparams  # round trip
    with pytest.raises(RulError, match=r"Hyperparameter overrides: expected KEY=VALUE, got "
                                       r"'timesteps 14'"):
        train_config("rc_lstm", "full", "quick", "femto", 0, "gaussian", 1, "timesteps 14")
    with pytest.raises(RulError, match=r"unknown hparams \['timestep'\]"):
        train_config("rc_lstm", "full", "quick", "femto", 0, "gaussian", 1, "timestep=14")


def test_train_augmentation_offers_every_noise_kind_and_names_bad_values():
    from rul_core.signal.noise import NoiseAugmentation

    assert ui_state.AUGMENTATION_KINDS == ("none", "uniform", "gaussian", "salt_and_pepper")
    assert ui_state.train_augmentation(ui_state.NO_AUGMENTATION, 1.0, 1) is None
    assert ui_state.train_augmentation("salt_and_pepper", np.float64(0.5), np.int64(2)) == \
        NoiseAugmentation("salt_and_pepper", 0.5, 2)
    with pytest.raises(RulError, match="Noise augmentation: severity: expected a finite value"):
        ui_state.train_augmentation("gaussian", 0.0, 1)


def test_model_label_is_short_and_keeps_the_time_of_day():
    from types import SimpleNamespace

    from rul_core.models import ModelConfig

    trained = SimpleNamespace(config=ModelConfig("carle", preset="quick"),
                              created="2026-11-29T14:03:27+00:00")
    assert ui_state.model_label(trained) == "carle/full (quick) 14:03:27"
    trained.created = ""
    assert ui_state.model_label(trained) == "carle/full (quick)"


def test_app_keeps_the_wavelet_window_warning_out_of_the_server_log():
    """Each Streamlit rerun executes the page as a fresh module, so the warning was logged on
    every rerun (27 times in one session); the pages show the notice instead."""
    import warnings

    from rul_core.app_ui import quiet_repeated_warnings
    from rul_core.signal.cwt import WaveletLongerThanWindowWarning, warn_if_band_exceeds_window

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")  # Python's own default: once per module and line
        quiet_repeated_warnings()
        for rerun in range(3):  # three page runs, each its own module namespace
            page = "def view():\n    warn(123, 25600.0, 10.0)\nview()\n"  # stacklevel 3
            exec(compile(page, f"<page run {rerun}>", "exec"),
                 {"warn": warn_if_band_exceeds_window})
    hits = [w for w in seen if issubclass(w.category, WaveletLongerThanWindowWarning)]
    assert hits == []


def test_cancelled_message_counts_the_finished_epochs():
    def two_epochs_then_cancelled(progress, cancel):
        for i in range(2):
            emit(progress, "train", i + 1, 5, "", epoch_end=True, loss=1.0)
        emit(progress, "train", 3, 5, "batch 1")  # not an epoch's end
        cancel.cancel()
        check(cancel)

    job = ui_state.start_job("t", two_epochs_then_cancelled)
    job.join(5)
    assert job.status == "cancelled"
    msg = ui_state.cancelled_message(job)
    assert msg.startswith("Training cancelled after 2 epochs (") and msg.endswith(
        "; no model was kept.")
    job = ui_state.start_job("c", lambda progress, cancel: (cancel.cancel(), check(cancel)))
    job.join(5)
    assert ui_state.cancelled_message(job, "Cross-validation").startswith(
        "Cross-validation cancelled before its first epoch (")


def test_cancelled_message_says_of_how_many_epochs_and_where():
    def cancelled_in_the_forest(progress, cancel):
        for i in range(3):
            emit(progress, "train", 5 * (i + 1), 100, "", epoch_end=True, loss=1.0, epoch=i + 1,
                 epochs=20, n_members=1)
        emit(progress, "forest", 1, 2, "fitting 800 trees")
        cancel.cancel()
        check(cancel)

    job = ui_state.start_job("t", cancelled_in_the_forest)
    job.join(5)
    assert ui_state.cancelled_message(job).startswith(
        "Training cancelled after 3 of 20 epochs, while fitting the forest head (")
    assert ui_state.cancelled_message(job, "Cross-validation").startswith(
        "Cross-validation cancelled after 3 epochs, while fitting the forest head (")


def test_an_ensembles_cancel_names_the_member_and_the_stage():
    """A deep ensemble's cancel says which member and epoch it got to, not a count of every
    member's epochs, and names a member's build or first batch when it came then; a single
    model's start, build and first batch are named too."""

    def cancelled_while_compiling_member_3(progress, cancel):
        for member in (0, 1):
            for epoch in (1, 2):
                emit(progress, "train", 4 * member + 2 * epoch, 12, "", epoch_end=True,
                     loss=1.0, epoch=epoch, epochs=2, member=member, n_members=3)
        emit(progress, "build", 2, 3, "member 3/3: building the model", member=2, n_members=3)
        emit(progress, "compile", 8, 12, "member 3/3: compiling (first batch)", member=2,
             n_members=3)
        cancel.cancel()
        check(cancel)

    job = ui_state.start_job("t", cancelled_while_compiling_member_3)
    job.join(5)
    assert ui_state.cancelled_message(job).startswith(
        "Training cancelled after member 2/3, epoch 2/2, while compiling member 3/3's first "
        "batch (")
    assert ui_state.cancelled_message(job, "Cross-validation").startswith(
        "Cross-validation cancelled after 4 epochs, while compiling member 3/3's first batch (")

    def cancelled_while_starting(progress, cancel):
        emit(progress, "start", 1, 3, "starting the training process: importing TensorFlow")
        cancel.cancel()
        check(cancel)

    job = ui_state.start_job("t", cancelled_while_starting)
    job.join(5)
    assert ui_state.cancelled_message(job).startswith(
        "Training cancelled before its first epoch, while starting the training process (")


def test_a_job_that_finishes_before_the_cancel_keeps_its_result():
    """Cancel while the job is past its last cancel point (it ignores the token now), and
    cancel after it ended (a click that reached a finished job): both keep the result, and
    the job says the cancel came too late instead of passing for an ordinary finish."""
    import threading

    asked = threading.Event()

    def past_its_last_check(progress, cancel):
        emit(progress, "finish", 0, 2, "training finished; saving the model")
        asked.wait(5)
        return 42

    job = ui_state.start_job("t", past_its_last_check)
    deadline = time.monotonic() + 5
    while job.last is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ui_state.cancel_notice(job).startswith("Too late to cancel: the training has finished")
    job.cancel()
    asked.set()
    job.join(5)
    assert (job.status, job.result, job.late_cancel) == ("done", 42, True)
    msg = ui_state.late_cancel_message(job)
    assert msg.startswith("Training finished before the cancel arrived — the model is kept (the "
                          "cancel came ") and "s before the end, after its last cancel point" in msg

    job = ui_state.start_job("t", lambda progress, cancel: 7)
    job.join(5)
    assert not job.late_cancel
    assert ui_state.cancel_notice(job).startswith("Too late to cancel: it has already finished")
    job.cancel()
    assert job.late_cancel and ui_state.late_cancel_message(job, "Cross-validation") == (
        "Cross-validation finished before the cancel arrived — the result is kept (the cancel "
        "came after it had ended).")

    job = ui_state.start_job("c", lambda progress, cancel: (cancel.cancel(), check(cancel)))
    job.join(5)
    assert job.status == "cancelled" and not job.late_cancel


def test_cancel_notice_says_when_the_cancel_will_be_seen():
    from rul_core.progress import ProgressEvent

    job = ui_state.Job("t", target=lambda progress, cancel: None, status="running")
    assert ui_state.cancel_notice(job) == "Cancelling at the next check…"
    job.last = ProgressEvent("train", 1, 4, "epoch 1/2")
    assert ui_state.cancel_notice(job) == "Cancelling after the current batch…"
    job.last = ProgressEvent("forest", 1, 2, "fitting 800 trees")
    assert ui_state.cancel_notice(job) == "Cancelling once the forest's trees are fitted…"
    job.last = ProgressEvent("finish", 0, 2, "saving", {"fold": 1})  # other folds still train
    assert ui_state.cancel_notice(job) == "Cancelling at the next check…"
    job.last = ProgressEvent("start", 1, 3, "starting the training process")
    assert ui_state.cancel_notice(job) == "Cancelling once the training process has started…"
    job.last = ProgressEvent("compile", 0, 4, "compiling (first batch)")
    assert ui_state.cancel_notice(job) == (
        "Cancelling after the first batch (it is being compiled)…")


def test_progress_line_counts_the_eta_down_and_says_when_it_is_estimating():
    from rul_core.progress import ProgressEvent

    job = ui_state.Job("carle-full", target=lambda progress, cancel: None, status="running",
                       started=1000.0)
    assert ui_state.progress_line(job, now=1001.0) == "running · 1 s"
    job.last, job.last_time = ProgressEvent(
        "train", 3, 10, "member 1/1 epoch 1/2 loss 0.5", {"eta_s": None}), 1010.0
    assert ui_state.progress_line(job, now=1012.0) == (
        "running · 12 s · train: member 1/1 epoch 1/2 loss 0.5 · ETA estimating…")
    job.last = ProgressEvent("train", 5, 10, "member 1/1 epoch 2/2 loss 0.4",
                             {"eta_s": 30.0, "eta_upper_bound": True})
    assert ui_state.progress_line(job, now=1012.0).endswith("loss 0.4 · ETA ≤ 28 s")
    assert ui_state.progress_line(job, now=1100.0).endswith("loss 0.4 · ETA ≤ 0 s")
    assert ui_state.progress_line(job, now=1012.0, compact=True) == (
        "12 s · member 1/1 epoch 2/2 loss 0.4 · ETA ≤ 28 s")
    # a cross-validation: one line of the whole run, named so whichever fold reported, and
    # the whole run's ETA (not the fold's)
    job.last = ProgressEvent("train", 5, 10, "1/3 folds done · fold 2: epoch 1/2 · 1 waiting",
                             {"eta_s": 9.0, "fold": 2, "label": "cross-validation"})
    assert ui_state.progress_line(job, now=1010.0) == (
        "running · 10 s · cross-validation: 1/3 folds done · fold 2: epoch 1/2 · 1 waiting · "
        "ETA 9 s")
    job.last = ProgressEvent("forest", 1, 2, "fitting 5 trees")
    assert ui_state.progress_line(job, now=1010.0).endswith("· forest: fitting 5 trees")
    # every stage of a training shows the whole training's ETA, and what it leaves out
    job.last = ProgressEvent("prepare", 1, 3, "windows of Bearing1_1",
                             {"eta_s": 2.4, "eta_then": ["the fit", "the forest head"],
                              "eta_scope": "windows", "overall": 0.01})
    assert ui_state.progress_line(job, now=1010.0).endswith(
        "prepare: windows of Bearing1_1 · windows ETA 2 s, then the fit and the forest head")
    job.status = "cancelled"
    job.last = ProgressEvent("train", 5, 10, "epoch 2/2", {"eta_s": 9.0})
    assert "ETA" not in ui_state.progress_line(job, now=1010.0)


def _run(name: str, n: int, gap_s: float):
    from rul_core.data.run import Condition, Run

    return Run(name, np.zeros((n, 8, 1), dtype=np.float32), 25600.0, ["h"],
               Condition(1800, 4000), timestamps=np.arange(n) * gap_s)


def test_challenge_short_runs_notice_gives_the_numbers():
    demo = [_run("a", 12, 10.0), _run("b", 6, 10.0)]  # 110 s and 50 s
    msg = ui_state.challenge_short_runs_notice(demo, 50.0, 6)
    assert "on these 2 runs the longest run lasts 1.8 min, less than the 50-minute cap" in msg
    assert "every 6th snapshot leaves 1 to 2 snapshots per run (fewer than 30)" in msg
    # FEMTO-like: hours long, hundreds of snapshots 10 s apart
    femto = [_run("c", 2803, 10.0), _run("d", 871, 10.0)]
    assert ui_state.challenge_short_runs_notice(femto, 50.0, 6) is None
    # long enough, but thinned too far: every 30th of 871 leaves 30 (enough), every 31st 29
    assert ui_state.challenge_short_runs_notice(femto, 50.0, 30) is None
    assert ui_state.challenge_short_runs_notice(femto, 50.0, 31) == (
        "The PHM 2012 challenge settings were chosen for FEMTO runs of hours; on these 2 runs "
        "every 31st snapshot leaves 29 to 91 snapshots per run (fewer than 30). Lower the cap "
        "and 'Use every N-th snapshot' for this dataset.")
    assert ui_state.challenge_short_runs_notice([], 50.0, 6) is None


def test_persistent_keys_and_valid_selections():
    keys = ["train_epochs", "explain_rules_epsilon", "train_start", "train_job", 3,
            "selected_run"]
    assert ui_state.persistent_keys(keys) == ["train_epochs", "explain_rules_epsilon"]
    opts = ["B1", "B2"]
    assert ui_state.valid_selection(["B1", "B9"], opts, ["B2"]) == ["B1"]  # what is left
    assert ui_state.valid_selection(["B9"], opts, ["B2"]) == ["B2"]  # none left: the default
    assert ui_state.valid_selection([], opts, ["B2"]) == []  # emptied on purpose: kept
    assert ui_state.valid_selection("B2", opts) == "B2"
    assert ui_state.valid_selection("B9", opts) is None  # dropped
    assert ui_state.valid_selection("B9", opts, "B1") == "B1"


WIDGETS = {"selectbox", "select_slider", "multiselect", "radio", "slider", "number_input",
           "text_input", "text_area", "checkbox", "toggle", "button", "file_uploader",
           "download_button", "index_slider", "pick_window", "pick_run", "pick_model"}
NOT_SETTABLE = {"button", "file_uploader", "download_button"}
# keyed widgets left out of ui_state.PERSISTENT_KEYS on purpose (see its comment)
NOT_KEPT = {"data_run", "repr_run", "noise_run", "explain_run", "explain_model", "repr_window",
            "noise_window", "explain_window", "bundle_name", "bundle_replace", "report_items",
            "report_one", "session_drop", "session_drop_unsaved"}


def _widget_keys() -> list[tuple[str, str, str]]:
    """(file, widget, key) of every widget call with a literal or f-string key in the pages
    and app_ui."""
    import ast

    from app_support import APP_ROOT

    found = []
    files = [*sorted((APP_ROOT / "pages").glob("*.py")), APP_ROOT / "rul_core" / "app_ui.py"]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            for kw in node.keywords:
                if kw.arg == "key" and name in WIDGETS:
                    if isinstance(kw.value, ast.Constant):
                        found.append((path.name, name, kw.value.value))
                    elif isinstance(kw.value, ast.JoinedStr):  # f"explain_rules_{...}"
                        head = kw.value.values[0]
                        prefix = head.value if isinstance(head, ast.Constant) else ""
                        found.append((path.name, name, prefix + "*"))
    return found


def test_every_widget_key_is_kept_or_left_out_on_purpose():
    keys = _widget_keys()
    assert len(keys) > 60
    for file, widget, key in keys:
        if key.endswith("*"):  # keys built at run time
            if key != "*":
                assert ui_state.persistent_keys([key[:-1] + "x"]) or widget in NOT_SETTABLE, key
            continue
        if widget in NOT_SETTABLE:
            assert not ui_state.persistent_keys([key]), f"{file}: {widget} {key} cannot be set"
        else:
            assert ui_state.persistent_keys([key]) or key in NOT_KEPT, f"{file}: {key} unsorted"
    assert set(ui_state.PERSISTENT_KEYS) <= {k for _, _, k in keys}  # no stale names


def test_report_choice_keeps_removals_and_adds_new_items():
    from types import SimpleNamespace as Item

    items = [Item(page="Data", title="RMS", kind="figure", key="Data/rms"),
             Item(page="Data", title="RMS", kind="figure", key="Data/rms-2"),
             Item(page="Data", title="Runs", kind="table", key="Data/runs")]
    labels = ui_state.report_labels(items)
    assert labels == {"Data · RMS (figure)": "Data/rms",
                      "Data · RMS (figure) [Data/rms-2]": "Data/rms-2",
                      "Data · Runs (table)": "Data/runs"}
    excluded = ui_state.report_exclusions(labels, ["Data · RMS (figure)"])
    assert excluded == {"Data/rms-2", "Data/runs"}
    # Data/runs is no longer offered (evicted); a new item arrives: both rules hold
    later = {"Data · RMS (figure)": "Data/rms", "Data · RMS (figure) [Data/rms-2]": "Data/rms-2",
             "Eval · RUL (figure)": "Eval/rul"}
    assert ui_state.report_default_choice(later, excluded) == ["Data · RMS (figure)",
                                                               "Eval · RUL (figure)"]
    kept = ui_state.report_exclusions(later, ["Data · RMS (figure)", "Eval · RUL (figure)"],
                                      excluded)
    assert kept == {"Data/rms-2", "Data/runs"}  # the evicted removal is remembered

