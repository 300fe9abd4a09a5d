"""The widgets rendered by JupyterLab in a real browser: a notebook that shows SubmitForm and
WorkloadMonitor runs in a kernel of JupyterLab with the extension (tests/browser_helpers.py: the
local cluster of 2 virtual GPUs, Debian's chromium driven by Playwright). The form is filled and
sent with the mouse and keyboard; the monitor shows the new workload live.

The screenshot goes to $RUNAI_SCREENSHOTS (``make screenshots`` sets docs/images), else to a temp dir.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
import requests

from browser_helpers import CHROMIUM_ARGS, LabServer, chromium_or_skip
from browser_helpers import jp_asyncio_loop, jp_server_cleanup  # noqa: F401 (fixtures: see browser_helpers)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = chromium_or_skip()

pytestmark = pytest.mark.timeout(240)

TIMEOUT = 30_000  # ms: a kernel starting, the scheduler placing a workload

NOTEBOOK_CELLS = (
    "from jupyter_runai.widgets import SubmitForm, WorkloadMonitor\n\nform = SubmitForm()\nform",
    "monitor = WorkloadMonitor()\nmonitor",
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = LabServer(tmp_path_factory.mktemp("widgets-lab"))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, server.dirs["root"] / "widgets.ipynb")
    server.start()
    yield server
    server.stop()


def widget(output, kind: str, label: str):
    """The ipywidgets control of class ``widget-<kind>`` whose description is ``label``."""
    return output.locator(f".widget-{kind}").filter(has=output.page.locator(f'label:text-is("{label}")'))


def test_submit_form_and_monitor_in_jupyterlab(lab, tmp_path_factory):
    code, body = lab.api("POST", "workloads", {"name": "already-there", "command": "sleep 600",
                                               "resources": {"gpu": 1}})
    assert code == 201, body
    # the notebook's kernel, started as JupyterLab would (a session): the page opens on it, asking nothing
    session = requests.post(f"{lab.url}api/sessions", headers={"Authorization": f"token {lab.token}"}, timeout=30,
                            json={"path": "widgets.ipynb", "name": "widgets.ipynb", "type": "notebook",
                                  "kernel": {"name": "python3"}})
    assert session.status_code == 201, session.text
    shots = Path(os.environ.get("RUNAI_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(TIMEOUT)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{lab.url}lab/tree/widgets.ipynb?token={lab.token}")
        page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1, timeout=60_000)
        # JupyterLab may still ask which kernel (there are several kernel specs): the session's one
        select = page.locator('.jp-Dialog button.jp-mod-accept:has-text("Select")')
        try:
            select.click(timeout=5_000)
        except playwright_api.TimeoutError:
            pass  # it did not ask
        expect(page.locator(".jp-Dialog")).to_have_count(0)
        page.locator('.lm-MenuBar-itemLabel:text-is("Run")').click()
        page.locator('.lm-Menu-itemLabel:text-is("Run All Cells")').click()

        outputs = page.locator(".jp-OutputArea-output")
        form, monitor = outputs.nth(0), outputs.nth(1)
        # the form came from the server: its defaults, the fraction's field only in that mode
        expect(form.locator('.widget-button:has-text("Submit")')).to_be_visible(timeout=60_000)
        expect(widget(form, "dropdown", "project").locator("select")).to_have_value(re.compile(".+"))
        expect(widget(form, "text", "fraction")).to_be_hidden()
        # the monitor lists what runs already
        expect(monitor.locator('.widget-label:text-is("already-there")')).to_be_visible()

        widget(form, "text", "name").locator("input").fill("from-the-browser")
        form.locator('.widget-toggle-button:text-is("fraction")').click()
        expect(widget(form, "text", "fraction").locator("input")).to_have_value("0.5")
        widget(form, "textarea", "command").locator("textarea").fill("sleep 600")
        form.locator('.widget-button:has-text("Submit")').click()

        expect(form.locator(".widget-html")).to_contain_text("Submitted training from-the-browser")
        new_row = monitor.locator(".widget-hbox").filter(has=page.locator('.widget-label:text-is("from-the-browser")'))
        expect(new_row.locator(".widget-label").nth(2)).to_have_text("Running", timeout=TIMEOUT)
        expect(new_row.locator(".widget-label").nth(3)).to_have_text("0.5 GPU")
        assert lab.workload("from-the-browser")["spec"]["resources"]["gpu"] == 0.5

        # the row's buttons are wide enough for their words
        for label in ("stop", "resume", "delete", "logs"):
            button = new_row.locator(f'.widget-button:has-text("{label}")')
            widths = button.evaluate("b => [b.scrollWidth, b.clientWidth]")
            assert widths[0] <= widths[1], f"{label} is cut off: its words need {widths[0]}px, it has {widths[1]}px"
        expect(widget(form, "dropdown", "priority").locator("select option:checked")).to_have_text("(by kind)")

        page.locator('li.lm-TabBar-tab[data-id="filebrowser"]').click()  # the notebook alone in the picture
        page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})  # no focus ring in the picture
        page.wait_for_timeout(800)
        page.screenshot(path=str(shots / "widgets-in-jupyterlab.png"))
        assert not errors, errors
        browser.close()
