"""Every page renders on the demo data, and its main interactions produce their elements."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from app_support import APP_ROOT, build_assets, use_workspace
from tiny_models import TINY_RC_LSTM

from rul_core import ui_state
from rul_core.signal.noise import NoiseAugmentation

st_testing = pytest.importorskip("streamlit.testing.v1")
TIMEOUT = 120


@pytest.fixture(scope="session")
def demo_assets():
    """Demo data + a 1-epoch quick model in a temporary workspace."""
    demo = build_assets(with_model=True)
    use_workspace(demo)
    return demo


def _app(page: str | None = None):
    at = st_testing.AppTest.from_file(str(APP_ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _chart_count(at) -> int:
    return len(at.get("plotly_chart"))


def test_home_lists_pages_and_demo(demo_assets):
    at = _app()
    _no_exceptions(at)
    text = " ".join(m.value for m in at.markdown)
    assert "Bearing RUL workbench" in " ".join(t.value for t in at.title)
    assert "remaining useful life" in text
    assert any("Demo dataset: ready" in s.value for s in at.success)


def test_data_page_renders_runs_and_trends(demo_assets):
    at = _app("pages/1_Data.py")
    _no_exceptions(at)
    runs_table = at.dataframe[0].value
    assert list(runs_table["run"]) == ["Bearing1_1", "Bearing1_2", "Bearing1_3", "Bearing2_1"]
    assert list(runs_table["snapshots"]) == [6, 6, 6, 6]
    assert _chart_count(at) >= 3  # raw signal, RMS, kurtosis (+ labels when available)
    at.selectbox(key="data_run").set_value("Bearing2_1").run()
    _no_exceptions(at)
    assert at.session_state["selected_run"] == "Bearing2_1"
    at.slider(key="data_snapshot").set_value(5).run()
    _no_exceptions(at)


def _chart(at, title_part: str) -> dict:
    import json

    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if title_part in spec["layout"]["title"]["text"]:
            return spec
    raise AssertionError(f"no chart titled like {title_part!r}")


def _legend(spec: dict) -> list[str]:
    return [t["name"] for t in spec["data"] if t.get("showlegend", True) and t.get("name")]


def test_data_page_spectrum_marks_bpfo_once_a_geometry_is_set(demo_assets):
    """The Spectrum section on the demo (synthetic FEMTO layout): the geometry its bearings
    are generated with (LDK UER204) by default, saying so; shaft harmonics only when no
    geometry is chosen, BPFO and the others once the XJTU-SY preset or a custom geometry is;
    amplitude spectrum; a band above Nyquist is refused with the limit named; the figures
    join the report."""
    at = _app("pages/1_Data.py")
    _no_exceptions(at)
    assert at.selectbox(key="spec_geometry").value == "LDK UER204 (XJTU-SY)"
    assert any("demo's synthetic bearings are generated with it" in c.value for c in at.caption)
    assert "BPFO 92.49 Hz (×1–3)" in _legend(_chart(at, "envelope spectrum of snapshot 0"))
    at.selectbox(key="spec_geometry").set_value("None (shaft harmonics only)").run()
    env = _chart(at, "envelope spectrum of snapshot 0")
    assert _legend(env) == ["spectrum", "f_r 30 Hz (×1–3)"]  # 1800 rpm
    assert _legend(_chart(at, "envelope spectrum over life")) == ["f_r 30 Hz (×1–3)"]

    at.slider(key="data_snapshot").set_value(5).run()  # the last, failed snapshot
    at.selectbox(key="spec_geometry").set_value("LDK UER204 (XJTU-SY)").run()
    _no_exceptions(at)
    env = _chart(at, "envelope spectrum of snapshot 5")
    assert "BPFO 92.49 Hz (×1–3)" in _legend(env)
    labels = next(t for t in env["data"] if t.get("legendgroup") == "BPFO"
                  and t["mode"] == "text")
    assert labels["text"] == ["BPFO", "2×BPFO", "3×BPFO"]
    assert "BPFO 92.49 Hz (×1–3)" in _legend(_chart(at, "envelope spectrum over life"))
    peaks = at.dataframe[-1].value  # the largest peaks, named after the nearest line
    assert peaks["nearest"].iloc[0] in ("BPFO", "3×f_r")  # 90 Hz: both within a 10 Hz bin
    assert abs(peaks["frequency_hz"].iloc[0] - 92.49) <= 10.0
    keys = at.session_state["figure_registry"].keys()
    assert {"Data/spectrum", "Data/spectrum-life", "Data/spectrum-peaks"} <= set(keys)

    at.selectbox(key="spec_geometry").set_value("Custom").run()
    _no_exceptions(at)
    assert "BPFO" not in str(_legend(_chart(at, "envelope spectrum of snapshot 5")))
    at.number_input(key="spec_balls").set_value(8).run()
    at.number_input(key="spec_ball_mm").set_value(7.92).run()
    at.number_input(key="spec_pitch_mm").set_value(34.55).run()
    _no_exceptions(at)
    assert "BPFO 92.49 Hz (×1–3)" in _legend(_chart(at, "envelope spectrum of snapshot 5"))

    at.number_input(key="spec_band_hi").set_value(12800.0).run()  # = Nyquist at 25.6 kHz
    _no_exceptions(at)
    assert any("band: the upper edge 12800 Hz must be below the Nyquist frequency 12800 Hz"
               in e.value for e in at.error)
    at.number_input(key="spec_band_hi").set_value(9000.0).run()
    at.radio(key="spec_kind").set_value("amplitude").run()
    _no_exceptions(at)
    assert not at.error
    amp = _chart(at, "amplitude spectrum of snapshot 5")
    assert amp["layout"]["xaxis"]["range"][1] == 12800.0  # up to Nyquist by default
    assert _chart(at, "amplitude spectrum over life")


def test_data_page_suggests_the_envelope_band_from_the_kurtogram(demo_assets):
    """"Suggest a band (kurtogram)" on the demo's failed snapshot: the band inputs take the
    kurtogram's best band (the same as the core computes), the envelope spectrum uses it, and
    the kurtogram is drawn with that band outlined, described and registered for the report;
    "the last snapshots" averages their maps; another channel forgets the suggestion."""
    from rul_core import plots
    from rul_core.data import load_dataset
    from rul_core.signal import kurtogram as kgm

    run = load_dataset(ui_state.demo_data_path(), cache_dir=None).run("Bearing1_1")
    at = _app("pages/1_Data.py")
    at.slider(key="data_snapshot").set_value(5).run()  # the last, failed snapshot
    at.toggle(key="spec_bandpass").set_value(False).run()  # the suggestion switches it on
    assert not any("kurtogram of" in _chart_title(c) for c in at.get("plotly_chart"))
    at.button(key="spec_kurtogram_go").click().run()
    _no_exceptions(at)
    assert not at.error
    band, kg, _ = kgm.suggest_band(run.snapshots[5, :, 0], run.fs)
    assert kg.best.kurtosis > 5 * kg.best.noise_std  # the impacts stand out at failure
    assert at.toggle(key="spec_bandpass").value is True
    assert at.number_input(key="spec_band_lo").value == pytest.approx(band[0])
    assert at.number_input(key="spec_band_hi").value == pytest.approx(band[1])
    env = _chart(at, "envelope spectrum of snapshot 5")
    assert f"band {band[0]:g}–{band[1]:g} Hz" in env["layout"]["title"]["text"]
    chart = _chart(at, "kurtogram of snapshot 5, horizontal")
    assert chart["data"][0]["type"] == "heatmap"
    assert chart["data"][0]["z"]["shape"] == f"{kg.levels.size}, 48"  # levels 0-4, 3 x 2^4
    outline = chart["data"][1]
    assert outline["name"].startswith(f"chosen band: level {plots.level_label(kg.best.level)}, "
                                      f"{kg.best.low:.0f}–{kg.best.high:.0f} Hz")
    assert min(outline["x"]) == kg.best.low and max(outline["x"]) == kg.best.high
    assert any(c.value.startswith(f"Largest kurtosis {kg.best.kurtosis:.3g} at level")
               for c in at.caption)
    keys = at.session_state["figure_registry"].keys()
    assert "Data/kurtogram" in set(keys)

    at.radio(key="spec_kurtogram_of").set_value("late").run()
    at.button(key="spec_kurtogram_go").click().run()
    _no_exceptions(at)
    late_band, late_kg, _ = kgm.suggest_band(run.snapshots[1:6, :, 0], run.fs)
    assert late_kg.snapshots == 5
    assert at.number_input(key="spec_band_lo").value == pytest.approx(late_band[0])
    assert at.number_input(key="spec_band_hi").value == pytest.approx(late_band[1])
    assert _chart(at, "kurtogram of snapshots 1–5 (mean), horizontal")
    at.selectbox(key="spec_channel").set_value("vertical").run()
    _no_exceptions(at)
    assert not any("kurtogram of" in _chart_title(c) for c in at.get("plotly_chart"))


def test_data_page_says_why_a_snapshot_too_short_has_no_kurtogram(demo_assets, tmp_path):
    """Snapshots of 200 samples (a kurtogram needs 256): the click shows the reason, the band
    inputs keep their values, and the page goes on."""
    from rul_core.data.synthetic import write_dataset

    short = write_dataset(tmp_path / "short", "femto", n_bearings=1, n_snapshots=3,
                          samples=200, seed=4)
    at = _app("pages/1_Data.py")
    at.radio(key="data_source").set_value("Server path").run()
    at.text_input(key="server_path").input(str(short)).run()
    at.button(key="load_path").click().run()
    before = (at.number_input(key="spec_band_lo").value, at.number_input(key="spec_band_hi").value)
    at.button(key="spec_kurtogram_go").click().run()
    _no_exceptions(at)
    assert [e.value for e in at.error] == [
        "kurtogram: signal: a kurtogram needs at least 256 samples (level 1: 128 per band), "
        "got 200"]
    after = (at.number_input(key="spec_band_lo").value, at.number_input(key="spec_band_hi").value)
    assert after == before
    assert _chart(at, "envelope spectrum of snapshot 0")


def _chart_title(chart) -> str:
    import json

    return json.loads(chart.proto.spec)["layout"]["title"]["text"]


def test_data_page_geometry_starts_again_for_another_dataset(demo_assets, tmp_path):
    """The demo's geometry (LDK UER204) does not follow the user to another FEMTO-layout
    dataset, which starts with the shaft harmonics only; a choice made on that dataset stays
    while it is loaded."""
    from rul_core.data.synthetic import write_dataset

    other = write_dataset(tmp_path / "other", "femto", n_bearings=1, n_snapshots=3, seed=4)
    at = _app("pages/1_Data.py")
    assert at.selectbox(key="spec_geometry").value == "LDK UER204 (XJTU-SY)"
    at.radio(key="data_source").set_value("Server path").run()
    at.text_input(key="server_path").input(str(other)).run()
    at.button(key="load_path").click().run()
    _no_exceptions(at)
    assert at.selectbox(key="spec_geometry").value == "None (shaft harmonics only)"
    at.selectbox(key="spec_geometry").set_value("Custom").run()
    at.slider(key="data_snapshot").set_value(1).run()
    assert at.selectbox(key="spec_geometry").value == "Custom"


def test_data_page_reports_bad_server_path(demo_assets):
    at = _app("pages/1_Data.py")
    at.radio(key="data_source").set_value("Server path").run()
    at.text_input(key="server_path").input("/no/such/folder").run()
    at.button(key="load_path").click().run()
    _no_exceptions(at)
    assert any("no such file or folder" in e.value for e in at.error)


def test_sidebar_follows_a_dataset_and_model_chosen_in_the_same_run(demo_assets):
    """The sidebar is drawn before the page loads anything: it must still name the dataset
    loaded by this run's button and the model this run made current, not the previous ones."""
    at = _app("pages/1_Data.py")
    n_demo = len(ui_state.demo_models())
    assert n_demo >= 1
    assert (f"**Model:** none loaded yet (demo models: {n_demo}, loaded by the first model page)"
            in [c.value for c in at.sidebar.caption])
    data_dir = str(demo_assets / "data")
    at.radio(key="data_source").set_value("Server path").run()
    at.text_input(key="server_path").input(data_dir).run()
    at.button(key="load_path").click().run()
    _no_exceptions(at)
    captions = [c.value for c in at.sidebar.caption]
    assert f"**Dataset:** {data_dir}" in captions
    assert "**Dataset:** demo (synthetic FEMTO layout)" not in captions
    at.switch_page("pages/4_Evaluate.py").run()  # its first visit loads the demo model
    _no_exceptions(at)
    model = at.session_state["model_label"]
    captions = [c.value for c in at.sidebar.caption]
    assert model and f"**Model:** {model}" in captions
    assert [c.split(":**")[0] for c in captions if c.startswith("**")] == ["**Dataset",
                                                                         "**Model"]


