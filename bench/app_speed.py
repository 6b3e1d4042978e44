"""How responsive the app is for an analyst: every page, cold and warm, plus one typical
interaction per page, timed in a real headless Chromium against ``streamlit run app.py``.

    python bench/app_speed.py [--demo assets/demo] [--real PATH] [--before FILE.json]
                              [--json bench/results/app_speed.json]
                              [--out bench/results/app_speed.md]

A step's time runs from the click (sidebar link, slider key press, option, button) until
the server has sent the ``script_finished`` message of the run it started (read off the app's
websocket; no further run began within 0.5 s) and the page's known elements are present (its
title; its plotly charts mounted); then a 1 s pause before the next step, as an analyst
would. (Watching the page's ``data-test-script-state`` attribute instead missed fast runs:
the browser can render ``running`` and ``notRunning`` in one frame, and the wait hung.)
*cold*: the first visit of the page in a fresh server (empty caches, first imports); *warm*:
the median of the next ``--repeats`` visits.

``--real PATH`` repeats the pages on a real FEMTO bearing folder (e.g.
``/work/shared/data/real/femto/Learning_set/Bearing3_1``), loaded through the Data page's
*Catalogued* source (``RUL_DATA_PATHS``), read in place. ``--before`` adds the times of an
earlier run (its ``--json``) as a *before* column.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from app_support import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

PAGES = ("Data", "Representations", "Train", "Evaluate", "Noise lab", "Explain", "Report")
STATE = "document.querySelector('[data-testid=\"stApp\"]')"

# True once the page shows its title and charts and the app is not running a script.
READY = f"""([title, charts]) => {{
  if ({STATE}?.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const h1 = document.querySelector('[data-testid="stMain"] h1');
  if (!h1 || !h1.innerText.includes(title)) return false;
  return document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot').length >= charts;
}}"""


def message_kind(payload: bytes | str) -> str | None:
    """The type of a Streamlit websocket message (``new_session`` starts a run,
    ``script_finished`` ends it), None for text frames."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    if isinstance(payload, str):
        return None
    msg = ForwardMsg()
    msg.ParseFromString(payload)
    return msg.WhichOneof("type")


def machine() -> str:
    """CPU model and cores (from /proc/cpuinfo), the cores this process may use, Python."""
    model, logical = "?", 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                logical += 1
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model}, {logical or os.cpu_count()} logical cores ({usable} usable), "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


