"""The widgets in a real JupyterLab, driven by Playwright in Debian's Chromium.

JupyterLab runs on 127.0.0.1 with a token, in a temporary root holding a copy of
``tests/browser/dashboard.ipynb``; its kernel imports this checkout's ``tsc_toolkit``. The test
runs all cells, waits for the dashboard and the explorer, checks that the loss curve and the
projection have points, picks a cluster and clicks a point in the page (the kernel answers),
stops a run in a thread with its Stop button, and saves screenshots under the test's temporary
directory (its path is printed).

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and the ``playwright`` Python package
(its own browser download is not used); skips with a message without them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "browser" / "dashboard.ipynb"
CHROMIUM = os.environ.get("TSC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
SERVER_START_S = 90
NOTEBOOK_RUN_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def jupyter_lab(tmp_path):
    """A JupyterLab server on a free loopback port; stopped (with its kernels) afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set TSC_CHROMIUM)")
    pytest.importorskip("playwright.sync_api",
                        reason="the playwright package is missing: pip install playwright")
    pytest.importorskip("jupyterlab", reason="jupyterlab is missing")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = _free_port(), os.urandom(16).hex()
    state = tmp_path / "jupyter"
    env = dict(os.environ)
    env.update({
        # the kernel must import this checkout, not whatever is installed
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "OMP_NUM_THREADS": "1",
    })
    env.pop("PLOTLY_RENDERER", None)
    # User settings for this server only: start the notebook's kernel without asking, and no
    # news prompt (it would ask to reach a website).
    settings = state / "settings" / "@jupyterlab"
    for name, values in {"notebook-extension/tracker": {"autoStartDefaultKernel": True},
                         "apputils-extension/notification": {"fetchNews": "false",
                                                             "checkForUpdates": False}}.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    log_path = tmp_path / "jupyter-lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.open_browser=False", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    with open(log_path, "wb") as log:
        server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited ({server.returncode}):\n{log_path.read_text()}")
            try:
                if _get(f"{base}/api/status?token={token}", timeout=2) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not start in {SERVER_START_S} s:\n"
                            f"{log_path.read_text()}")
            time.sleep(0.5)
        yield {"base": base, "token": token, "root": root, "log": log_path}
    finally:
        if server.poll() is None:
            try:  # a clean shutdown also stops the kernels it started
                request = urllib.request.Request(f"{base}/api/shutdown?token={token}",
                                                 method="POST")
                urllib.request.urlopen(request, timeout=10).read()
            except OSError:
                pass
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


def test_dashboard_and_explorer_render_in_jupyterlab(jupyter_lab, tmp_path):
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    url = f"{jupyter_lab['base']}/lab/tree/{NOTEBOOK.name}?token={jupyter_lab['token']}"
    console_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # Tall enough for the dashboard and the explorer to fit in one screenshot.
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.on("console", lambda msg: console_errors.append(msg.text)
                    if msg.type == "error" else None)
            try:
                _run_notebook_and_check(page, url, tmp_path)
            except BaseException:
                failure = tmp_path / "failure.png"
                page.screenshot(path=str(failure))
                errors = page.locator(".jp-OutputArea-output[data-mime-type="
                                      "'application/vnd.jupyter.stderr']").all_inner_texts()
                print(f"failure screenshot: {failure}\nkernel stderr: {errors}\n"
                      f"console errors: {console_errors[-10:]}\n"
                      f"server log: {jupyter_lab['log']}")
                raise
        finally:
            browser.close()
    print(f"screenshots in {tmp_path} ({time.monotonic() - started:.0f} s in the browser)")


