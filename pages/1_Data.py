"""Data: load bearing runs and inspect them (signals, trends over life, labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from rul_core import app_ui, plots, ui_state
from rul_core.data import is_problem

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
