"""The lecture notebooks in a real browser: JupyterLab in headless chromium, driven by Playwright (conftest.py).

For every notebook (in fast mode): it opens, runs all cells without an error output, and its main view (the first
widget view with a figure) is saved as a screenshot. Where the main view has a slider, dragging it changes the figure
or the numbers the view shows. The training buttons train, show a progress bar and draw the curve.

Screenshots go to tests/browser/artifacts/ (git-ignored) or $RLCOURSE_ARTIFACTS. With RLCOURSE_README_SCREENSHOT=1
the slider screenshot of README_NOTEBOOK is also written to figures/browser_<notebook>.png (the README shows it).

The tests of one notebook share one page and one kernel (the module-scoped ``notebook`` fixture, parametrized:
pytest runs each notebook's tests together), so each notebook runs once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
LECTURE = sorted(p.name for p in NOTEBOOKS.glob("0*.ipynb"))
OVERVIEW = "01_overview.ipynb"
README_NOTEBOOK = "05_importance_sampling.ipynb"
VIEWPORT = {"width": 1400, "height": 1000}
OPEN_TIMEOUT_MS = 90_000
RUN_TIMEOUT_MS = 240_000
REDRAW_TIMEOUT_MS = 30_000
TRAIN_TIMEOUT_MS = 120_000

# A widget view, as a notebook cell shows it (not the widgets displayed inside a view's own output).
VIEW = ".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output > .jupyter-widgets"

# The kernel of the notebook in the main area: "idle", "busy", "dead", ... (null before it has started).
KERNEL_STATUS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return kernel ? kernel.status : null;
}"""

# What the notebook model and the page say after a run: execution counts, error outputs, tracebacks on stderr
# (in the cells or in a widget's Output), widgets that failed to render.
RUN_REPORT = """() => {
  const plain = text => text.replace(/\\x1b\\[[0-9;]*m/g, '');
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells;
  const report = {code: 0, executed: 0, errors: []};
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    report.code += 1;
    if (cell.executionCount !== null && cell.executionCount !== undefined) report.executed += 1;
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      if (out.output_type === 'error') {
        report.errors.push(`cell ${i + 1}: ${out.ename}: ${out.evalue}\\n` + plain((out.traceback || []).join('\\n')));
      } else if (out.output_type === 'stream' && out.name === 'stderr') {
        const text = [].concat(out.text).join('');
        if (/Traceback/.test(text)) report.errors.push(`cell ${i + 1}, on stderr:\\n` + plain(text).slice(0, 3000));
      }
    }
  }
  // A widget's callback that raised prints into the widget's Output (not in the notebook model): read the page.
  const node = panel.content.node;
  const stderr = '.widget-output .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]';
  for (const el of node.querySelectorAll(stderr)) {
    if (/Traceback|\\b\\w+Error\\b/.test(el.innerText)) {
      report.errors.push('in a widget: ' + el.innerText.slice(0, 3000));
    }
  }
  for (const el of node.querySelectorAll('.jp-OutputArea-output')) {
    if (/Error displaying widget|Failed to display model|Could not render/.test(el.innerText)) {
      report.errors.push('widget not displayed: ' + el.innerText.slice(0, 500));
    }
  }
  const session = panel.sessionContext.session;
  report.kernel = session && session.kernel ? session.kernel.status : null;
  return report;
}"""

# Done: the kernel is idle and every code cell ran, or something failed (run-all stops at an error), or it died.
RUN_DONE = (
    "() => { const r = (" + RUN_REPORT + ")();"
    " return r.kernel === 'dead' || (r.kernel === 'idle' && (r.executed === r.code || r.errors.length > 0)); }"
)

# What a view shows apart from its controls: its figures (PNG data URLs) and its texts (outputs, labels, HTML).
SHOWN = """(view) => {
  const imgs = Array.from(view.querySelectorAll('.widget-output img')).map(img => img.src);
  const texts = Array.from(view.querySelectorAll('.widget-output, div.widget-label, .widget-html-content'))
    .map(el => el.innerText);
  return JSON.stringify({imgs, texts});
}"""


