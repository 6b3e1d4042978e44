"""The Train page's training journey, repeated in a real headless Chromium against
``streamlit run app.py`` on the demo data, to catch what a one-off click-through misses (an
audit once saw no success message after training, "Trained carle/full ...", and nobody could
reproduce it).

    python bench/train_journey.py [--rounds 5] [--epochs 2] [--demo assets/demo]
                                  [--out bench/results/train_journey.md]

The server gets a temporary ``RUL_WORKSPACE`` and ``RUL_DEMO_DIR=--demo``; one browser session
runs every round. Round *i* (from 1):

* model: CARLE for rounds 1-2, RC-LSTM for 3-4, CARLE for 5-6, ... (quick preset, early
  stopping off, so a round stays well under a minute);
* rounds 1, 3, 5, ... train ``--epochs`` epochs to the end: Start training; this run's
  progress bar must report a training batch (its text, epoch/loss/ETA, is recorded: the
  last one with an ETA figure; the previous round's bar, still on the page right after the
  click, is not this run's); the success message
  "Trained <model>/full ..." must appear; the model must then be the sidebar's model and
  be listed on Evaluate; it is saved as a bundle (``journey-<i>``, "Saved to ..." must appear);
* rounds 2, 4, 6, ... cancel mid-training: 300 epochs; once the progress bar reports a batch
  of the second epoch, Cancel; the warning "Training cancelled after N of 300 epochs ..." must
  appear and no model joins the session;
* every round but the first also goes to another page while it trains and comes back: to
  Evaluate (training rounds: stays there until the round-1 training time x 1.5 has passed, so
  the training ends while the page is away, and checks that Evaluate lists the new model
  without going back to Train; cancel rounds: 2 s, then back, then Cancel).

A round *fails* when an expected message does not come within ``--timeout`` seconds (stuck
progress, lost result), when the page shows an exception or an error box, or when the server
log gains a traceback. The per-round table (what appeared, seconds from the click on Start to
the message) is printed and written to ``--out``. Page loads are awaited on the app's
websocket (``script_finished`` of a full run, decoded with Streamlit's ``ForwardMsg``; see
``bench/app_speed.py``), not on DOM attributes, which can miss fast runs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from app_support import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

MAIN = '[data-testid="stMain"]'
CANCEL_EPOCHS = 300  # cancel rounds: long enough that Cancel lands mid-training
FULL_RUN_DONE = 0  # ForwardMsg.FINISHED_SUCCESSFULLY (a fragment run finishes with 3)


def finished_status(payload: bytes | str) -> int | None:
    """The status of a ``script_finished`` websocket message, None for any other message."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    if isinstance(payload, str):
        return None
    msg = ForwardMsg()
    msg.ParseFromString(payload)
    return msg.script_finished if msg.WhichOneof("type") == "script_finished" else None