@pytest.mark.real
def test_data_page_reads_real_femto_bearing(demo_assets):
    from rul_core.ui_state import catalogued_paths

    label = "FEMTO Learning_set/Bearing3_1 (real, read-only)"
    if label not in catalogued_paths():
        pytest.skip("real FEMTO data (../shared/data/real/femto) not on this machine")
    at = _app("pages/1_Data.py")
    at.radio(key="data_source").set_value("Catalogued").run()
    at.selectbox(key="catalog_pick").set_value(label).run()
    at.button(key="load_catalog").click().run()
    _no_exceptions(at)
    runs = at.dataframe[0].value
    assert list(runs["run"]) == ["Bearing3_1"]
    assert list(runs["snapshots"]) == [515] and list(runs["rpm"]) == [1500.0]
    assert _chart_count(at) >= 3
    # the Spectrum section on a real bearing: no published geometry, so the shaft only
    assert _legend(_chart(at, "envelope spectrum of snapshot 0")) == ["spectrum",
                                                                     "f_r 25 Hz (×1–3)"]
    assert _chart(at, "envelope spectrum over life")
    assert "300 of 515 snapshots, evenly spaced from the first to the last." in [
        c.value for c in at.caption]


@pytest.mark.real
def test_evaluate_a_real_test_set_with_the_phm2012_section(demo_assets, real_data_dir):
    """The README's app flow on the real Test_set copy: its Bearing1_4 holds 40 of the 1139
    snapshots the challenge kept, so the section says it is not scored and replays it."""
    at = _app("pages/1_Data.py")
    at.radio(key="data_source").set_value("Server path").run()
    at.text_input(key="server_path").input(str(real_data_dir / "femto" / "Test_set")).run()
    at.button(key="load_path").click().run()
    _no_exceptions(at)
    at.switch_page("pages/4_Evaluate.py").run()
    _no_exceptions(at)
    assert at.multiselect(key="eval_runs").value == ["Bearing1_4"]
    assert any("Bearing1_4: 40 snapshots, not the 1139 the challenge kept" in c.value
               for c in at.caption)
    replay = at.dataframe[0].value
    assert list(replay["run"]) == ["Bearing1_4"] and replay["proxy"].between(0, 1).all()


