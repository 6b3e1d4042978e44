"""Data: load bearing runs and inspect them (signals, trends over life, labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from rul_core import app_ui, plots, ui_state
from rul_core.data import is_problem
from rul_core.signal import kurtogram, spectrum

PAGE = "Data"
app_ui.header(PAGE)

# ----------------------------------------------------------------------------- choose a source
SOURCES = ("Demo", "Upload", "Server path", "Catalogued")
source = st.radio("Source", SOURCES, horizontal=True, key="data_source")

if source == "Demo":
    demo = ui_state.demo_data_path()
    if demo is None:
        st.warning(f"No demo dataset in `{ui_state.demo_dir()}`; run `make demo-assets`.")
    elif st.button("Use the demo dataset", key="use_demo"):
        app_ui.set_dataset(demo, "demo (synthetic FEMTO layout)")

elif source == "Upload":
    mode = st.radio("Upload", ("A folder", "Files or an archive"), horizontal=True,
                    key="upload_mode")
    if mode == "A folder":
        files = st.file_uploader("Folder of a dataset (any supported layout)",
                                 accept_multiple_files="directory", key="upload_dir")
    else:
        files = st.file_uploader(
            "Snapshot files (CSV/TXT/TSV, Parquet, NPY; plus run.json for generic runs) or one "
            "archive (.zip, .tar.gz)", accept_multiple_files=True, key="upload_files")
    sub = st.text_input("Put loose files into this run folder (optional, e.g. Bearing1_1)",
                        key="upload_subfolder")
    if files and st.button("Load the upload", key="load_upload"):
        prefix = sub.strip().strip("/")
        items = [(f"{prefix}/{f.name}" if prefix else f.name, f.getvalue()) for f in files]
        path = app_ui.guarded(ui_state.save_uploads, items, context="could not store the upload")
        if path is not None:
            app_ui.set_dataset(path, f"upload {Path(path).name} ({len(items)} files)")

elif source == "Server path":
    path_text = st.text_input("Folder or archive on the server (for data too big to upload)",
                              key="server_path")
    layout = st.selectbox("Layout", ("auto", "femto", "xjtu", "generic"), key="server_layout")
    if path_text and st.button("Load path", key="load_path"):
        p = Path(path_text).expanduser()
        if not p.exists():
            st.error(f"{p}: no such file or folder on the server")
        else:
            app_ui.set_dataset(p, str(p), None if layout == "auto" else layout)

else:
    catalog = ui_state.catalogued_paths()
    ws = app_ui.optional("rul_core.workspace", "Workspace")
    if ws is not None:
        try:
            for row in ws().list_datasets():
                catalog.setdefault(str(row.get("name")), Path(str(row.get("path"))))
        except Exception as exc:
            app_ui.show_error(exc, "workspace catalog")
    if not catalog:
        st.info("No catalogued datasets on this machine.")
    else:
        app_ui.keep_valid("catalog_pick", list(catalog))
        label = st.selectbox("Dataset", list(catalog), key="catalog_pick")
        if st.button("Load dataset", key="load_catalog"):
            app_ui.set_dataset(catalog[label], label)

# ----------------------------------------------------------------------------- dataset summary
dataset = app_ui.current_dataset()
if dataset is None:
    st.info("Choose a dataset above.")
    st.stop()

st.subheader(f"Dataset: {st.session_state['dataset_source']['label']}")
c1, c2, c3 = st.columns(3)
c1.metric("Layout", dataset.layout or "?")
c2.metric("Runs", len(dataset.runs))
c3.metric("Snapshots", sum(r.n_snapshots for r in dataset.runs))

rows = [
    {
        "run": r.name,
        "condition": r.condition.label,
        "rpm": r.condition.rpm,
        "load (N)": r.condition.load_n,
        "snapshots": r.n_snapshots,
        "samples/snapshot": r.n_samples,
        "rate (Hz)": r.fs,
        "channels": ", ".join(r.channel_names),
    }
    for r in dataset.runs
]
runs_df = pd.DataFrame(rows)
app_ui.show_table(runs_df, "runs", "Runs of the dataset", PAGE)

report = dataset.report
st.caption(f"Loader report: {report.summary()}")
problems = [s for s in report.skipped if is_problem(s)]
left_out = [s for s in report.skipped if not is_problem(s)]
if problems:
    with st.expander(f"Skipped: {len(problems)} files with problems", expanded=True):
        st.dataframe(pd.DataFrame([{"file": s.path, "reason": s.reason} for s in problems]),
                     hide_index=True)
if left_out:
    with st.expander(f"Not read by choice: {len(left_out)} files (e.g. temperature, stray files)"):
        st.dataframe(pd.DataFrame([{"file": s.path, "reason": s.reason} for s in left_out]),
                     hide_index=True)
for w in report.warnings:
    st.warning(w)

# ----------------------------------------------------------------------------- one run
st.subheader("Run")
run = app_ui.pick_run(dataset, key="data_run")
snap = app_ui.index_slider("Snapshot", run.n_snapshots, key="data_snapshot")
full = st.toggle("Full resolution (slower for long snapshots)", value=False, key="data_full")
fig = plots.raw_signal_figure(run.snapshots[snap], run.fs, run.channel_names,
                              title=f"{run.name}: snapshot {snap}",
                              max_points=None if full else 4000)
app_ui.show_figure(fig, "raw", PAGE)

# ----------------------------------------------------------------------------- spectrum
st.subheader("Spectrum")
st.caption(f"Of snapshot {snap} (the slider above) and, below, over the whole life. Envelope "
           "spectrum: band-pass around a resonance, Hilbert envelope, spectrum of the envelope; "
           "a fault's impacts show as lines at its characteristic frequency.")
c1, c2, c3 = st.columns(3)
app_ui.keep_valid("spec_channel", run.channel_names)
channel = run.channel_names.index(c1.selectbox("Channel", run.channel_names, key="spec_channel"))
kind = c2.radio("Spectrum", spectrum.KINDS, horizontal=True, key="spec_kind",
                format_func=str.capitalize)
nyquist = run.fs / 2.0
app_ui.clamp_state(f"spec_max_hz_{kind}", nyquist)  # one per kind: their defaults differ
max_hz = c3.number_input("Max frequency (Hz)", 1.0, nyquist,
                         spectrum.default_max_hz(kind, run.fs), key=f"spec_max_hz_{kind}")
band = None
if kind == spectrum.ENVELOPE:
    lo_default, hi_default = spectrum.default_band(run.fs)
    b1, b2, b3 = st.columns(3)
    band_help = (f"Zero-phase Butterworth band-pass (order 4) before the envelope. Default: "
                 f"{spectrum.DEFAULT_BAND_HZ[0]:g}–{spectrum.DEFAULT_BAND_HZ[1]:g} Hz, where "
                 "bearing housings ring, clamped to this run's sampling rate (upper edge at "
                 "most 80 % of Nyquist). Put the band around the resonance the impacts excite "
                 "(a hump in the amplitude spectrum that grows over life); the upper edge must "
                 f"stay below Nyquist, {nyquist:g} Hz.")
    if b1.toggle("Band-pass first", value=True, key="spec_bandpass", help=band_help):
        for k in ("spec_band_lo", "spec_band_hi"):
            app_ui.clamp_state(k, nyquist)
        band = (b2.number_input("Band low (Hz)", 0.0, nyquist, lo_default, key="spec_band_lo",
                                help=band_help),
                b3.number_input("Band high (Hz)", 0.0, nyquist, hi_default, key="spec_band_hi",
                                help=band_help))
    late = tuple(int(i) for i in kurtogram.late_snapshots(run.n_snapshots))
    kg_sources = {"shown": f"snapshot {snap} (the slider)",
                  "late": f"the last {len(late)} snapshots (mean of their kurtograms)"}
    k1, k2 = st.columns([1, 2])
    kg_of = k2.radio("Kurtogram of", tuple(kg_sources), key="spec_kurtogram_of",
                     horizontal=True, format_func=kg_sources.get,
                     help="A healthy snapshot has no impacts to find: move the slider to a late "
                          "snapshot, or average the kurtograms of the last ones (the band that "
                          "stays impulsive as the bearing wears).")
    k1.button("Suggest a band (kurtogram)", key="spec_kurtogram_go",
              on_click=app_ui.suggest_kurtogram_band,
              args=(run, (snap,) if kg_of == "shown" else late, channel),
              help="Fast kurtogram (Antoni 2007): the kurtosis of the complex envelope in every "
                   "band of a 1/3-binary filter bank; the band where it is largest, where the "
                   "impacts stand out of the noise, fills the band inputs.")
    app_ui.show_kurtogram_pick(run, channel, float(max_hz), PAGE)

g1, g2, g3 = st.columns(3)
presets = [spectrum.SHAFT_ONLY, *spectrum.GEOMETRY_PRESETS, spectrum.CUSTOM]
dataset_path = st.session_state["dataset_source"]["path"]
default_geometry, geometry_reason = ui_state.default_geometry(run.layout, dataset_path)
app_ui.reset_on_change("spec_geometry", dataset_path)
app_ui.keep_valid("spec_geometry", presets)
choice = g1.selectbox(
    "Bearing geometry", presets, index=presets.index(default_geometry), key="spec_geometry",
    help="Marks FTF, BPFO, BPFI and BSF. Presets only where a publication gives the numbers "
         "(XJTU-SY's LDK UER204, which the demo's synthetic bearings use too); the "
         "PRONOSTIA/FEMTO documentation gives none, so FEMTO and generic runs start with the "
         "shaft harmonics only: choose Custom and enter yours. Another dataset starts again "
         "from its own default.")
rpm = g2.number_input("Shaft speed (rpm)", 0.0, 1e6, float(run.condition.rpm),
                      key=f"spec_rpm_{run.name}",
                      help="From the run's operating condition; type it when the run has none.")
harmonics = int(g3.number_input("Harmonics", 1, 10, 3, key="spec_harmonics",
                                help="Lines at 1×, 2×, … of each frequency."))
geometry = None
if choice in spectrum.GEOMETRY_PRESETS:
    preset = spectrum.GEOMETRY_PRESETS[choice]
    geometry = preset.geometry
    why = f" ({geometry_reason})" if choice == default_geometry and geometry_reason else ""
    st.caption(f"{choice}{why}: {geometry.n_balls} balls of {geometry.ball_diameter_mm:g} mm on "
               f"a {geometry.pitch_diameter_mm:g} mm pitch circle, contact angle "
               f"{geometry.contact_angle_deg:g}°. Source: {preset.source}.")
elif choice == spectrum.CUSTOM:
    n1, n2, n3, n4 = st.columns(4)
    entered = (n1.number_input("Rolling elements", 1, 100, None, key="spec_balls"),
               n2.number_input("Ball diameter d (mm)", 0.0, 1e4, None, key="spec_ball_mm"),
               n3.number_input("Pitch diameter D (mm)", 0.0, 1e4, None, key="spec_pitch_mm"),
               n4.number_input("Contact angle (°)", 0.0, 89.9, 0.0, key="spec_angle"))
    if any(v is None for v in entered):
        st.info("Enter the element count and both diameters to mark FTF, BPFO, BPFI and BSF.")
    else:
        geometry = app_ui.guarded(spectrum.BearingGeometry, *entered, context="bearing geometry")
if rpm <= 0:
    st.info("Enter the shaft speed to mark the characteristic frequencies.")
shaft_hz = rpm / 60.0
settings = app_ui.guarded(spectrum.SpectrumSettings, kind, band, float(max_hz),
                          context="spectrum settings")
markers = spectrum.fault_markers(shaft_hz, geometry, harmonics, max_hz) if rpm > 0 else []
spec = None if settings is None else app_ui.guarded(
    app_ui.snapshot_spectrum, app_ui.run_key(run), snap, channel, repr(settings), run, settings,
    context="spectrum")
if spec is not None:
    what = "Envelope spectrum" if kind == spectrum.ENVELOPE else "Amplitude spectrum"
    band_text = f", band {band[0]:g}–{band[1]:g} Hz" if band else ""
    fig = plots.spectrum_figure(
        spec.freqs, spec.values, markers,
        f"{run.name}: {what.lower()} of snapshot {snap}, {run.channel_names[channel]}{band_text}",
        spec.unit)
    app_ui.show_figure(fig, "spectrum", PAGE,
                       caption=f"Hann window, resolution {spec.resolution:.3g} Hz; "
                               f"shaft {shaft_hz:.4g} Hz.")
    freq_rows = [{"frequency": k, "Hz": round(v, 3)}
                 for k, v in spectrum.fault_frequencies(shaft_hz, geometry).items()]
    peaks = pd.DataFrame(spectrum.describe_peaks(spec, markers, 5))
    t1, t2 = st.columns(2)
    with t1:
        app_ui.show_table(pd.DataFrame(freq_rows), "fault-frequencies",
                          f"Characteristic frequencies at {rpm:g} rpm", PAGE)
    with t2:
        app_ui.show_table(peaks.round(4), "spectrum-peaks",
                          "Largest peaks and the nearest characteristic frequency", PAGE)

    d1, d2 = st.columns(2)
    over_life = d1.toggle("Spectrum over life", value=True, key="spec_life",
                          help=f"One row per snapshot, at most {spectrum.DEFAULT_LIFE_ROWS} "
                               "snapshots evenly spaced from the first to the last (failure), "
                               f"at most {spectrum.DEFAULT_LIFE_BINS} frequency columns (each "
                               "the maximum of adjacent bins when there are more).")
    db = d2.toggle("dB (re 1 g)", value=True, key="spec_db")
    if over_life:
        bar = st.progress(0.0, text="Spectrum over life…")
        life = app_ui.guarded(app_ui.life_spectrum, run, channel, settings, db,
                              progress=lambda ev: bar.progress(ev.fraction, text=ev.message),
                              context="spectrum over life")
        bar.empty()
        if life is not None:
            fig = plots.life_spectrum_figure(
                life.freqs, life.snapshots, life.values, markers,
                f"{run.name}: {what.lower()} over life, {run.channel_names[channel]}"
                f"{band_text}", life.unit, marker_row=snap)
            app_ui.show_figure(fig, "spectrum-life", PAGE, caption="; ".join(life.notes))
            if life.notes:
                st.caption("; ".join(life.notes).capitalize() + ".")

stats = app_ui.run_stats(app_ui.run_key(run), run)
x = np.arange(run.n_snapshots)
col_a, col_b = st.columns(2)
with col_a:
    fig = plots.trends_figure(
        x, {c: stats["rms"][:, i] for i, c in enumerate(run.channel_names)},
        f"{run.name}: RMS over life", "RMS (g)", marker_x=snap)
    app_ui.show_figure(fig, "rms", PAGE)
with col_b:
    fig = plots.trends_figure(
        x, {c: stats["kurtosis"][:, i] for i, c in enumerate(run.channel_names)},
        f"{run.name}: kurtosis over life", "kurtosis (Pearson)", marker_x=snap)
    app_ui.show_figure(fig, "kurtosis", PAGE)

schemes = app_ui.label_schemes()
if not schemes:
    app_ui.not_available("Label schemes (rul_core.labels)")
else:
    app_ui.keep_valid("data_schemes", schemes, schemes[:2])
    chosen = st.multiselect("Label schemes", schemes, default=schemes[:2], key="data_schemes")
    curves = {}
    for s in chosen:
        y = app_ui.guarded(app_ui.run_labels, app_ui.run_key(run), s, run, context=f"labels {s}")
        if y is not None:
            curves[s] = np.asarray(y, dtype=float)
    if curves:
        app_ui.show_figure(plots.label_figure(x, curves, f"{run.name}: RUL labels"),
                           "labels", PAGE)