@dataclass
class Round:
    """What one round saw."""

    number: int
    model: str
    action: str  # "train" | "cancel"
    away: str = "-"
    progress_s: float | None = None  # click on Start -> progress bar
    progress_text: str = ""  # the longest progress text seen (epoch/loss/ETA)
    outcome: str = ""  # the success / warning text (first line)
    seconds: float | None = None  # click on Start -> success / warning
    in_sidebar: bool | None = None
    on_evaluate: bool | None = None
    on_evaluate_while_away: bool | None = None
    bundle: str = "-"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Journey:
    """One browser page on the app; full-run completions counted off its websocket."""

    def __init__(self, page, log: Path, timeout_s: float) -> None:
        self.page = page
        self.log = log
        self.timeout_s = timeout_s
        self.finished: list[tuple[float, int]] = []  # (perf_counter, status)
        self.step = ""  # what the driver did last (named in its errors)
        page.on("websocket", lambda ws: ws.on("framereceived", self._received))

    def _received(self, payload: bytes | str) -> None:
        status = finished_status(payload)
        if status is not None:
            self.finished.append((time.perf_counter(), status))

    def settle(self, t0: float, title: str, timeout_s: float = 120.0) -> None:
        """Wait for a full run that finished after ``t0`` with ``title`` as the page's title,
        then until no other full run finishes within 0.7 s."""
        deadline = t0 + timeout_s
        while time.perf_counter() < deadline:
            done = [t for t, s in self.finished if t > t0 and s == FULL_RUN_DONE]
            if done and self.page.locator(f"{MAIN} h1").first.inner_text().strip() == title:
                last = done[-1]
                self.page.wait_for_timeout(700)
                if not any(t > last and s == FULL_RUN_DONE for t, s in self.finished):
                    return
                continue
            self.page.wait_for_timeout(25)  # lets Playwright deliver the websocket frames
        seen = [s for t, s in self.finished if t > t0]
        h1 = self.page.locator(f"{MAIN} h1").first.inner_text().strip()
        raise TimeoutError(f"{title}: no settled run after {timeout_s:.0f} s (page {h1!r}; "
                           f"{len(seen)} runs finished since, statuses {sorted(set(seen))})")

    def goto(self, title: str) -> None:
        self.step = f"go to {title}"
        t0 = time.perf_counter()
        self.page.get_by_test_id("stSidebar").get_by_role("link", name=title,
                                                          exact=True).click()
        self.page.mouse.move(700, 5)  # close the link's tooltip
        self.settle(t0, title)

    def act(self, title: str, do, step: str) -> None:
        self.step = step
        t0 = time.perf_counter()
        do()
        self.settle(t0, title)

    def select(self, label: str, option: str) -> None:
        box = self.page.get_by_test_id("stSelectbox").filter(has_text=label).first
        combo = box.get_by_role("combobox")
        shown = combo.input_value() if combo.evaluate("e => 'value' in e") else ""
        if option in (shown, *box.inner_text().splitlines()):
            return
        combo.click()
        self.page.get_by_role("option", name=option, exact=True).wait_for()
        self.act("Train", self.page.get_by_role("option", name=option, exact=True).click,
                 f"{label} -> {option}")

    def number(self, label: str, value: int) -> None:
        box = self.page.get_by_label(label, exact=True)
        if box.input_value() == str(value):
            return

        def fill() -> None:
            box.fill(str(value))
            box.press("Enter")

        self.act("Train", fill, f"{label} = {value}")

    def problems_on_page(self) -> list[str]:
        out = []
        n = self.page.locator(f'{MAIN} [data-testid="stException"]').count()
        if n:
            texts = self.page.locator(f'{MAIN} [data-testid="stException"]').all_inner_texts()
            out.append(f"{n} exception(s) shown: {texts[0][:200]!r}")
        for t in self.page.locator(f'{MAIN} [data-testid="stAlertContentError"]'
                                   ).all_inner_texts():
            out.append(f"error box: {t[:200]!r}")
        return out

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_tracebacks(self, since: int) -> list[str]:
        with open(self.log, errors="replace") as f:
            f.seek(since)
            text = f.read()
        return [f"server log: {line.strip()[:200]}" for line in text.splitlines()
                if "Traceback" in line or re.search(r"\b\w+Error\b:", line)]

    def progress_text(self) -> str:
        bar = self.page.locator(f'{MAIN} [data-testid="stProgress"]')
        try:
            return bar.first.inner_text(timeout=200).strip() if bar.count() else ""
        except Exception:  # the fragment redrew it meanwhile
            return ""

    def run_progress_text(self, t0: float) -> str:
        """The progress text of the training started at ``t0``, "" while the page still shows
        the previous round's bar: after the click on Start the browser keeps the old
        elements until the new run replaces them, and the old bar ("cancelled · 17 s · train:
        ... epoch 44/300") was read as this round's (session 24, rounds 3 and 5). This run's
        bar says "running" and no more seconds than have passed since ``t0``."""
        text = self.progress_text()
        m = re.match(r"running · (\d+) s\b", text)
        return text if m and int(m.group(1)) <= time.perf_counter() - t0 + 1.5 else ""


ETA_SHOWN = re.compile(r"ETA (≤ )?\d")


def watch(j: Journey, r: Round, t0: float, until, deadline: float) -> str | None:
    """Poll the page every 0.2 s: record this run's progress bar (when it first showed, and
    the last text reporting a training batch, one with an ETA figure rather than "estimating…"
    when there was one); return ``until()``'s text once it is not None (None at
    ``deadline``)."""
    while time.perf_counter() < deadline:
        text = j.run_progress_text(t0)
        if text:
            if r.progress_s is None:
                r.progress_s = round(time.perf_counter() - t0, 1)
            if "train: " in text and "epoch" in text and (
                    ETA_SHOWN.search(text) or not ETA_SHOWN.search(r.progress_text)):
                r.progress_text = text
        found = until()
        if found is not None:
            return found
        j.page.wait_for_timeout(200)
    return None


def first_text(page, selector: str, pattern: str) -> str | None:
    loc = page.locator(selector).filter(has_text=re.compile(pattern))
    return loc.first.inner_text().strip().splitlines()[0] if loc.count() else None