def artifacts_dir() -> Path:
    """Where screenshots go: $RLCOURSE_ARTIFACTS, else tests/browser/artifacts/ (git-ignored)."""
    path = Path(os.environ.get("RLCOURSE_ARTIFACTS") or Path(__file__).parent / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def stem(name: str) -> str:
    return Path(name).stem


class Notebook:
    """One notebook open in its own page of the shared JupyterLab, after "run all"."""

    def __init__(self, page, name: str, lab):
        self.page, self.name, self.lab = page, name, lab
        self.report: dict | None = None
        self.problem = ""  # why the run did not finish, if it did not
        self.page_errors: list[str] = []
        page.on("pageerror", lambda err: self.page_errors.append(str(err)))

    def open_and_run(self) -> None:
        page = self.page
        start = time.monotonic()
        page.goto(self.lab.notebook_url(self.name))
        page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=OPEN_TIMEOUT_MS)
        page.wait_for_function(f"() => ({KERNEL_STATUS})() === 'idle'", timeout=OPEN_TIMEOUT_MS)
        self.open_seconds = time.monotonic() - start
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_function(RUN_DONE, timeout=RUN_TIMEOUT_MS, polling=250)
        except Exception as err:  # a Playwright TimeoutError: report it in the test, with what ran so far
            self.problem = f"run all did not finish within {RUN_TIMEOUT_MS / 1000:.0f} s: {err}"
        self.run_seconds = time.monotonic() - start - self.open_seconds
        if not self.problem:
            # The views, rendering, ask the kernel for their state: let it go quiet before the report.
            self.wait_kernel_quiet()
        self.report = page.evaluate(RUN_REPORT)
        if self.ran_cleanly:
            # The widgets render after the last reply: wait for every view's figures.
            for view in self.views().all():
                for img in view.locator(".widget-output img").all():
                    img.wait_for(state="attached", timeout=REDRAW_TIMEOUT_MS)

    def wait_kernel_quiet(self, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
        """Wait until the kernel has been idle for ``quiet_s`` (or is dead), at most ``timeout_s``."""
        start = since = time.monotonic()
        while time.monotonic() - start < timeout_s:
            status = self.page.evaluate(KERNEL_STATUS)
            if status == "dead" or (status == "idle" and time.monotonic() - since >= quiet_s):
                return
            if status != "idle":
                since = time.monotonic()
            time.sleep(0.1)

    @property
    def ran_cleanly(self) -> bool:
        r = self.report
        return not self.problem and r is not None and not r["errors"] and r["executed"] == r["code"]

    def require_clean_run(self) -> None:
        if not self.ran_cleanly:
            pytest.skip(f"{self.name} did not run cleanly (see test_runs_all_cells)")

    def views(self):
        return self.page.locator(VIEW)

    def main_view(self):
        """The notebook's main view: its first widget view that shows a figure."""
        return self.view_with(".widget-output img")

    def view_with(self, selector: str, without: str | None = None):
        """The first view containing ``selector`` (and not ``without``), pinned by its position on the page: the
        locator keeps pointing at it while a redraw or a training run replaces its figure."""
        found = self.views().evaluate_all(
            "(views, [sel, skip]) => views.findIndex(v => v.querySelector(sel) && !(skip && v.querySelector(skip)))",
            [selector, without],
        )
        if found < 0:
            return None
        return self.views().nth(found)

    def screenshot(self, element, suffix: str = "") -> Path:
        path = artifacts_dir() / f"{stem(self.name)}{suffix}.png"
        element.scroll_into_view_if_needed()
        element.screenshot(path=path, animations="disabled")
        return path


def shown(view) -> str:
    return view.evaluate(SHOWN)


def wait_until_changed(view, before: str, what: str, timeout_ms: int = REDRAW_TIMEOUT_MS) -> str:
    """Wait until the view shows something else than ``before`` (a new figure or new numbers); return it."""
    try:
        view.page.wait_for_function(
            f"([view, before]) => ({SHOWN})(view) !== before", arg=[view.element_handle(), before], timeout=timeout_ms
        )
    except Exception:
        pytest.fail(f"{what}: the view still shows the same figure and text after {timeout_ms / 1000:.0f} s")
    return shown(view)


def settle(view, quiet_s: float = 1.0, timeout_s: float = 60.0) -> tuple[str, float]:
    """Wait until the view has shown the same for ``quiet_s`` with the kernel idle; return it and the seconds waited.

    A slider that sends every value it passes while dragged (``continuous_update=True``) queues one redraw per value
    in the kernel: the figure catches up with the readout only when the queue is done."""
    start = time.monotonic()
    last, since = shown(view), start
    while True:
        time.sleep(0.25)
        now = shown(view)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s and view.page.evaluate(KERNEL_STATUS) == "idle":
            return now, since - start
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"the view still changes {timeout_s:.0f} s after the slider was dragged")


