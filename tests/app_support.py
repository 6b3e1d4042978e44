"""Shared set-up for the app tests and the screenshot script: tiny demo assets, a Streamlit
server on a free port, and a headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@functools.cache
def assets_root() -> Path:
    """One temporary folder per process for the demo and the workspace."""
    root = Path(tempfile.mkdtemp(prefix="rul_app_tests_"))
    atexit.register(shutil.rmtree, root, True)
    return root


@functools.cache
def build_assets(with_model: bool = True) -> Path:
    """Build the demo (data, optionally a 1-epoch quick model) once per process."""
    from rul_core.cli.demo_cmd import build_demo

    out = assets_root() / ("demo_model" if with_model else "demo")
    build_demo(out, n_snapshots=6, models=("multimodal",) if with_model else (), epochs=1)
    return out


def use_workspace(demo: Path) -> dict[str, str]:
    """Point the app at the temporary workspace and demo folder; returns the variables."""
    env = {"RUL_WORKSPACE": str(assets_root() / "workspace"), "RUL_DEMO_DIR": str(demo)}
    os.environ.update(env)
    return env


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def streamlit_server(env: dict[str, str], timeout: float = 90.0,
                     log_path: Path | None = None) -> Iterator[str]:
    """Run ``streamlit run app.py`` on a free port; yields its base URL; stops it afterwards.
    The server's output goes to ``log_path`` (kept), or to a temporary file (removed)."""
    port = free_port()
    if log_path is None:
        fd, log_name = tempfile.mkstemp(prefix="streamlit_", suffix=".log")
    else:
        fd, log_name = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), str(log_path)
    with os.fdopen(fd, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=APP_ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start; log: {Path(log_name).read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path is None:
            Path(log_name).unlink(missing_ok=True)


def wait_for_app(page, timeout_ms: int = 120_000) -> None:
    """Wait until Streamlit has finished running the script (no 'Running…' status)."""
    page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=timeout_ms)
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]')"
        "?.getAttribute('data-test-script-state') === 'notRunning'",
        timeout=timeout_ms)
    page.wait_for_timeout(300)


def goto_page(page, title: str) -> None:
    """Navigate with the sidebar link (keeps the session, unlike a new URL)."""
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name=title, exact=True).click()
    page.mouse.move(700, 5)  # away from the link, so its tooltip closes
    wait_for_app(page)