def training_batch_seen(j: Journey, t0: float, epoch: int = 2) -> str | None:
    """This run's progress text once it reports a batch of epoch ``epoch`` or later (the
    second: one epoch done)."""
    text = j.run_progress_text(t0)
    m = re.search(r"train: (?:member \d+/\d+, )?epoch (\d+)/", text)
    return text if m and int(m.group(1)) >= epoch else None


SUCCESS = f'{MAIN} [data-testid="stAlertContentSuccess"]'
WARNING = f'{MAIN} [data-testid="stAlertContentWarning"]'


def one_round(j: Journey, r: Round, epochs: int, away_s: float | None) -> None:
    page = j.page
    log_at = j.log_size()
    j.goto("Train")
    j.select("Model", "CARLE" if r.model == "carle" else "RC-LSTM")
    j.number("Epochs", epochs if r.action == "train" else CANCEL_EPOCHS)
    j.number("Early-stopping patience (epochs)", 0)
    before = set(evaluate_models(j))
    j.goto("Train")
    t0 = time.perf_counter()
    page.get_by_role("button", name="Start training").click()
    deadline = t0 + j.timeout_s
    # this run's progress bar, up to a batch of the second epoch (cancel rounds) or of the
    # first (train rounds; or their end, should it come first)
    if watch(j, r, t0, (lambda: training_batch_seen(j, t0)) if r.action == "cancel"
             else (lambda: training_batch_seen(j, t0, epoch=1)
                   or first_text(page, SUCCESS, "^Trained ")), deadline) is None:
        r.problems.append("no training batch reported")
    if away_s is not None and not r.problems:
        r.away = f"Evaluate {away_s:.0f} s"
        j.goto("Evaluate")
        end = time.perf_counter() + away_s
        while time.perf_counter() < end:
            page.wait_for_timeout(250)
        if r.action == "train":
            r.on_evaluate_while_away = bool(set(evaluate_models(j, goto=False)) - before)
            if not r.on_evaluate_while_away:
                r.problems.append("the model ended while on Evaluate is not listed there")
        j.goto("Train")
    if r.action == "cancel" and not r.problems:
        cancel = page.get_by_role("button", name="Cancel training")
        if cancel.count():
            cancel.click()
        else:
            r.problems.append("no Cancel button while training")
        found = watch(j, r, t0, lambda: (first_text(page, WARNING, "cancelled|before the "
                                                    "cancel arrived")
                                         or first_text(page, SUCCESS, "^Trained ")), deadline)
        if found is None:
            r.problems.append(f"no cancel warning within {j.timeout_s:.0f} s")
        else:
            r.outcome, r.seconds = found, round(time.perf_counter() - t0, 1)
            if not re.search(r"Training cancelled (after \d+ (of \d+ )?epochs?|before its "
                             r"first epoch)", found):
                r.problems.append(f"unexpected cancel warning {found!r}")
    elif r.action == "train" and not r.problems:
        found = watch(j, r, t0, lambda: first_text(page, SUCCESS, "^Trained "), deadline)
        if found is None:
            r.problems.append(f"no success message within {j.timeout_s:.0f} s")
        else:
            r.outcome, r.seconds = found, round(time.perf_counter() - t0, 1)
            if not found.startswith(f"Trained {r.model}/full"):
                r.problems.append(f"unexpected success message {found!r}")
    page.wait_for_timeout(1500)  # let the page settle (the panel's last reruns)
    r.problems += j.problems_on_page()
    if r.action == "train" and r.outcome:
        label = r.outcome.removeprefix("Trained ").split(" in ")[0]
        side = page.get_by_test_id("stSidebar").inner_text()
        r.in_sidebar = f"Model: {label}" in side
        if not r.in_sidebar:
            r.problems.append(f"sidebar does not name {label}")
        save_bundle(j, r)
        r.on_evaluate = label in evaluate_models(j)
        if not r.on_evaluate:
            r.problems.append(f"{label} not listed on Evaluate")
        r.problems += j.problems_on_page()
    elif r.action == "cancel":
        new = set(evaluate_models(j)) - before
        if new:
            r.problems.append(f"a cancelled training added {sorted(new)}")
    r.problems += j.log_tracebacks(log_at)


def save_bundle(j: Journey, r: Round) -> None:
    page = j.page
    box = page.get_by_label("Bundle name", exact=True)

    def rename() -> None:
        box.fill(f"journey-{r.number}")
        box.press("Enter")

    j.act("Train", rename, "bundle name")
    j.act("Train", page.get_by_role("button", name="Save as bundle in the workspace").click,
          "save bundle")
    saved = first_text(page, SUCCESS, "^Saved to ")
    r.bundle = Path(saved.removeprefix("Saved to ")).name if saved else "not saved"
    if not saved:
        r.problems.append("bundle not saved")


