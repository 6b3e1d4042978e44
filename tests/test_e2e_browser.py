"""End to end in a real headless Chromium: upload a FEMTO-layout archive, open
Representations and Explain, and check the plots render; train a model in the real server.
Screenshots go to tests/artifacts/."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from app_support import (
    APP_ROOT,
    CHROMIUM,
    CHROMIUM_ARGS,
    build_assets,
    goto_page,
    streamlit_server,
    use_workspace,
    wait_for_app,
)

pytestmark = pytest.mark.e2e
ARTIFACTS = APP_ROOT / "tests" / "artifacts"
PLOT = ".js-plotly-plot"

if not Path(CHROMIUM).is_file():
    pytest.skip(f"{CHROMIUM} missing: run `make chromium` (apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@contextmanager
def app_page(env: dict[str, str]) -> Iterator[object]:
    """A Chromium page on the app's home page, served by a real ``streamlit run`` with ``env``."""
    with streamlit_server(env) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # what an offline analyst's browser would miss, and what the page complains about
            page.outside_requests = []
            page.console_errors = []
            page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:"))
                    else page.outside_requests.append(r.url))
            page.on("console", lambda m: page.console_errors.append(m.text)
                    if m.type == "error" else None)
            page.goto(url, wait_until="domcontentloaded")
            wait_for_app(page)
            yield page
        finally:
            browser.close()


def _femto_zip(tmp: Path) -> Path:
    """A small FEMTO-layout archive: Learning_set/Bearing1_1 and Bearing1_2, 4 snapshots."""
    from rul_core.data.synthetic import write_dataset

    src = write_dataset(tmp / "femto", "femto", n_bearings=2, n_snapshots=4, seed=7)
    out = tmp / "femto_upload.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(src.rglob("*.csv")):
            zf.write(f, f.relative_to(src).as_posix())
    return out


def test_upload_archive_then_representations_and_explain(tmp_path):
    env = use_workspace(build_assets(with_model=True))
    archive = _femto_zip(tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with app_page(env) as page:
        assert page.locator("h1", has_text="Bearing RUL workbench").is_visible()

        goto_page(page, "Data")
        page.get_by_text("Upload", exact=True).click()
        wait_for_app(page)
        page.get_by_text("Files or an archive", exact=True).click()
        wait_for_app(page)
        page.locator("input[type=file]").first.set_input_files(str(archive))
        page.get_by_role("button", name="Load the upload").click(timeout=30_000)
        wait_for_app(page)
        main = page.get_by_test_id("stMainBlockContainer")
        main.get_by_text("Dataset: upload").wait_for(timeout=60_000)
        # the sidebar, drawn before the button loaded the upload, already names it
        assert page.get_by_test_id("stSidebar").get_by_text("Dataset: upload").is_visible()
        metrics = page.get_by_test_id("stMetricValue").all_inner_texts()
        assert metrics[:2] == ["femto", "2"]  # layout and run count of the upload
        page.screenshot(path=str(ARTIFACTS / "e2e_data.png"), full_page=True)

        goto_page(page, "Representations")
        page.locator(PLOT).nth(4).wait_for(timeout=60_000)
        assert page.locator(PLOT).count() == 5
        assert page.locator(".js-plotly-plot .heatmaplayer").count() >= 2  # ImR, scalogram
        page.screenshot(path=str(ARTIFACTS / "e2e_representations.png"), full_page=True)

        goto_page(page, "Explain")
        page.get_by_text("Settings", exact=True).click()
        for label, value in (("LIME samples", "60"), ("LIME seeds", "2"),
                             ("SHAP samples", "10")):
            box = page.get_by_label(label, exact=True)
            box.fill(value)
            box.press("Enter")
            wait_for_app(page)
        page.get_by_role("button", name="Explain this window").click()
        wait_for_app(page, timeout_ms=180_000)
        page.locator(PLOT).nth(3).wait_for(timeout=60_000)
        assert page.locator(PLOT).count() >= 4
        assert page.get_by_text("LRP", exact=True).first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "e2e_explain.png"), full_page=True)
        # settings survive a visit to another page (Streamlit drops an undrawn widget's value)
        goto_page(page, "Data")
        goto_page(page, "Explain")
        page.get_by_text("Settings", exact=True).click()
        assert page.get_by_label("LIME samples", exact=True).input_value() == "60"
        assert page.get_by_label("SHAP samples", exact=True).input_value() == "10"
        # nothing fetched from the internet (the page icon was a web-font glyph from
        # fonts.gstatic.com), no console errors (WebGL traces ran out of browser contexts)
        assert page.outside_requests == []
        assert page.console_errors == []
    assert (ARTIFACTS / "e2e_explain.png").stat().st_size > 10_000
    shutil.rmtree(tmp_path / "femto", ignore_errors=True)


def test_train_in_the_real_server_child_process():
    """The Train page's child-process training inside a real ``streamlit run`` server (whose
    ``__main__`` is Streamlit's, not a test's): a CARLE trains one epoch on the demo data and
    becomes the session's model."""
    env = use_workspace(build_assets(with_model=True))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with app_page(env) as page:
        goto_page(page, "Train")
        page.get_by_test_id("stSelectbox").filter(has_text="Model").first.click()
        page.get_by_role("option", name="CARLE", exact=True).click()
        wait_for_app(page)
        epochs = page.get_by_label("Epochs", exact=True)
        epochs.fill("1")
        epochs.press("Enter")
        wait_for_app(page)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Trained carle/full").wait_for(timeout=240_000)
        page.get_by_text("Model: carle/full").wait_for(timeout=30_000)  # the sidebar
        page.screenshot(path=str(ARTIFACTS / "e2e_train.png"), full_page=True)