def drag(page, slider) -> None:
    """Drag the slider's handle by a quarter to three quarters of the track, as a person would with the mouse."""
    handle, track = slider.locator(".noUi-handle"), slider.locator(".noUi-target")
    handle.scroll_into_view_if_needed()
    h, t = handle.bounding_box(), track.bounding_box()
    x, y = h["x"] + h["width"] / 2, h["y"] + h["height"] / 2
    to = t["x"] + t["width"] * (0.75 if x < t["x"] + t["width"] / 2 else 0.25)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(to, y, steps=10)
    page.mouse.up()


def type_into_readout(slider, value: str) -> None:
    """Click the slider's readout, replace its text by ``value`` and press Enter, as a person would."""
    readout = slider.locator(".widget-readout")
    readout.click()
    readout.press("Control+A")
    readout.type(value)
    readout.press("Enter")


def click_button(view, label: str) -> None:
    view.locator("button.widget-button", has_text=label).click()


@pytest.fixture(scope="module", params=LECTURE, ids=stem)
def notebook(request, browser, lab):
    """The notebook ``request.param`` opened in a fresh page and run all; closed and its kernel shut down after."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(REDRAW_TIMEOUT_MS)
    nb = Notebook(page, request.param, lab)
    try:
        nb.open_and_run()
        yield nb
    finally:
        context.close()
        lab.shutdown_kernels()


# --------------------------------------------------------------------------------------------------
# Every notebook: runs, and its main view reacts
# --------------------------------------------------------------------------------------------------


def test_runs_all_cells(notebook):
    """Open, run all cells in fast mode: every code cell ran, no error output; a screenshot of the main view."""
    page_shot = artifacts_dir() / f"{stem(notebook.name)}_page.png"
    notebook.page.screenshot(path=page_shot)
    r = notebook.report
    details = "\n\n".join(r["errors"]) if r else ""
    if notebook.page_errors:
        details += "\n\nJavaScript errors on the page:\n" + "\n".join(notebook.page_errors)
    print(f"{notebook.name}: opened in {notebook.open_seconds:.1f} s, ran all in {notebook.run_seconds:.1f} s")
    assert not notebook.problem, f"{notebook.name}: {notebook.problem}\n{details}"
    assert r["kernel"] == "idle", f"{notebook.name}: kernel {r['kernel']}\n{notebook.lab.log_tail()}"
    assert not r["errors"], f"{notebook.name}: error output after run all:\n{details}"
    ran = f"{notebook.name}: {r['executed']} of {r['code']} code cells ran"
    assert r["code"] > 0 and r["executed"] == r["code"], ran
    view = notebook.main_view()
    assert view is not None, f"{notebook.name}: no widget view with a figure on the page"
    notebook.screenshot(view)


def test_slider_redraws(notebook):
    """Drag a slider of the notebook's first view with a slider (and no train button: its sliders set what the
    button trains, see the training tests): the readout, and the figure or the numbers of the view change."""
    notebook.require_clean_run()
    view = notebook.view_with(".widget-slider", without="button.widget-button")
    if view is None:
        pytest.skip(f"{notebook.name}: no slider outside a training view")
    slider = view.locator(".widget-slider").first
    readout = slider.locator(".widget-readout").inner_text()
    before = shown(view)
    drag(notebook.page, slider)
    wait_until_changed(view, before, f"{notebook.name}: slider dragged (readout was {readout})")
    after, seconds = settle(view)
    moved = slider.locator(".widget-readout").inner_text()
    assert moved != readout, "the figure changed but not the readout"
    assert after != before
    print(f"{notebook.name}: slider {readout} -> {moved}, the view settled {seconds:.1f} s after the first redraw")
    path = notebook.screenshot(view, "_slider")
    if notebook.name == README_NOTEBOOK and os.environ.get("RLCOURSE_README_SCREENSHOT") == "1":
        shutil.copy(path, ROOT / "figures" / f"browser_{stem(notebook.name)}.png")


@pytest.mark.parametrize("notebook", [n for n in LECTURE if n.startswith("03_")], indirect=True, ids=stem)
def test_check_box_redraws(notebook):
    """Notebook 03's view has check boxes instead of a slider: ticking one changes the figure and the status."""
    notebook.require_clean_run()
    view = notebook.main_view()
    before = shown(view)
    view.locator(".widget-checkbox input[type=checkbox]").first.click()
    wait_until_changed(view, before, f"{notebook.name}: check box clicked")
    notebook.screenshot(view, "_checkbox")