class Timer:
    """Times steps on one Playwright page; keeps the rows (dataset, page, action, seconds)."""

    def __init__(self, page, dataset: str) -> None:
        self.page = page
        self.dataset = dataset
        self.rows: list[dict] = []
        self.messages: list[tuple[float, str]] = []  # (perf_counter, kind) of run messages
        page.on("websocket", lambda ws: ws.on("framereceived", self._received))

    def _received(self, payload: bytes | str) -> None:
        kind = message_kind(payload)
        if kind in ("new_session", "script_finished"):
            self.messages.append((time.perf_counter(), kind))

    def _seen(self, kind: str, after: float) -> bool:
        return any(t > after and k == kind for t, k in self.messages)

    def step(self, title: str, action: str, do: Callable[[], None], charts: int = 0,
             timeout_s: float = 300.0, keep: bool = True) -> float:
        """Run ``do`` (one click or key press) and time until the run it starts is done."""
        t0 = time.perf_counter()
        do()
        end = self._wait(t0, title, action, charts, timeout_s)
        while True:  # settled: no run started within 0.5 s after the last one ended
            self.page.wait_for_timeout(500)
            if not self._seen("new_session", end):
                break
            end = self._wait(end, title, action, charts, timeout_s)
        seconds = end - t0
        if keep:
            self.rows.append({"dataset": self.dataset, "page": title, "action": action,
                              "seconds": round(seconds, 2)})
        print(f"{self.dataset:>6} | {title:<16} | {action:<40} | {seconds:7.2f} s", flush=True)
        self.page.wait_for_timeout(1000)  # an analyst's pause before the next click
        return seconds

    def _wait(self, t0: float, title: str, action: str, charts: int, timeout_s: float) -> float:
        """The time at which a run that finished after ``t0`` has its page ready."""
        deadline = t0 + timeout_s
        while time.perf_counter() < deadline:
            if self._seen("script_finished", t0) and self.page.evaluate(READY, [title, charts]):
                return time.perf_counter()
            self.page.wait_for_timeout(20)  # lets Playwright deliver the websocket events
        raise TimeoutError(f"{self.dataset} | {title} | {action}: no finished run with the "
                           f"page ready after {timeout_s:.0f} s")

    # ------------------------------------------------------------------ actions

    def goto(self, title: str, action: str, charts: int = 0, timeout_s: float = 300.0,
             keep: bool = True) -> float:
        link = (self.page.get_by_test_id("stSidebar")
                .get_by_role("link", name=title, exact=True))

        def click() -> None:
            link.click()
            self.page.mouse.move(700, 5)  # close the link's tooltip

        return self.step(title, action, click, charts, timeout_s, keep)

    def slider_right(self, title: str, label: str, action: str, charts: int = 0) -> float:
        thumb = (self.page.get_by_test_id("stSlider").filter(has_text=label)
                 .get_by_role("slider").first)
        return self.step(title, action, lambda: thumb.press("ArrowRight"), charts)

    def select(self, title: str, label: str, option: str, action: str, charts: int = 0,
               nth: int = 0, timeout_s: float = 300.0) -> float:
        box = self.page.get_by_test_id("stSelectbox").filter(has_text=label).nth(nth)
        box.get_by_role("combobox").click()
        self.page.keyboard.type(option)  # filters the options to this one
        self.page.get_by_role("option", name=option, exact=True).wait_for()
        return self.step(title, action, lambda: self.page.keyboard.press("Enter"), charts,
                         timeout_s)

    def multiselect_add(self, title: str, label: str, option: str, action: str,
                        charts: int = 0, timeout_s: float = 300.0) -> float:
        box = self.page.get_by_test_id("stMultiSelect").filter(has_text=label).first
        box.click()
        opt = self.page.get_by_role("option", name=option, exact=True)

        def pick() -> None:
            opt.click()
            self.page.keyboard.press("Escape")

        return self.step(title, action, pick, charts, timeout_s)

    def number_up(self, title: str, label: str, action: str, charts: int = 0) -> float:
        box = self.page.get_by_label(label, exact=True)
        value = int(box.input_value())

        def set_value() -> None:
            box.fill(str(value + 1))
            box.press("Enter")

        return self.step(title, action, set_value, charts)

    def button(self, title: str, name: str, action: str, charts: int = 0,
               timeout_s: float = 300.0) -> float:
        btn = self.page.get_by_role("button", name=name)
        return self.step(title, action, btn.click, charts, timeout_s)

    def text(self, title: str, label: str, value: str, action: str, charts: int = 0) -> float:
        box = self.page.get_by_label(label, exact=True)

        def set_value() -> None:
            box.fill(value)
            box.press("Enter")

        return self.step(title, action, set_value, charts)


# plotly charts each page shows on the demo (with the demo models) once its run is done
CHARTS = {"Data": 6, "Representations": 5, "Train": 0, "Evaluate": 2, "Noise lab": 5,
          "Explain": 0, "Report": 0}


def bench_pages(t: Timer, repeats: int = 3) -> None:
    """Cold and warm visits of every page, then one interaction per page."""
    charts = dict(CHARTS)
    for title in PAGES:
        t.goto(title, "open (cold)", charts[title])
    warm: dict[str, list[float]] = {title: [] for title in PAGES}
    for _ in range(repeats):
        for title in PAGES:
            warm[title].append(t.goto(title, "open (warm)", charts[title], keep=False))
    for title in PAGES:
        t.rows.append({"dataset": t.dataset, "page": title,
                       "action": f"open (warm, median of {repeats})",
                       "seconds": round(statistics.median(warm[title]), 2)})
    t.goto("Data", "open (again)", charts["Data"])
    t.slider_right("Data", "Snapshot", "snapshot slider +1", charts["Data"])
    t.goto("Representations", "open (again)", charts["Representations"])
    t.slider_right("Representations", "Window over life", "window slider +1",
                   charts["Representations"])
    t.goto("Train", "open (again)")
    t.select("Train", "Model", "CARLE", "model → CARLE")
    t.goto("Evaluate", "open (again)", charts["Evaluate"])
    t.multiselect_add("Evaluate", "Models to compare", "demo multimodal",
                      "compare: + demo multimodal (evaluates it)", charts["Evaluate"])
    t.select("Evaluate", "Model", "demo multimodal", "time-left model → demo multimodal",
             charts["Evaluate"], nth=0)
    t.goto("Noise lab", "open (again)", charts["Noise lab"])
    t.slider_right("Noise lab", "Severity", "severity +0.25", charts["Noise lab"])
    t.number_up("Noise lab", f"Window (0–{_noise_max(t.page)})", "window +1",
                charts["Noise lab"])
    t.goto("Explain", "open (again)")
    t.slider_right("Explain", "Window over life", "window slider +1")
    t.button("Explain", "Explain this window", "explain window (defaults)", 4)
    t.goto("Report", "open (again)")
    t.text("Report", "Report title", "Speed report", "change the title")