def test_representations_window_slider(demo_assets):
    at = _app("pages/2_Representations.py")
    _no_exceptions(at)
    assert _chart_count(at) == 5  # ImR, window, scalogram, TF bars, TF trends
    assert any("cone of influence" in i.value for i in at.info)
    at.slider(key="repr_window").set_value(7).run()
    _no_exceptions(at)
    assert any("Snapshot 1 of 5, window 3" in c.value for c in at.caption)


def test_train_quick_model_in_background(demo_assets):
    at = _app("pages/3_Train.py")
    _no_exceptions(at)
    at.selectbox(key="train_model").set_value("carle").run()
    at.multiselect(key="train_runs").set_value(["Bearing1_1"]).run()
    at.multiselect(key="val_runs").set_value(["Bearing1_3"]).run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.selectbox(key="train_scheme").set_value("capped").run()
    at.number_input(key="train_cap_min").set_value(0.5).run()  # 30 s = 3 snapshots of 10 s
    at.number_input(key="train_log_min").set_value(0.25).run()  # 15 s: 2 snapshots (rounded)
    at.number_input(key="train_patience").set_value(0).run()  # a fixed budget
    at.number_input(key="train_every").set_value(2).run()
    at.number_input(key="train_phases").set_value(2).run()
    at.number_input(key="train_every").set_value(1).run()
    _no_exceptions(at)
    assert at.number_input(key="train_phases").value == 1  # never more offsets than N
    at.number_input(key="train_every").set_value(2).run()
    at.number_input(key="train_phases").set_value(2).run()
    at.text_area(key="train_hparams").input("forest_trees=7\ndense_units=[8, 4]").run()
    at.selectbox(key="train_aug_kind").set_value("gaussian").run()
    at.number_input(key="train_aug_severity").set_value(0.5).run()
    at.number_input(key="train_aug_copies").set_value(2).run()
    assert any("2 noisy copies of each training run with gaussian noise at severity 0.5" in c.value
               for c in at.caption)
    at.session_state["eval_models"] = ["demo carle/carl"]  # a comparison chosen on Evaluate
    at.button(key="train_start").click().run()
    _no_exceptions(at)
    job = at.session_state["train_job"]
    job.join(timeout=240)
    assert job.status == "done", job.error
    assert job.result.label_scheme == "capped"
    assert job.result.label_params == {"max_rul": 3, "log_scale": 2}
    assert [r.name for r in job.result.train_runs] == ["Bearing1_1"]
    assert job.result.metrics["patience"] == 0.0  # reached the child's train()
    assert job.result.snapshot_every == 2 and job.result.metrics["snapshot_phases"] == 2
    assert job.result.augmentation == NoiseAugmentation("gaussian", 0.5, 2)  # via the bundle
    assert len(job.epoch_history()["loss"]) == 1  # one point per epoch
    hp = job.result.config.hparams  # the overrides, with the epochs and batch size train() used
    assert (hp["forest_trees"], hp["dense_units"], hp["epochs"]) == (7, [8, 4], 1)
    assert len(job.result.forest.forest.estimators_) == 7  # the override reached the model
    at.run()  # the fragment collects the finished job
    at.run()
    _no_exceptions(at)
    assert any("Trained carle/full" in s.value for s in at.success)
    assert at.session_state["model_label"].startswith("carle/full (quick)")
    # the new model joins the kept comparison instead of waiting to be picked there
    assert at.session_state["eval_models"] == ["demo carle/carl", at.session_state["model_label"]]
    label = at.session_state["model_label"]
    assert at.session_state["unsaved_models"] == {label}  # trained here, not saved yet
    at.text_input(key="bundle_name").set_value(f"carle-{time.time_ns()}").run()
    at.button(key="save_bundle").click().run()
    _no_exceptions(at)
    assert any("Saved to" in s.value for s in at.success)
    assert at.session_state["unsaved_models"] == set()
    saved = ui_state.bundle_path(at.text_input(key="bundle_name").value)
    card = (saved / "card.json").read_bytes()
    at.run()  # the same name again: saving needs an explicit replace
    assert at.button(key="save_bundle").disabled
    with pytest.raises(Exception, match="a bundle of this name exists"):
        ui_state.save_model(job.result, saved.name)
    assert (saved / "card.json").read_bytes() == card
    at.checkbox(key="bundle_replace").check().run()
    assert not at.button(key="save_bundle").disabled
    at.button(key="save_bundle").click().run()
    _no_exceptions(at)
    assert any("Saved to" in s.value for s in at.success)


def test_models_leave_the_session_and_unsaved_ones_only_when_confirmed(demo_assets):
    """Every model trained or loaded stayed in every page's lists for the whole session; now
    they can be removed, and one trained here and not saved needs an explicit confirmation."""
    at = _app("pages/3_Train.py")
    (demo,) = list(at.session_state["models"])
    at.session_state["models"]["trained here"] = at.session_state["models"][demo]
    at.session_state["unsaved_models"] = {"trained here"}
    at.session_state["model_label"] = "trained here"
    at.run()
    at.multiselect(key="session_drop").set_value(["trained here"]).run()
    _no_exceptions(at)
    assert any("Not saved as a bundle, so lost once removed: trained here" in w.value
               for w in at.warning)
    assert at.button(key="session_drop_go").disabled
    at.checkbox(key="session_drop_unsaved").check().run()
    at.button(key="session_drop_go").click().run()
    _no_exceptions(at)
    assert list(at.session_state["models"]) == [demo]
    assert at.session_state["model_label"] == demo  # the current model moved to one left
    assert at.session_state["unsaved_models"] == set()
    assert any("Removed from this session: trained here (bundles kept)." in s.value
               for s in at.success)
    at.multiselect(key="session_drop").set_value([demo]).run()  # a saved one: no warning
    assert not at.warning and not at.button(key="session_drop_go").disabled
    at.button(key="session_drop_go").click().run()
    _no_exceptions(at)
    assert not at.session_state["models"] and "model_label" not in at.session_state
    at.switch_page("pages/4_Evaluate.py").run()  # not reloaded behind the user's back
    _no_exceptions(at)
    assert any("No model yet" in i.value for i in at.info)


