"""Screenshots of every app page into docs/screenshots/ (headless Debian Chromium).

    python bench/screenshots.py [--demo assets/demo] [--out docs/screenshots] [--only FILE ...]

Uses the demo assets (built into a temporary folder when --demo has none) and a temporary
workspace, visits every page through the sidebar, triggers the main action of the pages that
need one (Train: the PHM 2012 challenge settings; Explain; the noise sweep), and saves one PNG
per page, then one of a cross-validation's result on the Train page (3b_train_crossval.png).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from app_support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    goto_page,
    streamlit_server,
    wait_for_app,
)

PAGES = ("Data", "Representations", "Train", "Evaluate", "Noise lab", "Explain", "Report")
ACTIONS = {"Train": "PHM 2012 challenge settings", "Explain": "Explain this window",
           "Noise lab": "Run sweep"}
# screenshots whose page continues below the default viewport, by file name: their heights
# (px). Streamlit scrolls inside its main container, so Playwright's full_page does not reach
# below the viewport.
TALL = {"1_data.png": 4000, "5_noise_lab.png": 3350, "3b_train_crossval.png": 3400}


def main(argv: list[str] | None = None) -> int:
    """Take the screenshots; returns 0 on success."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default=str(ROOT / "assets" / "demo"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=2400)
    ap.add_argument("--only", nargs="+", default=None, metavar="FILE",
                    help="retake only these screenshots (file names, e.g. 3b_train_crossval.png)")
    args = ap.parse_args(argv)
    wanted = set(args.only) if args.only else None
    from playwright.sync_api import sync_playwright

    demo = Path(args.demo)
    tmp = Path(tempfile.mkdtemp(prefix="rul_screens_"))
    if not (demo / "MANIFEST.json").is_file():
        from rul_core.cli.demo_cmd import build_demo

        demo = tmp / "demo"
        build_demo(demo)
    env = {"RUL_WORKSPACE": str(tmp / "workspace"), "RUL_DEMO_DIR": str(demo.resolve())}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with streamlit_server(env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(url, wait_until="domcontentloaded")
        wait_for_app(page)
        if wanted is None or "0_home.png" in wanted:
            page.screenshot(path=str(out / "0_home.png"))
        for n, title in enumerate(PAGES, 1):
            name = f"{n}_{title.lower().replace(' ', '_')}.png"
            if wanted is not None and name not in wanted:
                continue
            goto_page(page, title)
            if title == "Explain" and page.get_by_text("demo multimodal").count() == 0:
                try:  # show the image overlays: pick the multimodal demo model
                    page.locator('[data-testid="stSelectbox"]').first.click()
                    page.get_by_role("option", name="demo multimodal").click(timeout=5000)
                    wait_for_app(page)
                except Exception as exc:  # keep going with the default model
                    print(f"could not select the multimodal model: {exc}")
            if title in ACTIONS:
                page.get_by_role("button", name=ACTIONS[title]).click()
                wait_for_app(page, timeout_ms=300_000)
            _screenshot(page, out / name, TALL.get(name))
        if wanted is None or "3b_train_crossval.png" in wanted:
            goto_page(page, "Train")
            cross_validate_demo(page)
            _screenshot(page, out / "3b_train_crossval.png", TALL["3b_train_crossval.png"])
        browser.close()
    return 0


def _screenshot(page: object, path: Path, height: int | None = None) -> None:
    """Scroll to the top, let plotly finish drawing, save a PNG (``height`` px tall, the
    viewport's height restored afterwards)."""
    size = page.viewport_size
    if height:
        page.set_viewport_size({"width": size["width"], "height": height})
    page.mouse.move(700, 5)
    page.evaluate("() => { const m = document.querySelector("
                  "'[data-testid=\"stMain\"]'); if (m) m.scrollTo(0, 0); "
                  "window.scrollTo(0, 0); }")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path))
    if height:
        page.set_viewport_size(size)
    print(f"saved {path}")


def cross_validate_demo(page: object) -> None:
    """Train page: leave-one-bearing-out of a quick CARL (the preset's 10 epochs) over the demo
    bearings, waiting for its result (each fold trains in its own process: a few minutes)."""
    page.get_by_text("Cross-validate over bearings").click()
    wait_for_app(page)
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="CARLE").click()
    wait_for_app(page)
    page.locator('[data-testid="stSelectbox"]').nth(1).click()
    page.get_by_role("option", name="carl", exact=True).click()
    wait_for_app(page)
    page.get_by_role("button", name="Start cross-validation").click()
    # .first: the "Past cross-validations" tab (hidden) shows the same saved result
    page.get_by_text("saved to").first.wait_for(timeout=600_000)
    wait_for_app(page)


if __name__ == "__main__":
    raise SystemExit(main())