def _run_notebook_and_check(page, url: str, tmp_path: Path) -> None:
    page.goto(url, timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    try:  # should the kernel dialog still come up, accept the notebook's kernel
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=5_000)
    except Exception:
        pass
    # The kernel must be up before "Run All" (the indicator reads idle).
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=90_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.wait_for_selector(".jp-OutputArea-output:has-text('notebook finished')",
                           timeout=NOTEBOOK_RUN_S * 1000)

    dashboard = page.locator(".tsc-training-dashboard").first
    dashboard.wait_for(timeout=30_000)
    assert dashboard.locator(".widget-hprogress").count() == 1
    dashboard.locator(".js-plotly-plot").wait_for(timeout=30_000)
    # the loss curve (a FigureWidget) has one marker per epoch
    page.wait_for_function(
        "() => document.querySelectorAll('.tsc-training-dashboard .js-plotly-plot "
        ".scatterlayer .trace:first-child .point').length >= 4", timeout=30_000)
    line = dashboard.locator(".scatterlayer .trace .js-line").first
    assert len(line.get_attribute("d") or "") > 10
    text = dashboard.inner_text()
    assert "epoch 4/4" in text and "done" in text, text

    explorer = page.locator(".tsc-cluster-explorer")
    explorer.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.tsc-cluster-explorer .js-plotly-plot "
        ".scatterlayer .point').length >= 60", timeout=30_000)
    assert explorer.locator(".js-plotly-plot").count() >= 3  # projection, centroid, series
    assert "cluster 1" in explorer.inner_text()

    # The page talks back to the kernel: pick another cluster, then click a point.
    explorer.locator("select").select_option(index=2)
    page.wait_for_function("el => el.innerText.includes('; cluster 2 (')",
                           arg=explorer.element_handle(), timeout=30_000)
    point = explorer.locator(".js-plotly-plot").first.locator(".scatterlayer .point").nth(0)
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("el => /; series (?!5 )\\d+ \\(cluster/.test(el.innerText)",
                           arg=explorer.element_handle(), timeout=30_000)
    dashboard.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "jupyterlab.png"))
    dashboard.screenshot(path=str(tmp_path / "dashboard.png"))
    explorer.screenshot(path=str(tmp_path / "explorer.png"))

    # The run in a thread draws into an Output widget; Stop clicked in the page ends it.
    background = page.locator(".tsc-training-dashboard").nth(1)
    background.wait_for(timeout=30_000)
    epoch = _wait_for_epoch(background, at_least=2)
    background.get_by_role("button", name="Stop").click()
    page.wait_for_function("el => el.innerText.includes('stopped')",
                           arg=background.element_handle(), timeout=120_000)
    assert epoch <= _wait_for_epoch(background, at_least=epoch) < 100_000
    # The run's end sends the display again, and the page rebuilds the dashboard's view (a new
    # element): look up the stopped dashboard afresh instead of holding on to an element.
    # JupyterLab's plotly renderer keeps a PNG of each figure it has drawn in the output itself,
    # and a view rebuilt from that output shows the picture, not a graph, until the mouse comes
    # over it (a failing CI run found the rebuilt view 336 px high with no plot in it). Hover
    # over the figure, as a user would, and the live curves must come.
    # The view may be rebuilt again while the test is at it (an element found a moment ago
    # is then detached): look it up, scroll and hover afresh until the curves are there.
    has_curves = ("() => [...document.querySelectorAll('.tsc-training-dashboard')].some(d => "
                  "d.innerText.includes('stopped') && "
                  "d.querySelectorAll('.js-plotly-plot .scatterlayer .point').length >= 2)")
    deadline = time.monotonic() + 60
    last_error = None
    while not page.evaluate(has_curves):
        if time.monotonic() > deadline:
            state = page.evaluate(
                "() => [...document.querySelectorAll('.tsc-training-dashboard')].map(d => ({"
                "text: d.innerText.slice(0, 120), plots: d.querySelectorAll('.js-plotly-plot')"
                ".length, points: d.querySelectorAll('.scatterlayer .point').length, "
                "traces: d.querySelectorAll('.scatterlayer .trace').length, "
                "images: [...d.querySelectorAll('img.plot-img')].filter(i => i.src && "
                "i.style.display !== 'none').length, "
                "height: d.getBoundingClientRect().height}))")
            pytest.fail(f"the stopped dashboard showed no curves within 60 s: {state} "
                        f"(last error: {last_error})")
        try:
            stopped = page.locator(".tsc-training-dashboard", has_text="stopped").last
            stopped.scroll_into_view_if_needed(timeout=5_000)
            stopped.locator(".jp-RenderedPlotly").first.hover(timeout=5_000)
        except Exception as exc:  # detached or not there yet: try again
            last_error = exc
        time.sleep(0.5)
    page.locator(".tsc-training-dashboard", has_text="stopped").last.screenshot(
        path=str(tmp_path / "stopped.png"))


def _wait_for_epoch(dashboard, at_least: int, timeout: float = 120.0) -> int:
    """The epoch a dashboard shows, once it is at least ``at_least``."""
    import re

    deadline = time.monotonic() + timeout
    while True:
        match = re.search(r"epoch (\d+)/", dashboard.inner_text())
        if match and int(match.group(1)) >= at_least:
            return int(match.group(1))
        if time.monotonic() > deadline:
            pytest.fail(f"the dashboard did not reach epoch {at_least}: "
                        f"{dashboard.inner_text()!r}")
        time.sleep(0.2)
