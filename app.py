"""Bearing RUL workbench: the Streamlit app (`make app` runs `streamlit run app.py`).

This script is the entry point and the Home page; the other pages live in ``pages/``.
"""

from __future__ import annotations

import streamlit as st

from rul_core import ui_state
from rul_core.app_ui import (
    HOME,
    PAGES,
    collect_trained_model,
    keep_keras_state,
    keep_widget_state,
    quiet_repeated_warnings,
    sidebar_status,
    warm_up_keras,
)


def home() -> None:
    """Home: what the workbench is, what each page does, and the demo's status."""
    st.title("Bearing RUL workbench")
    st.markdown(
        "Estimate the **remaining useful life** (RUL) of rolling bearings from vibration "
        "run-to-failure data (PRONOSTIA/FEMTO, XJTU-SY or any machine in a generic layout). "
        "The workbench turns each window of signal into an **ImR line raster** and "
        "**wavelet time-frequency features**, trains the published models "
        "(Multimodal-RUL, CARLE, RC-LSTM) with uncertainty bands, tests their robustness "
        "to noise, and explains their predictions with **LRP, LIME and SHAP** side by side."
    )
    st.subheader("Pages")
    for info in PAGES:
        st.page_link(info.path, label=f"**{info.title}** — {info.description}", icon=info.icon)
    st.subheader("Demo")
    manifest = ui_state.demo_manifest()
    if manifest is None:
        st.warning(
            f"No demo assets in `{ui_state.demo_dir()}`. Build them with `make demo-assets` "
            "(a small synthetic FEMTO-layout dataset and a quick pretrained model)."
        )
    else:
        data = ui_state.demo_data_path(manifest)
        models = ui_state.demo_models(manifest)
        st.success(
            f"Demo dataset: {'ready' if data else 'missing'} · "
            f"demo models: {', '.join(models) if models else 'not built'}."
        )
        st.caption(manifest.get("description", ""))
    st.markdown(
        "**Start here:** open **Data** (the demo loads automatically, or upload your own "
        "bearing), look at a window in **Representations**, check the demo model's RUL curve "
        "in **Evaluate**, then compare explanations in **Explain** and export them from "
        "**Report**."
    )
    if ui_state.catalogued_paths():
        st.caption("Real PRONOSTIA/FEMTO bearings found on this machine: pick them on **Data** → "
                   "*Catalogued* (read in place, never copied).")


st.set_page_config(page_title="Bearing RUL workbench", page_icon="⚙️",  # no web-font fetch
                   layout="wide")
quiet_repeated_warnings()
keep_keras_state()
warm_up_keras()

home_page = st.Page(home, title=HOME.title, icon=HOME.icon, default=True, url_path="home")
pages = [home_page] + [st.Page(p.path, title=p.title, icon=p.icon) for p in PAGES]
nav = st.navigation(pages, position="hidden")

with st.sidebar:
    st.markdown("### Bearing RUL workbench")
    st.page_link(home_page, label=HOME.title, icon=HOME.icon)
    for page, info in zip(pages[1:], PAGES, strict=True):
        st.page_link(page, label=info.title, icon=info.icon, help=info.description)
        st.caption(info.description)
    st.divider()
sidebar_status()  # before the page runs: a fresh slot each run, which the page may rewrite
collect_trained_model()  # a training that ended while another page was open
keep_widget_state()  # the other pages' settings survive this page's run

nav.run()