def _noise_max(page) -> str:
    """The Noise lab window box's label names the last window: read it off the page."""
    label = page.get_by_test_id("stNumberInput").filter(has_text="Window (0–").first
    text = label.inner_text().split("\n", 1)[0]
    return text.split("–", 1)[1].rstrip(")")


def load_real(t: Timer, name: str) -> None:
    """Data page → Catalogued → the real bearing → Load dataset (timed)."""
    page = t.page
    t.goto("Data", "open (before loading)", 0)
    page.get_by_text("Catalogued", exact=True).click()
    page.wait_for_timeout(1500)
    box = page.get_by_test_id("stSelectbox").filter(has_text="Dataset").first
    box.click()
    page.get_by_role("option", name=name, exact=True).click()
    page.wait_for_timeout(1500)
    t.button("Data", "Load dataset", "load the real bearing", CHARTS["Data"])


def run(demo: Path, real: Path | None, repeats: int = 3, width: int = 1400, height: int = 1000
        ) -> list[dict]:
    """Start a server per dataset, drive a fresh browser page, return the timed rows."""
    from playwright.sync_api import sync_playwright

    rows: list[dict] = []
    datasets = [("demo", None)] + ([("real", real)] if real else [])
    for name, path in datasets:
        tmp = Path(tempfile.mkdtemp(prefix="rul_app_speed_"))
        env = {"RUL_WORKSPACE": str(tmp / "workspace"), "RUL_DEMO_DIR": str(demo.resolve())}
        if path is not None:
            env["RUL_DATA_PATHS"] = str(path)
        with streamlit_server(env, timeout=180) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            t = Timer(page, name)
            t0 = time.perf_counter()
            page.goto(url, wait_until="domcontentloaded")
            page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=180_000)
            page.wait_for_function(f"() => {STATE}?.getAttribute('data-test-script-state') "
                                   "=== 'notRunning'", timeout=180_000)
            secs = time.perf_counter() - t0
            t.rows.append({"dataset": name, "page": "Home", "action": "first load",
                           "seconds": round(secs, 2)})
            print(f"{name:>6} | {'Home':<16} | {'first load':<40} | {secs:7.2f} s", flush=True)
            if path is not None:
                load_real(t, path.name)
            bench_pages(t, repeats)
            browser.close()
        rows += t.rows
    return rows


def markdown(rows: list[dict], before: list[dict] | None, about: str) -> str:
    """The table (with a before column when given) and the machine."""
    old = {(r["dataset"], r["page"], r["action"]): r["seconds"] for r in before or []}
    head = "| data | page | action | " + ("before (s) | after (s) |" if before else "seconds |")
    sep = "|---|---|---|" + ("---:|---:|" if before else "---:|")
    lines = [head, sep]
    for r in rows:
        key = (r["dataset"], r["page"], r["action"])
        if before:
            b = old.get(key)
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | "
                         f"{'—' if b is None else f'{b:.2f}'} | {r['seconds']:.2f} |")
        else:
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {r['seconds']:.2f} |")
    return "\n".join(lines) + f"\n\n{about}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default=str(ROOT / "assets" / "demo"))
    ap.add_argument("--real", default=None, help="a real FEMTO bearing folder (read in place)")
    ap.add_argument("--repeats", type=int, default=3, help="warm visits per page (median)")
    ap.add_argument("--before", default=None, help="an earlier run's --json, for comparison")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "app_speed.json"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "app_speed.md"))
    args = ap.parse_args(argv)
    about = f"Machine: {machine()}. Chromium headless, viewport 1400×1000."
    print(about, flush=True)
    rows = run(Path(args.demo), Path(args.real) if args.real else None, args.repeats)
    before = json.loads(Path(args.before).read_text())["rows"] if args.before else None
    text = markdown(rows, before, about)
    print(text)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"machine": about, "rows": rows}, indent=1) + "\n")
    Path(args.out).write_text("# App responsiveness (`bench/app_speed.py`)\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