def test_load_tab_finds_a_bundle_missing_from_the_catalog(demo_assets):
    """A bundle saved into the workspace by a process killed before cataloguing it was in no
    list on the Load tab; the rescan button checks it and adds it to the picker."""
    import shutil

    name = f"lost-{time.time_ns()}"
    folder = ui_state.bundles_dir() / name
    shutil.copytree(demo_assets / "model", folder)
    at = _app("pages/3_Train.py")
    assert not any(name in option for option in at.selectbox(key="bundle_pick").options)
    at.button(key="bundle_rescan").click().run()
    _no_exceptions(at)
    assert any("1 bundle(s) added to the catalog" in s.value for s in at.success)
    assert any(str(folder) in option for option in at.selectbox(key="bundle_pick").options)


def test_train_challenge_settings_fill_the_form(demo_assets):
    from rul_core.phm2012 import CHALLENGE_TRAINING

    at = _app("pages/3_Train.py")
    at.selectbox(key="train_model").set_value("carle").run()
    at.number_input(key="train_epochs").set_value(2).run()
    at.number_input(key="train_every").set_value(2).run()
    at.number_input(key="train_phases").set_value(2).run()  # the button sets it back to 1
    at.selectbox(key="train_interval").set_value("ensemble").run()
    at.number_input(key="train_members").set_value(3).run()  # ... and this back to 5
    at.selectbox(key="train_aug_kind").set_value("uniform").run()  # ... and this to none
    at.text_area(key="train_hparams").input("foo=1").run()  # an unknown key: refused ...
    assert any("unknown hparams ['foo']" in e.value for e in at.error)
    assert at.button(key="train_start").disabled
    at.button(key="train_challenge").click().run()
    _no_exceptions(at)
    # the demo's runs last 50 s (6 snapshots 10 s apart): the settings do not fit them
    (warning,) = [w.value for w in at.warning]
    assert "the longest run lasts 0.8 min, less than the 50-minute cap" in warning
    assert "every 6th snapshot leaves 1 snapshot per run (fewer than 30)" in warning
    assert at.selectbox(key="train_model").value == "rc_lstm"
    assert at.selectbox(key="train_scheme").value == "capped"
    assert at.number_input(key="train_cap_min").value == 50.0
    assert at.number_input(key="train_log_min").value == CHALLENGE_TRAINING["log_scale_minutes"]
    assert at.selectbox(key="train_interval").value == CHALLENGE_TRAINING["interval"]
    assert at.number_input(key="train_members").value == CHALLENGE_TRAINING["n_members"]
    assert at.text_area(key="train_hparams").value == ""  # ... and cleared by the button
    assert at.selectbox(key="train_aug_kind").value == "none"
    assert not at.error and not at.button(key="train_start").disabled
    assert (at.number_input(key="train_epochs").value, at.number_input(key="train_patience").value,
            at.number_input(key="train_every").value,
            at.number_input(key="train_phases").value) == (5, 0, 6, 1)
    assert at.multiselect(key="val_runs").value == []  # every bearing trains ...
    assert any("none validates" in c.value for c in at.caption)  # ... and the page says so
    assert at.multiselect(key="train_runs").value == at.multiselect(key="train_runs").options
    at.run()
    assert len(at.warning) == 1  # while the cap and the thinning are the challenge's ...
    at.number_input(key="train_every").set_value(1).run()
    assert not at.warning, [w.value for w in at.warning]  # ... not after a change


def test_train_cross_validates_in_the_background(demo_assets):
    from rul_core.crossval import CrossValidation
    from rul_core.ui_state import CROSS_VALIDATE
    from rul_core.workspace import Workspace

    at = _app("pages/3_Train.py")
    at.radio(key="train_mode").set_value(CROSS_VALIDATE).run()
    _no_exceptions(at)
    assert at.radio(key="cv_split").value == "Leave one bearing out"
    at.radio(key="cv_split").set_value("K groups of bearings").run()
    assert at.number_input(key="cv_folds").max == 3  # 4 demo bearings: at most 3 groups
    at.number_input(key="cv_folds").set_value(3).run()
    at.multiselect(key="cv_runs").set_value(["Bearing1_1"]).run()
    assert any("at least two bearings" in i.value for i in at.info)
    assert at.button(key="cv_start").disabled
    at.multiselect(key="cv_runs").set_value(["Bearing1_1", "Bearing1_3", "Bearing2_1"]).run()
    assert at.number_input(key="cv_folds").value == 2  # never more groups than possible
    assert at.number_input(key="cv_jobs").max == 3
    at.number_input(key="cv_jobs").set_value(2).run()  # both folds train at once
    at.selectbox(key="train_model").set_value("carle").run()
    at.selectbox(key="train_ablation").set_value("carl").run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_patience").set_value(0).run()
    at.selectbox(key="train_scheme").set_value("capped").run()
    at.number_input(key="train_cap_min").set_value(0.5).run()
    at.text_area(key="train_hparams").input("lstm_units=[4, 4]").run()
    at.button(key="cv_start").click().run()
    _no_exceptions(at)
    job = at.session_state["train_job"]
    job.join(timeout=240)
    assert job.status == "done", job.error
    cv = job.result
    assert isinstance(cv, CrossValidation) and len(cv.folds) == 2
    assert job.snapshot_events("cross-validation")[0].message == "0/2 folds done, 2 at once · " \
        "2 waiting"
    overall = [e.extra["overall"] for e in job.snapshot_events()]
    assert overall == sorted(overall) and overall[-1] == 1.0  # one bar, forward only
    held = sorted(n for f in cv.folds["held_out"] for n in f.split(", "))
    assert held == ["Bearing1_1", "Bearing1_3", "Bearing2_1"]  # each bearing once
    assert cv.settings["train"]["label_params"] == {"max_rul": 3}
    assert cv.settings["config"]["hparams"]["lstm_units"] == [4, 4]  # reached every fold
    assert set(job.epoch_history()) == {"loss (fold 1)", "loss (fold 2)"}
    at.run()  # the fragment collects the result, saves and catalogs it
    at.run()
    _no_exceptions(at)
    assert any("in 2 folds — saved to" in s.value for s in at.success)
    saved = at.session_state["cv_saved"]
    assert (saved / "predictions.csv").is_file()
    assert str(saved) in [r["path"] for r in Workspace().list_cross_validations()]
    assert at.metric[0].label == "Out-of-fold RMSE"
    assert float(at.metric[0].value) == pytest.approx(cv.summary()["rmse"], abs=1e-3)
    titles = [c.value for c in at.caption]  # each table under its title, saying what it is over
    assert "**Cross-validation: Out-of-fold metrics per bearing × condition (over windows)**" \
        in titles
    assert sorted(at.dataframe[0].value["run"].tolist()[:3]) == held
    at.selectbox(key="cv_run_pick").set_value("Bearing2_1").run()
    _no_exceptions(at)
    assert at.get("download_button")
    # the third tab lists it from the catalog and opens it from its folder
    at = _app("pages/3_Train.py")
    _no_exceptions(at)
    past = at.selectbox(key="cv_past_pick")
    assert "carle/carl (quick)" in past.options[0]  # newest first
    assert float(at.metric[0].value) == pytest.approx(cv.summary()["rmse"], abs=1e-3)
    assert at.selectbox(key="cv-past_run_pick").options == list(
        dict.fromkeys(cv.evaluation.snapshots["run"]))