def evaluate_models(j: Journey, goto: bool = True) -> list[str]:
    """The session's models offered on Evaluate (options of 'Models to compare')."""
    if goto:
        j.goto("Evaluate")
    page = j.page
    box = page.get_by_test_id("stMultiSelect").filter(has_text="Models to compare").first
    chips = [box.locator("[data-tag]").nth(i).get_attribute("aria-label") or ""
             for i in range(box.locator("[data-tag]").count())]
    box.get_by_role("combobox").click()
    page.wait_for_timeout(300)  # no options left when every model is selected
    names = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    listbox = page.get_by_role("listbox")
    for _ in range(20):  # closed, so that the next click is not spent closing it
        if not listbox.count() or not listbox.first.is_visible():
            break
        page.locator(f"{MAIN} h1").first.click()
        page.wait_for_timeout(100)
    return sorted({n.strip() for n in names + chips if n.strip()} - {"Select all"})


def run(rounds: int, epochs: int, demo: Path, timeout_s: float) -> list[Round]:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="rul_train_journey_"))
    env = {"RUL_WORKSPACE": str(tmp / "workspace"), "RUL_DEMO_DIR": str(demo.resolve())}
    log = tmp / "streamlit.log"
    out: list[Round] = []
    try:
        with streamlit_server(env, timeout=180, log_path=log) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            j = Journey(page, log, timeout_s)
            t0 = time.perf_counter()
            page.goto(url, wait_until="domcontentloaded")
            j.settle(t0, "Bearing RUL workbench", timeout_s=180)
            first_train_s: float | None = None
            for i in range(1, rounds + 1):
                model = "carle" if ((i - 1) // 2) % 2 == 0 else "rc_lstm"
                r = Round(i, model, "cancel" if i % 2 == 0 else "train")
                away = None
                if i > 1:
                    away = 2.0 if r.action == "cancel" else 1.5 * (first_train_s or 30.0)
                try:
                    one_round(j, r, epochs, away)
                except Exception as exc:  # a timeout of the driver: record, go on
                    r.problems.append(f"{type(exc).__name__} at {j.step!r}: "
                                      f"{str(exc).splitlines()[0]}")
                    page.screenshot(path=str(tmp / f"round{i}.png"), full_page=True)
                if r.action == "train" and r.seconds and first_train_s is None:
                    first_train_s = r.seconds
                out.append(r)
                print(row(r), flush=True)
            browser.close()
    finally:
        if all(r.ok for r in out):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp} (server log, screenshots)", flush=True)
    return out


HEAD = ("| # | model | action | away | progress after (s) | progress text | outcome | "
        "seconds | sidebar | Evaluate (while away) | bundle | ok |")


def yes(v: bool | None) -> str:
    return "—" if v is None else ("yes" if v else "NO")


def row(r: Round) -> str:
    ev = yes(r.on_evaluate) + (f" ({yes(r.on_evaluate_while_away)})"
                               if r.on_evaluate_while_away is not None else "")
    return (f"| {r.number} | {r.model} | {r.action} | {r.away} | "
            f"{'—' if r.progress_s is None else r.progress_s} | {r.progress_text or '—'} | "
            f"{(r.outcome or '—').replace('|', '/')} | "
            f"{'—' if r.seconds is None else r.seconds} | {yes(r.in_sidebar)} | {ev} | "
            f"{r.bundle} | {'yes' if r.ok else 'NO: ' + '; '.join(r.problems)} |")


def markdown(rounds: list[Round], about: str) -> str:
    lines = [HEAD, "|" + "---|" * 12] + [row(r) for r in rounds]
    ok = sum(r.ok for r in rounds)
    return "\n".join(lines) + f"\n\n{ok}/{len(rounds)} rounds as expected. {about}\n"


def main(argv: list[str] | None = None) -> int:
    from app_speed import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=180.0,
                    help="seconds a round may wait for its message")
    ap.add_argument("--demo", default=str(ROOT / "assets" / "demo"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_journey.md"))
    args = ap.parse_args(argv)
    about = (f"Machine: {machine()}. Chromium headless; {args.epochs} epochs, quick preset, "
             "demo data.")
    print(about + "\n" + HEAD, flush=True)
    rounds = run(args.rounds, args.epochs, Path(args.demo), args.timeout)
    text = markdown(rounds, about)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("# Train page journey (`bench/train_journey.py`)\n\n" + text)
    return 0 if all(r.ok for r in rounds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