# --------------------------------------------------------------------------------------------------
# Training buttons
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("notebook", [n for n in LECTURE if n == OVERVIEW], indirect=True, ids=stem)
def test_overview_train_button(notebook):
    """Notebook 01's train view: choose A2C, type a budget into the steps readout, click "train": the curve of
    the new run is drawn and the status line gives its steps, within the typed budget."""
    from playwright.sync_api import expect

    notebook.require_clean_run()
    view = notebook.main_view()
    view.locator(".widget-dropdown select").first.select_option(label="A2C")
    status = view.locator(".widget-html-content").first
    # Choosing A2C redraws the empty axes of a pair not trained yet (notebook 01 trained TD3 only).
    expect(status).to_contain_text("not trained yet", timeout=REDRAW_TIMEOUT_MS)
    steps = view.locator(".widget-slider", has_text="steps")
    type_into_readout(steps, "3000")
    expect(steps.locator(".widget-readout")).to_have_text(re.compile(r"^\s*3,?000\s*$"))
    before = shown(view)
    click_button(view, "train")
    expect(status).to_contain_text("seed 0:", timeout=TRAIN_TIMEOUT_MS)
    after = wait_until_changed(view, before, "train clicked")
    assert after != before
    done = re.search(r"seed 0: ([\d,]+) steps in", status.inner_text())
    assert done, status.inner_text()
    trained = int(done.group(1).replace(",", ""))
    # The last finished episode's step count: within the budget, less than one CartPole episode (500) short of it.
    assert 2500 < trained <= 3000, status.inner_text()
    notebook.screenshot(view, "_trained")


@pytest.mark.parametrize("notebook", [n for n in LECTURE if n.startswith("02_")], indirect=True, ids=stem)
def test_learning_curves_train_button(notebook):
    """Notebook 02's learning curves: type λ = 0.9 into the λ readout, click "train A2C + GAE": the label
    says done and the figure changes (a new curve)."""
    from playwright.sync_api import expect

    notebook.require_clean_run()
    view = notebook.view_with("button.widget-button")
    lam = view.locator(".widget-slider", has_text="λ")
    type_into_readout(lam, "0.9")
    expect(lam.locator(".widget-readout")).to_have_text("0.90")
    before = shown(view)
    click_button(view, "train A2C + GAE")
    expect(view.locator("div.widget-label")).to_have_text("done", timeout=TRAIN_TIMEOUT_MS)
    wait_until_changed(view, before, "train A2C + GAE clicked")
    notebook.screenshot(view, "_trained")