def test_train_offers_each_model_its_own_intervals(demo_assets):
    at = _app("pages/3_Train.py")
    at.selectbox(key="train_model").set_value("rc_lstm").run()
    assert at.selectbox(key="train_interval").options == ["gaussian", "ensemble"]
    at.selectbox(key="train_model").set_value("carle").run()
    assert at.selectbox(key="train_interval").options == ["mc_dropout", "ensemble"]
    _no_exceptions(at)


def test_train_cancel_stops_job(demo_assets):
    at = _app("pages/3_Train.py")
    at.selectbox(key="train_model").set_value("carle").run()
    at.number_input(key="train_epochs").set_value(200).run()
    at.selectbox(key="train_interval").set_value("ensemble").run()
    at.number_input(key="train_members").set_value(2).run()
    at.button(key="train_start").click().run()
    job = at.session_state["train_job"]
    deadline = time.monotonic() + 120
    while not job.snapshot_events("train") and job.running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "member 1/2" in job.snapshot_events("train")[0].message  # the size reached train()
    job.cancel()
    job.join(timeout=120)
    assert job.status == "cancelled"
    at.run()
    _no_exceptions(at)
    assert not at.error, [e.value for e in at.error]  # the user's choice, not a failure
    assert any(w.value.startswith("Training cancelled") and "no model was kept" in w.value
               for w in at.warning), [w.value for w in at.warning]


def test_a_cancel_that_reaches_a_finished_training_says_the_model_is_kept(demo_assets):
    """The Cancel button is drawn while the training runs; it ends before the click arrives.
    The click used to be lost (the next run draws no button), so the analyst who cancelled saw
    a plain success; now the click reaches the job, and the page says the training finished
    before the cancel arrived and the model is kept. Meanwhile the bar read the job's ETA."""
    import threading

    from rul_core.bundle import load_bundle
    from rul_core.progress import emit

    trained = load_bundle(demo_assets / "model")
    release = threading.Event()

    def target(progress, cancel):
        emit(progress, "train", 3, 10, "member 1/1 epoch 1/2 loss 0.5", eta_s=None)
        release.wait(60)
        return trained

    at = _app("pages/3_Train.py")
    job = ui_state.start_job("multimodal-full", target)
    at.session_state["train_job"] = job
    deadline = time.monotonic() + 10
    while job.last is None and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    _no_exceptions(at)
    assert at.button(key="train_cancel")  # drawn: the job runs
    bar = at.get("progress")[0].proto
    assert bar.text.endswith("· train: member 1/1 epoch 1/2 loss 0.5 · ETA estimating…")
    release.set()
    job.join(10)
    assert job.status == "done"
    at.button(key="train_cancel").click().run()
    _no_exceptions(at)
    assert job.late_cancel
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Training finished before the cancel arrived — the model is kept")
               for w in warnings), warnings
    label = ui_state.model_label(trained)
    assert any(s.value.startswith(f"Trained {label}") for s in at.success)
    assert at.session_state["model_label"] == label  # kept, as the warning says


def test_training_that_ends_on_another_page_reaches_that_page(demo_assets):
    """An analyst starts a training and goes to Evaluate while it runs: once it ends, the next
    run of Evaluate lists the new model (it used to join the session only when the Train
    page ran again); back on Train the success message is there and the model is not added
    twice."""
    at = _app("pages/3_Train.py")
    at.selectbox(key="train_model").set_value("rc_lstm").run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.text_area(key="train_hparams").input(
        "\n".join(f"{k}={v}" for k, v in TINY_RC_LSTM.items())).run()
    at.button(key="train_start").click().run()
    _no_exceptions(at)
    job = at.session_state["train_job"]
    at.switch_page("pages/4_Evaluate.py")
    at.run()
    _no_exceptions(at)
    job.join(timeout=240)
    assert job.status == "done", job.error
    label = ui_state.model_label(job.result)
    at.run()  # in the server, the sidebar's poll reruns the page when the training ends
    _no_exceptions(at)
    assert label in at.multiselect(key="eval_models").options
    assert at.session_state["model_label"] == label
    models = dict(at.session_state["models"])
    at.switch_page("pages/3_Train.py")
    at.run()
    _no_exceptions(at)
    assert any(s.value.startswith(f"Trained {label}") for s in at.success)
    assert dict(at.session_state["models"]) == models


def test_evaluate_a_model_loaded_again_under_the_same_label_is_evaluated_anew(
        demo_assets, monkeypatch):
    """Results were cached by the model's label: another bundle loaded under a label already
    used (an upload of a folder with the same name, a bundle saved over and loaded again from
    its path) showed the first model's curves and metrics."""
    import dataclasses

    from rul_core import evaluation

    evaluated = []
    real = evaluation.evaluate
    monkeypatch.setattr(evaluation, "evaluate",
                        lambda model, *a, **k: evaluated.append(model) or real(model, *a, **k))
    at = _app("pages/4_Evaluate.py")
    (demo,) = at.session_state["models"].values()
    at.session_state["models"]["upload model"] = demo
    at.run()
    at.multiselect(key="eval_models").set_value(["upload model"]).run()
    _no_exceptions(at)
    assert evaluated == [demo, demo]  # the first run's default, then the upload's
    other = dataclasses.replace(demo, created="2026-11-29T12:00:00+00:00")
    at.session_state["models"]["upload model"] = other  # the next upload, same folder name
    at.run()
    _no_exceptions(at)
    assert evaluated == [demo, demo, other]
    at.run()
    assert len(evaluated) == 3  # and then cached


