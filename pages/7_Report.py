"""Report: pick figures and tables of this session, export PNG/SVG/PDF and a self-contained
HTML."""

from __future__ import annotations

import streamlit as st

from rul_core import app_ui, report, ui_state

PAGE = "Report"
app_ui.header(PAGE)

reg = app_ui.registry()
items = reg.items()
if not items:
    st.info("No figures yet: every chart you view on the other pages is collected here.")
    st.stop()

labels = ui_state.report_labels(items)
EXCLUDED = "report_excluded"  # registry keys the user removed; survives other pages' visits


def _remember_removals() -> None:
    st.session_state[EXCLUDED] = ui_state.report_exclusions(
        labels, st.session_state["report_items"], st.session_state.get(EXCLUDED, ()))


chosen = st.multiselect(
    "Figures and tables to include", list(labels),
    default=ui_state.report_default_choice(labels, st.session_state.get(EXCLUDED, ())),
    key="report_items", on_change=_remember_removals,
    help="Every chart and table you view on the other pages is collected here; figures you "
         "view later join the choice, the ones you remove stay out.")
st.caption(f"{len(chosen)} of {len(labels)} item{'' if len(labels) == 1 else 's'} included.")
selected = [reg.get(labels[c]) for c in chosen]
title = st.text_input("Report title", "Bearing RUL workbench report", key="report_title")

c1, c2, c3 = st.columns(3)
engine_choice = c1.selectbox(
    "Static renderer", ("auto", "kaleido", "matplotlib"), key="report_engine",
    help="Kaleido draws exactly what you see, using the local Chromium "
         f"({report.browser_path() or 'not found'}); matplotlib needs no browser.")
formats = c2.multiselect("Static formats", report.FORMATS, default=["png"], key="report_formats")
scale = c3.select_slider("PNG scale", (1, 2, 3, 4), value=1, key="report_scale",
                         help="Multiplies a PNG's pixels (2: about 200 dpi at the page size, for "
                              "print). SVG and PDF are vector formats and do not need it.")

st.subheader("One figure")
figs = [i for i in selected if i.figure is not None]
if figs:
    titles = {i.key: i.title for i in figs}
    one = st.selectbox("Figure", list(titles), key="report_one",
                       format_func=lambda k: titles[k] if list(titles.values()).count(
                           titles[k]) == 1 else f"{titles[k]} [{k}]")
    item = reg.get(one)
    fmt = st.radio("Format", report.FORMATS, horizontal=True, key="report_one_fmt")
    if st.button("Render", key="report_render"):
        with st.spinner("Rendering…"):
            try:
                data, used = report.export_figure(item.figure, fmt, engine_choice, scale)
            except Exception as exc:
                app_ui.show_error(exc, "export")
            else:
                st.session_state["report_rendered"] = (item.key, fmt, scale, data, used)
    rendered = st.session_state.get("report_rendered")
    if rendered and rendered[:3] == (item.key, fmt, scale):
        _, fmt_r, _, data, used = rendered
        st.success(f"Rendered {len(data) / 1024:.0f} KiB with {used}.")
        if fmt_r == "png":
            st.image(data)
        st.download_button(f"Download {fmt_r.upper()}", data, file_name=f"{item.key}.{fmt_r}"
                           .replace("/", "_"), mime=report.MIME_TYPES[fmt_r],
                           key="report_dl_one")

st.subheader("Whole report")
html_doc = report.html_report(selected, title)
st.download_button("Download HTML report (self-contained, works offline)", html_doc,
                   file_name="rul_report.html", mime="text/html", key="report_dl_html")
zip_inputs = (tuple(chosen), tuple(formats), engine_choice, title, scale)
if st.button("Build ZIP (figures in the chosen formats, tables as CSV, HTML)", key="report_zip"):
    with st.spinner("Exporting…"):
        try:
            blob, used, failed = report.export_zip(selected, formats, engine_choice,
                                                   title=title, scale=scale)
        except Exception as exc:
            app_ui.show_error(exc, "export")
        else:
            st.session_state["report_zip_blob"] = (zip_inputs, blob, used, failed)
built = st.session_state.get("report_zip_blob")
if built and built[0] != zip_inputs:
    st.caption("The selection, formats or title changed since the ZIP was built: build it again.")
elif built:
    _, blob, used, failed = built
    st.caption(f"ZIP ready: {len(blob) / 1e6:.2f} MB, static figures by {used}.")
    if failed:
        st.warning(f"{len(failed)} figure file(s) could not be exported and are missing from "
                   "the ZIP (listed in its export_errors.txt):\n\n"
                   + "\n".join(f"- {line}" for line in failed))
    st.download_button("Download ZIP", blob, file_name="rul_report.zip",
                       mime="application/zip", key="report_dl_zip")
    if st.button("Also save it in the workspace", key="report_save"):
        path = app_ui.guarded(report.save_report, ui_state.workspace_dir() / "reports",
                              blob, title, context="save report")
        if path is not None:
            st.success(f"Saved {path} (earlier reports are kept).")