PROGRESS_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": [
                "# notebook 01's train view as it is in full mode (progress=True): a click trains behind a tqdm bar\n",
                "from rlcourse.widgets import train_view\n",
                "\n",
                'train_view("a2c", "CartPole-v1", steps=20_000)',
            ],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


# tqdm's notebook bar: an HBox of a label, a progress bar and a text ("45% ... 4480/9984 [00:00<00:00, ...]").
PROGRESS = ".widget-output .widget-hprogress"
WATCH_PROGRESS = (
    """(view) => {
  window.rlcourseProgress = [];
  const record = () => {
    const bar = view.querySelector('"""
    + PROGRESS
    + """');
    if (bar && bar.offsetWidth > 0) window.rlcourseProgress.push((bar.closest('.widget-hbox') || bar).innerText);
  };
  new MutationObserver(record).observe(view, {subtree: true, childList: true, attributes: true, characterData: true});
}"""
)


def test_train_button_shows_progress_and_curve(browser, lab):
    """Click "train" in the training view of notebook 01 with its progress bar on (as in full mode; fast mode,
    the one the tests run, turns the bar off): the bar appears in the view, then the learning curve."""
    from playwright.sync_api import expect

    name = "train_progress.ipynb"
    (lab.root / name).write_text(json.dumps(PROGRESS_NOTEBOOK))
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(REDRAW_TIMEOUT_MS)
    try:
        nb = Notebook(page, name, lab)
        nb.open_and_run()
        assert nb.ran_cleanly, nb.problem or nb.report
        view = nb.main_view()
        before = shown(view)
        # The bar lives only while the run trains (tqdm's leave=False), maybe a second: a MutationObserver records it.
        view.evaluate(WATCH_PROGRESS)
        click_button(view, "train")
        try:  # a screenshot with the bar if it is still there, for the artefacts
            view.locator(PROGRESS).first.wait_for(state="visible", timeout=10_000)
            nb.screenshot(view, "_progress")
        except Exception:
            pass
        status = view.locator(".widget-html-content").first
        expect(status).to_contain_text("seed 0:", timeout=TRAIN_TIMEOUT_MS)
        wait_until_changed(view, before, "train clicked")
        expect(view.locator(".widget-output img")).to_be_visible()
        assert re.search(r"seed 0: [\d,]+ steps in", status.inner_text()), status.inner_text()
        seen = page.evaluate("window.rlcourseProgress")
        assert seen, "no progress bar appeared in the view while it trained"
        assert any(re.search(r"\d+%.*\d+/\d+", text, re.S) for text in seen), seen
        nb.screenshot(view, "_trained")
    finally:
        context.close()
        lab.shutdown_kernels()


ERROR_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": [
                "import ipywidgets as widgets\n",
                "\n",
                "out = widgets.Output()\n",
                "with out:  # the Output shows the traceback and swallows the error, as in a view's callback\n",
                '    raise ValueError("raised in a widget")\n',
                "out",
            ],
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ['raise ZeroDivisionError("raised in a cell")'],
        },
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": ["print('never')"]},
    ],
    "metadata": PROGRESS_NOTEBOOK["metadata"],
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_error_outputs_are_detected(browser, lab):
    """The check of test_runs_all_cells itself: a notebook with an error in a cell and one in a widget's Output
    is reported, with both errors, and the cell after the error does not count as run."""
    name = "errors.ipynb"
    (lab.root / name).write_text(json.dumps(ERROR_NOTEBOOK))
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(REDRAW_TIMEOUT_MS)
    try:
        nb = Notebook(page, name, lab)
        nb.open_and_run()
        assert not nb.problem
        page.wait_for_function(f"() => ({RUN_REPORT})().errors.length >= 2", timeout=REDRAW_TIMEOUT_MS)
        report = page.evaluate(RUN_REPORT)
        errors = "\n".join(report["errors"])
        assert "ZeroDivisionError: raised in a cell" in errors, errors
        assert "ValueError: raised in a widget" in errors, errors
        assert (report["code"], report["executed"]) == (3, 2), report
        assert not nb.ran_cleanly
    finally:
        context.close()
        lab.shutdown_kernels()