def test_evaluate_demo_model(demo_assets):
    at = _app("pages/4_Evaluate.py")
    _no_exceptions(at)
    assert _chart_count(at) == 2  # RUL over life, time left
    labels = [m.label for m in at.metric]
    assert labels == ["Running for", "Estimated time left", "Actual time left",
                      "Proxy at the challenge's cuts", "Grid proxy (cuts at 50–98 % of life)"]
    assert at.metric[2].value == "0.0 min"  # all snapshots recorded: the failure itself
    (download,) = [b for b in at.get("download_button") if "predictions" in b.proto.label]
    assert "1 model × 2 bearings, every snapshot" in download.proto.label
    n = at.slider(key="eval_time_upto").max
    at.slider(key="eval_time_upto").set_value(3).run()
    _no_exceptions(at)
    assert at.metric[0].value == "0.3 min"  # snapshots 0, 1, 2: 20 s after the first
    assert at.metric[2].value == f"{(n - 3) * 10 / 60:.1f} min"  # 10 s between snapshots
    # PHM 2012: the demo's Bearing1_3 is not truncated like the challenge's: replayed, noted
    replay = at.dataframe[0].value
    assert list(replay["run"]) == ["Bearing1_3", "Bearing2_1"]
    assert ((replay["proxy"] >= 0) & (replay["proxy"] <= 1)).all()
    # the table is shown rounded to 4 decimals, the metrics are the unrounded means
    assert float(at.metric[3].value) == pytest.approx(replay["proxy"].mean(), abs=1e-4)
    assert float(at.metric[4].value) == pytest.approx(replay["grid_proxy"].mean(), abs=1e-4)
    assert any("Bearing1_3:" in c.value and "not the 1802 the challenge kept" in c.value
               for c in at.caption)
    table = at.dataframe[1].value
    assert {"Bearing1_3", "Bearing2_1", "all"} <= set(table["run"])
    assert ((table["rmse"] >= 0) & (table["rmse"] <= 1.5)).all()
    seen = at.dataframe[2].value
    assert list(seen["conditions"]) == ["unseen", "seen"]  # Bearing2_1 / Bearing1_3
    at.selectbox(key="eval_run_pick").set_value("Bearing2_1").run()
    _no_exceptions(at)
    # the tables say what their metrics are over, on the page and in the report
    (label,) = at.session_state["models"]
    reg = at.session_state["figure_registry"]
    for on in ("snapshot", "window"):
        at.radio(key="eval_on").set_value(on).run()
        _no_exceptions(at)
        assert f"Metrics per bearing × condition (over {on}s)" in [h.value for h in at.subheader]
        assert reg.get(f"Evaluate/table-{label}").title == (
            f"Metrics per bearing × condition (over {on}s): {label}")
    # two models: the comparison and the papers' side-by-side (ablation) table
    (label,) = at.session_state["models"]
    at.session_state["models"]["copy"] = at.session_state["models"][label]
    at.run()
    at.multiselect(key="eval_models").set_value([label, "copy"]).run()
    _no_exceptions(at)
    side = at.dataframe[-1].value
    assert list(side.columns) == ["condition", "run", label, "copy", "best"]  # RMSE first
    assert side[label].tolist() == side["copy"].tolist()  # the same model
    assert set(side["best"]) == {f"{label} = copy"}  # a tie everywhere
    assert side.set_index("run").loc["Bearing2_1", "copy"] == pytest.approx(
        table.set_index("run").loc["Bearing2_1", "rmse"], abs=1e-4)
    at.selectbox(key="eval_side_metric").set_value("score").run()
    _no_exceptions(at)
    side = at.dataframe[-1].value
    assert side.set_index("run").loc["Bearing2_1", "copy"] == pytest.approx(
        table.set_index("run").loc["Bearing2_1", "score"], rel=1e-3)
    assert reg.get("Evaluate/ablation").title.startswith("CARLE score of the models side by")


def test_noise_lab_window_and_sweep(demo_assets):
    at = _app("pages/5_Noise_lab.py")
    _no_exceptions(at)
    at.selectbox(key="noise_kind").set_value("gaussian").run()
    at.slider(key="noise_severity").set_value(2.0).run()
    _no_exceptions(at)
    assert _chart_count(at) == 5  # 2 ImR, 2 signals, scalogram
    feats = at.dataframe[0].value
    assert list(feats.index) == ["clean", "noisy"]
    assert feats.loc["noisy", "std"] > feats.loc["clean", "std"]  # Gaussian noise adds spread
    change = at.dataframe[1].value
    assert "demo multimodal" in change.index
    at.multiselect(key="sweep_runs").set_value(["Bearing1_3"]).run()
    at.text_input(key="sweep_levels").input("0, 1").run()
    at.button(key="sweep_run").click().run()
    _no_exceptions(at)
    assert _chart_count(at) == 7  # + the error and the rank correlation against severity
    sweep = at.dataframe[-1].value
    assert list(sweep.columns) == ["model", "severity", "rmse", "rank_correlation"]
    assert sweep["severity"].tolist() == [0.0, 1.0] * (len(sweep) // 2)
    assert set(sweep["model"]) == set(change.index)
    assert sweep["rank_correlation"].between(-1, 1).all()  # the demo bearing wears: finite


def test_noise_lab_predictions_are_cached_and_the_same(demo_assets, monkeypatch):
    """The Noise lab predicts every model on the clean and the noisy window through a cache
    (app_ui.window_prediction): the same numbers as predicting directly; a new severity
    predicts only the noisy windows again, and going back predicts nothing."""
    from rul_core import app_ui, views

    real = views.window_prediction
    calls = []

    def counting(trained, run, snapshot, window, noise=None):
        calls.append(noise)
        return real(trained, run, snapshot, window, noise)

    app_ui.window_prediction.clear()
    monkeypatch.setattr(views, "window_prediction", counting)
    at = _app("pages/5_Noise_lab.py")
    at.selectbox(key="noise_kind").set_value("gaussian").run()
    at.number_input(key="noise_window").set_value(5).run()
    _no_exceptions(at)
    models = at.session_state["models"]
    assert calls[-2:] == [None, calls[-1]] and calls[-1] is not None  # clean, noisy
    calls.clear()
    at.run()
    assert calls == []  # a rerun predicts nothing again
    at.slider(key="noise_severity").set_value(2.0).run()
    assert len(calls) == len(models) and all(n is not None for n in calls)  # the noisy ones
    at.slider(key="noise_severity").set_value(1.0).run()
    at.slider(key="noise_severity").set_value(0.0).run()  # clean: the cached clean ones
    at.slider(key="noise_severity").set_value(2.0).run()
    _no_exceptions(at)
    assert len(calls) == len(models)
    change = at.dataframe[1].value
    from rul_core.data import load_dataset
    from rul_core.signal.noise import NoiseModel

    dataset = load_dataset(at.session_state["dataset_source"]["path"])
    bearing = dataset.run(at.session_state["selected_run"])
    per_snapshot = views.n_windows(bearing, views.ViewSettings.for_run(bearing))
    snap, win = divmod(5, per_snapshot)
    for label, trained in models.items():
        clean = real(trained, bearing, snap, win)
        noisy = real(trained, bearing, snap, win, NoiseModel("gaussian", 2.0, 0))
        assert change.loc[label, "clean RUL"] == clean["mean"]
        assert change.loc[label, "noisy RUL"] == noisy["mean"]


def test_streamlit_keeps_the_keras_session_between_runs(demo_assets, monkeypatch):
    """Streamlit's clear of the Keras session after every run (a full garbage collection
    each time) is switched off by the app; closing matplotlib figures is kept."""
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    at = _app("pages/1_Data.py")
    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: cleared.append(a))
    at.run()
    _no_exceptions(at)
    script_runner._clean_problem_modules()
    assert cleared == []
    # pyplot half-imported by another thread (no ``close`` yet): the clean-up skips it
    import sys
    import types

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", types.ModuleType("matplotlib.pyplot"))
    script_runner._clean_problem_modules()


def test_app_script_runs_outside_streamlit():
    """After an AppTest, the process's __main__ is app.py, and every multiprocessing 'spawn'
    child runs it again, bare (no ``streamlit run``): a page title read off the navigation
    there raised, and a workspace test's writer processes died with it."""
    import subprocess
    import sys

    code = "import runpy; runpy.run_path('app.py', run_name='__mp_main__')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, cwd=APP_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


def test_keras_is_imported_in_the_background_once():
    """The first model page waited 4 s for the Keras import; app.py now starts it in a
    background thread, once per process, while the first pages are drawn."""
    import subprocess
    import sys

    code = ("import sys, threading\n"
            "from rul_core import app_ui\n"
            "assert 'keras' not in sys.modules\n"
            "app_ui.warm_up_keras(); app_ui.warm_up_keras()\n"
            "warm = [t for t in threading.enumerate() if t.name == 'keras-warm-up']\n"
            "assert len(warm) == 1, warm\n"
            "warm[0].join(120)\n"
            "assert 'keras' in sys.modules\n"
            "app_ui.warm_up_keras()\n"
            "assert not [t for t in threading.enumerate() if t.name == 'keras-warm-up']\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, cwd=APP_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


def _explain_with_few_samples(at, button: str = "explain_go", lime_seeds: int = 2) -> None:
    """Press an Explain button with LIME and SHAP at test-sized sample counts."""
    at.number_input(key="explain_lime_n").set_value(60).run()
    at.number_input(key="explain_lime_seeds").set_value(lime_seeds).run()
    at.number_input(key="explain_shap_n").set_value(10).run()
    at.button(key=button).click().run()
    _no_exceptions(at)
    assert not at.error, [e.value for e in at.error]


def test_explain_one_window(demo_assets):
    at = _app("pages/6_Explain.py")
    _no_exceptions(at)
    _explain_with_few_samples(at)
    # image overlays, TF bars, layer sums, deletion curves, agreement heatmap
    assert _chart_count(at) == 5
    faith = at.dataframe[-1].value
    assert set(faith["method"]) == {"lrp", "lime", "shap", "random"}
    # every model: areas where removing every feature moves the prediction enough, else a
    # note and none (the shipped demo CARL's first window moves by 0.10, its Multimodal-RUL's
    # by 0.003)
    for model in at.selectbox(key="explain_model").options:
        at.selectbox(key="explain_model").set_value(model).run()
        at.button(key="explain_go").click().run()
        comp = at.session_state["explain_result"][1].comparison
        # the demo models are Multimodal-RUL and CARL: epsilon, the set that tracked them
        assert comp.details["lrp"].rules == "epsilon", model
        faith = at.dataframe[-1].value
        # the deletion chart plots raw predictions, from f(x) down the removal path
        assert comp.curves["lrp"]["deletion_pred"][0] == pytest.approx(comp.prediction,
                                                                        abs=1e-5)
        notes = [i.value for i in at.info if "moves the prediction by only" in i.value]
        assert len(notes) == (0 if comp.conditioned else 1), model
        assert faith["deletion_auc"].isna().all() == (not comp.conditioned), model


def test_explain_page_warms_its_model_up_once_drawn(demo_assets):
    """Once drawn, the Explain page traces what explaining its model runs, in a background
    thread, once per model (rul_core.explain.warm), so the first click does not pay it."""
    from rul_core.explain import warm

    at = _app("pages/6_Explain.py")
    _no_exceptions(at)
    picker = at.selectbox(key="explain_model")
    label = picker.value
    model = at.session_state["models"][label].models[0]
    assert model in warm._MODELS and warm.wait_warm_up(model, timeout=120)
    rules = at.selectbox(key="explain_rules_epsilon").value
    assert not warm.start_warm_up(model, rules)  # done for this model: not again
    for other in picker.options:  # each model picked gets its own
        at.selectbox(key="explain_model").set_value(other).run()
        _no_exceptions(at)
        assert at.session_state["models"][other].models[0] in warm._MODELS


def test_explain_global_importance_over_windows(demo_assets):
    at = _app("pages/6_Explain.py")
    at.number_input(key="explain_global_n").set_value(2).run()
    _explain_with_few_samples(at, button="explain_global", lime_seeds=1)
    assert "explain_result" not in at.session_state  # no window explained first
    glob = at.session_state["explain_global_result"][1]
    assert len(glob.windows) == 2
    faith = at.dataframe[-1].value
    assert list(faith["method"]) == ["lrp", "lime", "shap", "random"]
    assert (faith["windows"] == glob.n_conditioned).all()
    said = " ".join(c.value for c in at.caption)
    assert ("Most faithful" in said) == (glob.n_conditioned > 0)
    assert "changed since" not in said
    at.number_input(key="explain_global_n").set_value(3).run()  # not recomputed: marked stale
    assert any("Showing the last global importance" in c.value for c in at.caption)


def test_explain_an_rc_lstm_window_per_signal_segment(demo_assets):
    """RC-LSTM reads the filtered signal: every method attributes segments of its input."""
    from rul_core.data import load_dataset
    from rul_core.models import ModelConfig
    from rul_core.training import train

    runs = load_dataset(demo_assets / "data", layout="femto").runs
    config = ModelConfig("rc_lstm", dataset_kind="femto", hparams=dict(TINY_RC_LSTM))
    trained = train(config, runs[:1], epochs=1)
    at = _app("pages/6_Explain.py")
    at.session_state["models"]["tiny rc_lstm"] = trained
    at.run()
    at.selectbox(key="explain_model").set_value("tiny rc_lstm").run()
    at.number_input(key="explain_bands").set_value(10).run()
    _explain_with_few_samples(at)
    comp = at.session_state["explain_result"][1].comparison
    assert comp.modality == ["signal"] * 10
    assert comp.details["lrp"].rules == "conservative"  # the paper's rules drop earlier steps
    assert set(comp.normalised) == {"lrp", "lime", "shap"}
    # signal overlay, segment bars, layer sums, deletion curves, agreement heatmap (no ImR)
    assert _chart_count(at) == 5
    view = at.session_state["explain_result"][1].signal
    assert view.steps == trained.config.resolved()["timesteps"] and len(view.edges) == 11


def test_report_exports_a_figure(demo_assets):
    at = _app("pages/1_Data.py")  # registers figures in this session
    at.switch_page("pages/7_Report.py").run()
    _no_exceptions(at)
    keys = at.session_state["figure_registry"].keys()
    assert "Data/raw" in keys
    at.selectbox(key="report_engine").set_value("matplotlib").run()
    at.button(key="report_render").click().run()
    _no_exceptions(at)
    _, fmt, scale, data, used = at.session_state["report_rendered"]
    assert (fmt, scale, used) == ("png", 1, "matplotlib")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at.select_slider(key="report_scale").set_value(2).run()  # for print: twice the pixels
    at.button(key="report_render").click().run()
    _no_exceptions(at)
    from PIL import Image

    one, two = Image.open(io.BytesIO(data)), Image.open(
        io.BytesIO(at.session_state["report_rendered"][3]))
    assert two.size == (2 * one.size[0], 2 * one.size[1])
    one_figure = [v for v in at.multiselect(key="report_items").value if "(table)" not in v][:1]
    at.multiselect(key="report_items").set_value(one_figure).run()
    at.button(key="report_zip").click().run()
    _no_exceptions(at)
    names = zipfile.ZipFile(io.BytesIO(at.session_state["report_zip_blob"][1])).namelist()
    assert "report.html" in names and any(n.endswith(".png") for n in names)
    reports = ui_state.workspace_dir() / "reports"
    before = set(reports.glob("*.zip"))
    for _ in range(2):  # a second save keeps the first
        at.button(key="report_save").click().run()
        _no_exceptions(at)
    saved = set(reports.glob("*.zip")) - before
    assert len(saved) == 2 and all(p.read_bytes()[:2] == b"PK" for p in saved)
    at.text_input(key="report_title").set_value("Another title").run()
    assert any("changed since the ZIP was built" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key == "report_save"]


def test_report_remembers_removed_items_across_pages(demo_assets):
    """Leaving the Report page dropped the figure choice, so items the user had removed came
    back on return; now removals are kept and figures viewed since join the choice."""
    at = _app("pages/1_Data.py")
    at.switch_page("pages/7_Report.py").run()
    _no_exceptions(at)
    pick = at.multiselect(key="report_items")
    removed = [v for v in pick.value if "(table)" in v]
    assert removed
    pick.set_value([v for v in pick.value if v not in removed]).run()
    before = set(at.multiselect(key="report_items").options)
    at.switch_page("pages/2_Representations.py").run()
    _no_exceptions(at)
    at.switch_page("pages/7_Report.py").run()
    _no_exceptions(at)
    pick = at.multiselect(key="report_items")
    new = set(pick.options) - before
    assert new and new <= set(pick.value)  # figures viewed since are included
    assert not set(removed) & set(pick.value)  # the removal survived the visit
    assert any(f"{len(pick.value)} of {len(pick.options)} items included" in c.value
               for c in at.caption)


def test_report_keeps_items_that_share_a_title(demo_assets):
    """The current and a past cross-validation on the Train page register figures and tables
    with the same title; the Report page keyed its choices by page and title, so all but one
    of them vanished from the report, and 'One figure' could only ever render the first."""
    import numpy as np

    from rul_core import plots, report

    at = _app()
    reg = report.FigureRegistry()
    for key in ("cv", "cv-past"):
        fig = plots.trends_figure(np.arange(3), {key: np.arange(3.0)},
                                  "Bearing1_1: out-of-fold prediction (fold 0)", "RUL")
        reg.add_figure(f"Train/{key}-rul-Bearing1_1", fig, page="Train")
    at.session_state["figure_registry"] = reg
    at.switch_page("pages/7_Report.py").run()
    _no_exceptions(at)
    assert len(at.multiselect(key="report_items").value) == 2
    one = at.selectbox(key="report_one")
    assert len(one.options) == 2
    one.set_value(one.options[1]).run()
    at.selectbox(key="report_engine").set_value("matplotlib").run()
    at.button(key="report_render").click().run()
    _no_exceptions(at)
    assert at.session_state["report_rendered"][0] == "Train/cv-past-rul-Bearing1_1"


def test_window_slider_survives_switching_to_a_shorter_run(demo_assets, tmp_path):
    from rul_core.data.synthetic import write_dataset

    short = write_dataset(tmp_path / "short", "femto", n_bearings=1, n_snapshots=2, seed=3)
    at = _app("pages/2_Representations.py")
    at.slider(key="repr_window").set_value(20).run()
    at.session_state["dataset_source"] = {"path": str(short), "layout": None, "label": "short"}
    at.run()
    _no_exceptions(at)
    assert at.slider(key="repr_window").value == 7  # clamped to the last of 2 x 4 windows


# ----------------------------------------------------------------------------- page switches


def test_train_settings_survive_a_visit_to_another_page(demo_assets):
    """Streamlit drops a widget's value when a run does not draw it: the Train page's settings
    and the Data page's label schemes must be there again after a visit to another page."""
    at = _app("pages/3_Train.py")
    at.number_input(key="train_epochs").set_value(7).run()
    at.number_input(key="train_seed").set_value(42).run()
    at.selectbox(key="train_scheme").set_value("capped").run()
    at.number_input(key="train_cap_min").set_value(2.0).run()
    at.multiselect(key="train_runs").set_value(["Bearing1_2", "Bearing2_1"]).run()
    at.multiselect(key="val_runs").set_value(["Bearing1_3"]).run()
    at.switch_page("pages/1_Data.py").run()
    _no_exceptions(at)
    at.multiselect(key="data_schemes").set_value(["linear"]).run()
    at.switch_page("pages/3_Train.py").run()
    _no_exceptions(at)
    assert at.number_input(key="train_epochs").value == 7
    assert at.number_input(key="train_seed").value == 42
    assert at.selectbox(key="train_scheme").value == "capped"
    assert at.number_input(key="train_cap_min").value == 2.0
    assert at.multiselect(key="train_runs").value == ["Bearing1_2", "Bearing2_1"]
    assert at.multiselect(key="val_runs").value == ["Bearing1_3"]
    at.switch_page("pages/1_Data.py").run()
    _no_exceptions(at)
    assert at.multiselect(key="data_schemes").value == ["linear"]


def test_noise_lab_and_explain_start_on_the_representations_window(demo_assets, tmp_path):
    from rul_core.data.synthetic import write_dataset

    at = _app("pages/2_Representations.py")
    at.slider(key="repr_window").set_value(7).run()
    at.switch_page("pages/5_Noise_lab.py").run()
    _no_exceptions(at)
    assert at.number_input(key="noise_window").value == 7
    at.number_input(key="noise_window").set_value(9).run()  # shared with the other pages
    at.switch_page("pages/6_Explain.py").run()
    _no_exceptions(at)
    assert at.slider(key="explain_window").value == 9
    at.switch_page("pages/2_Representations.py").run()
    assert at.slider(key="repr_window").value == 9
    # a shorter run since: the window is clamped to its last one (2 snapshots x 4 windows)
    at.slider(key="repr_window").set_value(20).run()
    short = write_dataset(tmp_path / "short", "femto", n_bearings=1, n_snapshots=2, seed=3)
    at.session_state["dataset_source"] = {"path": str(short), "layout": None, "label": "short"}
    at.switch_page("pages/5_Noise_lab.py").run()
    _no_exceptions(at)
    assert at.number_input(key="noise_window").value == 7


def test_kept_selections_follow_a_change_of_dataset(demo_assets, tmp_path):
    """Kept values that the new dataset no longer offers are dropped before the widgets are
    drawn: the page never raises, keeps what is still offered, falls back to its defaults."""
    from rul_core.data.synthetic import write_dataset

    at = _app("pages/3_Train.py")
    at.multiselect(key="train_runs").set_value(["Bearing1_2", "Bearing2_1"]).run()
    at.multiselect(key="val_runs").set_value(["Bearing1_3"]).run()
    at.switch_page("pages/1_Data.py").run()
    at.slider(key="data_snapshot").set_value(5).run()
    short = write_dataset(tmp_path / "short", "femto", n_bearings=2, n_snapshots=2, seed=3)
    at.radio(key="data_source").set_value("Server path").run()
    at.text_input(key="server_path").input(str(short)).run()
    at.button(key="load_path").click().run()
    _no_exceptions(at)
    assert at.slider(key="data_snapshot").value == 1  # the last of 2
    at.switch_page("pages/3_Train.py").run()
    _no_exceptions(at)
    assert at.multiselect(key="train_runs").value == ["Bearing1_2"]  # Bearing2_1 is gone
    assert at.multiselect(key="val_runs").value == ["Bearing1_1"]  # none left: the default
    at.switch_page("pages/1_Data.py").run()
    assert at.text_input(key="server_path").value == str(short)
