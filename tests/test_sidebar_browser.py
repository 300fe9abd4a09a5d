"""The JupyterLab sidebar in a real browser: JupyterLab with the extension (its server side on
the local cluster of 2 virtual GPUs, its prebuilt labextension), Debian's chromium driven by
Playwright. The tests run in order in one page, as a person would use it.

Screenshots go to $RUNAI_SCREENSHOTS (``make screenshots`` sets docs/images), else to a temp dir.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from browser_helpers import CHROMIUM_ARGS, LabServer, chromium_path

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = chromium_path()
if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("the browser tests need Debian's chromium (apt-get install chromium); .ci/run installs it")
    pytest.skip("no system chromium (apt-get install chromium)", allow_module_level=True)

LABEXT = Path(__file__).resolve().parents[1] / "jupyter_runai" / "labextension" / "static" / "style.js"
if not LABEXT.exists():
    pytest.skip("the labextension is not built (pip install -e . builds it)", allow_module_level=True)

pytestmark = pytest.mark.timeout(240)

TIMEOUT = 30_000  # ms, for anything the scheduler does


@pytest.fixture
def jp_asyncio_loop():
    """pytest-jupyter's autouse loop fixture (active when the REST tests load the plugin) would
    close the loop Playwright's sync API runs on this thread; these tests need no loop of theirs."""
    yield None


@pytest.fixture
def jp_server_cleanup():
    """Its partner (cleans an in-process server these tests do not have)."""
    yield


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = LabServer(tmp_path_factory.mktemp("lab")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("RUNAI_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def page(lab):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
        page.goto(lab.lab_url)
        page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
        page.errors = errors  # type: ignore[attr-defined]
        yield page
        context.close()
        browser.close()


def row(page, name: str):
    return page.locator(f'#jupyter-runai-sidebar li.jp-RunaiWorkload[data-name="{name}"]')


def chip(page, name: str):
    return row(page, name).locator(".jp-RunaiChip")


def open_form(page):
    page.click("#jupyter-runai-sidebar button.jp-RunaiSidebar-new")
    page.wait_for_selector("#jupyter-runai-new-workload .jp-RunaiForm-form")
    return page.locator("#jupyter-runai-new-workload")


def submit_form(page, *, name: str, mode: str = "whole", gpu: str | None = None, fraction: str | None = None,
                gpu_memory: str | None = None, command: str | None = None, kind: str = "training") -> None:
    form = open_form(page)
    form.locator("#jp-runai-kind").select_option(kind)
    form.locator("#jp-runai-name").fill(name)
    form.locator(f'input[name="gpu_mode"][value="{mode}"]').check()
    if gpu is not None:
        form.locator("#jp-runai-gpu").fill(gpu)
    if fraction is not None:
        form.locator("#jp-runai-fraction").fill(fraction)
    if gpu_memory is not None:
        form.locator("#jp-runai-gpu_memory").fill(gpu_memory)
    if command is not None:
        form.locator("#jp-runai-command").fill(command)
    form.locator("button.jp-RunaiForm-submit").click()


def shoot(page, path: Path) -> None:
    """A screenshot of the whole window, without passing toasts or a row's flash."""
    page.wait_for_timeout(1600)
    hidden = page.add_style_tag(content=".Toastify { visibility: hidden !important; }")  # passing toasts
    page.mouse.move(700, 790)
    page.screenshot(path=str(path))
    hidden.evaluate("style => style.remove()")  # later tests see (and click) notifications


def confirm(page, label: str) -> None:
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_be_visible()
    dialog.locator(f'button.jp-Dialog-button:has-text("{label}")').click()
    expect(dialog).to_have_count(0)


def test_the_panel_opens_with_the_project_and_its_quota(page):
    tab = page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-sidebar"]')
    expect(tab).to_be_visible()
    tab.click()
    panel = page.locator("#jupyter-runai-sidebar")
    expect(panel.locator(".jp-RunaiSidebar-title")).to_have_text("GPU workloads")
    expect(panel.locator(".jp-RunaiSidebar-projectSelect")).to_have_value("default")
    expect(panel.locator(".jp-RunaiQuota-legend")).to_contain_text("2 deserved")
    expect(panel.locator(".jp-RunaiSidebar-live")).to_have_text(re.compile("live"))
    expect(panel.locator(".jp-RunaiSidebar-message")).to_contain_text("No workloads yet")


def lab_settings(lab, method: str = "GET", raw: str | None = None) -> requests.Response:
    """The extension's settings as JupyterLab's setting registry serves them (and keeps a user's)."""
    return requests.request(method, lab.url + "lab/api/settings/jupyter-runai:plugin", timeout=10,
                            json=None if raw is None else {"raw": raw},
                            headers={"Authorization": f"token {lab.token}"})


def test_the_settings_schema_is_served_with_its_bounds(lab):
    response = lab_settings(lab)
    assert response.status_code == 200, response.text
    body = response.json()
    props = body["schema"]["properties"]
    assert props["livePollSeconds"]["default"] == 30 and props["fallbackPollSeconds"]["default"] == 3
    assert props["notifications"]["enum"] == ["all", "failures", "off"]
    assert props["defaultView"]["default"] == "cards"
    # the registry refuses a poll outside the schema's bounds, and keeps one inside them
    assert lab_settings(lab, "PUT", '{"livePollSeconds": 0}').status_code == 400
    assert lab_settings(lab, "PUT", '{"ageTickSeconds": 2}').status_code == 204
    assert lab_settings(lab).json()["settings"]["ageTickSeconds"] == 2
    assert lab_settings(lab, "PUT", "{}").status_code == 204


def field_error(form, field: str):
    return form.locator(f'.jp-RunaiField[data-field="{field}"] .jp-RunaiField-error')


def test_every_invalid_field_shows_its_error_on_the_first_submit(page, lab, shots):
    form = open_form(page)
    # the local cluster runs no image: none is filled in
    expect(form.locator("#jp-runai-image")).to_have_value("")
    form.locator("#jp-runai-name").fill("Not_A_Name")
    form.locator('input[name="gpu_mode"][value="memory"]').check()
    form.locator("#jp-runai-gpu_memory").fill("100Gi")  # the devices have 24Gi
    form.locator("#jp-runai-cpu").fill("100000")  # no node has that many
    form.locator("#jp-runai-memory").fill("1Pi")
    form.locator("#jp-runai-command").fill("")
    form.locator("button.jp-RunaiForm-submit").click()
    errors = {"name": "lowercase letters", "gpu_memory": "the largest device", "cpu": "the largest node",
              "memory": "the largest node", "command": "does not run images"}
    for field, words in errors.items():
        expect(field_error(form, field)).to_contain_text(words)
        # beside its field a message does not name the field again
        assert not field_error(form, field).text_content().startswith(field), field
    expect(form.locator("#jp-runai-name")).to_have_attribute("aria-invalid", "true")
    assert lab.api("GET", "workloads")[1]["workloads"] == []  # nothing was sent
    # fixing a field clears its error
    form.locator("#jp-runai-name").fill("fine-name")
    expect(field_error(form, "name")).to_be_empty()
    # Whole GPUs: more than a node has, or none at all, is refused beside the count
    form.locator('input[name="gpu_mode"][value="whole"]').check()
    for count in ("5", "", "0"):
        form.locator("#jp-runai-gpu").fill(count)
        form.locator("button.jp-RunaiForm-submit").click()
        expect(field_error(form, "gpu")).to_contain_text("from 1 to 2")
    assert lab.api("GET", "workloads")[1]["workloads"] == []
    form.locator("button.jp-RunaiForm-cancel").click()
    expect(page.locator("#jupyter-runai-new-workload")).to_have_count(0)


def test_a_press_on_stop_that_spans_a_refresh_lands(page, lab):
    code, body = lab.api("POST", "workloads", {"name": "press-me", "command": "sleep 600"})
    assert code == 201, body
    expect(chip(page, "press-me")).to_have_text("Running", timeout=TIMEOUT)
    # a Logs tab reads its log once: one stream, none started and cancelled at once
    page.evaluate("""() => {
        window.runaiLogStreams = 0;
        const original = window.fetch;
        window.fetch = function (input, init) {
            const url = typeof input === 'string' ? input : input.url;
            if (url.includes('/press-me/logs?')) { window.runaiLogStreams++; }
            return original.call(this, input, init);
        };
    }""")
    row(page, "press-me").locator("button.jp-RunaiWorkload-logs").click()
    logs_tab = page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-logs-default-press-me"]')
    expect(page.locator("#jupyter-runai-logs-default-press-me .jp-RunaiLogs-status")).to_have_text("following…")
    assert page.evaluate("window.runaiLogStreams") == 1
    logs_tab.locator(".lm-TabBar-tabCloseIcon").click()

    stop = row(page, "press-me").locator("button.jp-RunaiWorkload-stop")
    box = stop.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    # while the button is held, a burst of events refreshes the list
    for i in range(3):
        code, body = lab.api("POST", "workloads", {"name": f"burst-{i}", "command": "true"})
        assert code == 201, body
    expect(chip(page, "burst-2")).to_have_text("Succeeded", timeout=TIMEOUT)
    page.mouse.up()
    confirm(page, "Stop")
    expect(chip(page, "press-me")).to_have_text("Stopped", timeout=TIMEOUT)

    # the same in its details: Resume held while events re-render the view
    row(page, "press-me").locator("button.jp-RunaiWorkload-name").click()
    view = page.locator("#jupyter-runai-details-default-press-me")
    resume = view.locator("button.jp-RunaiDetails-resume")
    box = resume.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    for i in range(3, 6):
        code, body = lab.api("POST", "workloads", {"name": f"burst-{i}", "command": "true"})
        assert code == 201, body
    expect(chip(page, "burst-5")).to_have_text("Succeeded", timeout=TIMEOUT)
    page.wait_for_timeout(600)  # the view re-reads at most every 0.4 s: let it render the burst
    page.mouse.up()
    expect(view.locator(".jp-RunaiChip").first).to_have_text("Running", timeout=TIMEOUT)
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-details-default-press-me"] .lm-TabBar-tabCloseIcon').click()

    lab.end_workloads()
    expect(page.locator("#jupyter-runai-sidebar li.jp-RunaiWorkload")).to_have_count(0, timeout=TIMEOUT)


def test_an_evicted_workload_says_why_and_for_what(page, lab):
    code, body = lab.api("POST", "workloads", {"name": "low", "command": "sleep 600", "resources": {"gpu": 2}})
    assert code == 201, body
    expect(chip(page, "low")).to_have_text("Running", timeout=TIMEOUT)
    code, body = lab.api("POST", "workloads", {"name": "urgent", "command": "sleep 600", "resources": {"gpu": 1},
                                               "priority_class": "build-preemptible"})
    assert code == 201, body
    expect(chip(page, "urgent")).to_have_text("Running", timeout=TIMEOUT)
    expect(chip(page, "low")).to_have_text("Pending")
    expect(row(page, "low").locator(".jp-RunaiWorkload-evicted")).to_have_text(
        "Evicted to make room for other work: preempted by default/urgent (higher priority in project default)")
    # the user hears of it, once, with why
    expect(toast(page, "low was evicted")).to_have_count(1)
    expect(toast(page, "low was evicted")).to_contain_text("default/urgent")
    lab.end_workloads()
    expect(page.locator("#jupyter-runai-sidebar li.jp-RunaiWorkload")).to_have_count(0, timeout=TIMEOUT)


def toast(page, text: str):
    """JupyterLab's notifications on screen that say ``text``."""
    return page.locator(".Toastify__toast", has_text=text)


def test_a_failed_job_notifies_once_with_a_way_to_open_it(page, lab, shots):
    # the panel is open, has read the server and follows it (what it read at load is history: not told)
    panel = page.locator("#jupyter-runai-sidebar")
    if not panel.is_visible():  # this test run on its own
        page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-sidebar"]').click()
    expect(panel.locator(".jp-RunaiSidebar-live")).to_have_text(re.compile("live"))
    code, body = lab.api("POST", "workloads", {"name": "notify-fail", "command": "echo oops; exit 3"})
    assert code == 201, body
    failed = toast(page, "Training notify-fail failed")
    expect(failed).to_have_count(1, timeout=TIMEOUT)
    expect(chip(page, "notify-fail")).to_have_text("Failed")
    # a later change is another notification; the failure is not told again
    code, body = lab.api("POST", "workloads", {"name": "notify-ok", "command": "true"})
    assert code == 201, body
    expect(toast(page, "Training notify-ok succeeded")).to_have_count(1, timeout=TIMEOUT)
    expect(failed).to_have_count(1)
    page.mouse.move(700, 790)
    page.wait_for_timeout(1000)  # the toasts' slide-in
    page.screenshot(path=str(shots / "notification.png"))
    failed.locator("button.jp-toast-button", has_text="Details").click()
    details = page.locator("#jupyter-runai-details-default-notify-fail")
    expect(details.locator(".jp-RunaiChip").first).to_have_text("Failed")
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-details-default-notify-fail"] .lm-TabBar-tabCloseIcon').click()
    lab.end_workloads()
    expect(page.locator("#jupyter-runai-sidebar li.jp-RunaiWorkload")).to_have_count(0, timeout=TIMEOUT)
    # deleting them told nothing
    expect(toast(page, "notify-ok")).to_have_count(1)


def copied_line(page) -> str:
    """The line the "Copy as runai submit" dialog shows (and put on the clipboard); the dialog closed."""
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-RunaiCopy-line")).to_be_visible()
    line = dialog.locator(".jp-RunaiCopy-line").input_value()
    dialog.locator('button.jp-Dialog-button:has-text("Close")').click()
    expect(dialog).to_have_count(0)
    return line


def spec_of_line(line: str) -> dict:
    """What the runai CLI submits for a copied line: its own parser, the model's defaults filled in."""
    from jupyter_runai.models import WorkloadSpec
    from jupyter_runai.submit_args import parse_submit

    argv = shlex.split(line)
    assert argv[:2] == ["runai", "submit"], line
    return WorkloadSpec.model_validate(parse_submit(argv[2:])).model_dump(mode="json")


def test_copy_as_submit_clone_and_the_queue_position(page, lab, shots):
    code, body = lab.api("POST", "workloads", {"name": "holder", "command": "sleep 600", "resources": {"gpu": 2},
                                               "preemptible": False})
    assert code == 201, body
    expect(chip(page, "holder")).to_have_text("Running", timeout=TIMEOUT)
    original = {"name": "orig-1", "command": "echo \"it's done\"; sleep 600",
                "resources": {"gpu": 0.5, "memory": "1Gi"}, "environment": {"GREETING": "hello world"},
                "priority_class": "build-preemptible"}
    code, body = lab.api("POST", "workloads", original)
    assert code == 201, body
    expect(chip(page, "orig-1")).to_have_text("Pending")
    # a pending workload says where it is in its project's queue
    expect(row(page, "orig-1").locator(".jp-RunaiWorkload-queue")).to_have_text("first in its project\u2019s queue")

    row(page, "orig-1").locator("button.jp-RunaiWorkload-name").click()
    details = page.locator("#jupyter-runai-details-default-orig-1")
    expect(details.locator(".jp-RunaiDetails-queue")).to_have_text("first in its project\u2019s queue")
    details.locator("button.jp-RunaiDetails-copy").click()
    line = copied_line(page)
    # the runai CLI, given the line, submits the same spec (quoting, environment, priority and all)
    server_spec = lab.workload("orig-1")["spec"]
    assert spec_of_line(line) == server_spec, line

    # Clone: the form, filled in from the spec, under the next free name
    details.locator("button.jp-RunaiDetails-clone").click()
    form = page.locator("#jupyter-runai-new-workload")
    expect(form.locator("#jp-runai-name")).to_have_value("orig-2")
    expect(form.locator('input[name="gpu_mode"][value="fraction"]')).to_be_checked()
    expect(form.locator("#jp-runai-fraction")).to_have_value("0.5")
    expect(form.locator("#jp-runai-memory")).to_have_value("1Gi")
    expect(form.locator("#jp-runai-command")).to_have_value(original["command"])
    expect(form.locator("#jp-runai-environment")).to_have_value("GREETING=hello world")
    expect(form.locator("#jp-runai-priority_class")).to_have_value("build-preemptible")
    shoot(page, shots / "clone-form.png")
    # the form's own copy: the line of what Submit would send
    form.locator("button.jp-RunaiForm-copy").click()
    form_line = copied_line(page)
    assert spec_of_line(form_line) == {**server_spec, "name": "orig-2"}, form_line
    form.locator("button.jp-RunaiForm-submit").click()
    expect(page.locator("#jupyter-runai-new-workload")).to_have_count(0)
    # the focus goes to the new row, not to the page body
    name_button = row(page, "orig-2").locator("button.jp-RunaiWorkload-name")
    expect(name_button).to_be_focused()
    assert lab.workload("orig-2")["spec"] == {**server_spec, "name": "orig-2"}
    expect(row(page, "orig-2").locator(".jp-RunaiWorkload-queue")).to_have_text("2nd in its project\u2019s queue")
    # Clone from the form: the notification of the submit offers another like it
    toast(page, "Submitted training orig-2").locator("button.jp-toast-button", has_text="Clone").click()
    form = page.locator("#jupyter-runai-new-workload")
    expect(form.locator("#jp-runai-name")).to_have_value("orig-3")
    expect(form.locator("#jp-runai-environment")).to_have_value("GREETING=hello world")
    form.locator("button.jp-RunaiForm-cancel").click()
    expect(form).to_have_count(0)

    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-details-default-orig-1"] .lm-TabBar-tabCloseIcon').click()
    lab.end_workloads()
    expect(page.locator("#jupyter-runai-sidebar li.jp-RunaiWorkload")).to_have_count(0, timeout=TIMEOUT)


def test_details_at_1280_px_with_the_sidebar_open_keep_the_pods_message_column(page, lab):
    code, body = lab.api("POST", "workloads", {"name": "ddp-fails", "kind": "distributed", "workers": 2,
                                               "command": "echo start; exit 3", "resources": {"gpu": 0.5}})
    assert code == 201, body
    expect(chip(page, "ddp-fails")).to_have_text("Failed", timeout=TIMEOUT)
    # a workload of several pods: its request reads per pod, and its age says since when
    expect(row(page, "ddp-fails").locator(".jp-RunaiWorkload-gpu")).to_have_text("0.5 GPU per pod")
    expect(row(page, "ddp-fails").locator(".jp-RunaiWorkload-age")).to_have_text(re.compile(r"^finished (just now|\d+s ago)$"))
    # its meta line wraps in the sidebar; no line starts with a separator (each dot left of its item,
    # visible only where an item is on its line's left)
    dots = row(page, "ddp-fails").locator(".jp-RunaiWorkload-meta").evaluate(
        "m => { const box = m.getBoundingClientRect(); const lines = new Set(); const out = [];"
        " for (const s of m.querySelectorAll(':scope > span')) { const r = s.getBoundingClientRect();"
        "   lines.add(Math.round(r.top)); const before = getComputedStyle(s, '::before');"
        "   if (before.content === 'none' || before.content === 'normal') continue;"
        "   const x = r.left + parseFloat(before.left);"
        "   const clipped = getComputedStyle(m).overflow === 'hidden' && x < box.left;"
        "   out.push({text: s.textContent, shown: !clipped, lineStart: r.left - box.left < 1}); }"
        " return {lines: lines.size, dots: out}; }")
    assert dots["lines"] >= 2, dots  # it does wrap at this width
    assert not [d for d in dots["dots"] if d["lineStart"] and d["shown"]], dots
    assert page.viewport_size["width"] == 1280
    expect(page.locator("#jupyter-runai-sidebar")).to_be_visible()
    row(page, "ddp-fails").locator("button.jp-RunaiWorkload-name").click()
    details = page.locator("#jupyter-runai-details-default-ddp-fails")
    pods = details.locator("table.jp-RunaiDetails-pods")
    # every pod with its message (whichever failed first, the others were ended for it)
    messages = pods.locator("td.jp-RunaiDetails-podMessage")
    expect(messages.filter(has_text=re.compile("exited with code 3|another pod"))).to_have_count(3)
    # every column in view: the table needs no sideways scroll, the Message cells lie inside the tab
    pods.element_handle().wait_for_element_state("stable")
    assert pods.evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth + 1"), "the pods table scrolls"
    right = details.bounding_box()["x"] + details.bounding_box()["width"]
    for cell in pods.locator("td.jp-RunaiDetails-podMessage").all():
        box = cell.bounding_box()
        assert box["width"] > 60 and box["x"] + box["width"] <= right + 1, box
    # a node's name is on one line
    assert pods.locator("td.jp-RunaiDetails-node").evaluate_all(
        "cells => cells.every(c => { const r = document.createRange(); r.selectNodeContents(c); "
        "return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size === 1; })")
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-details-default-ddp-fails"] .lm-TabBar-tabCloseIcon').click()
    lab.end_workloads()
    expect(page.locator("#jupyter-runai-sidebar li.jp-RunaiWorkload")).to_have_count(0, timeout=TIMEOUT)


def test_show_gpu_workloads_panel_moves_the_focus_into_it(page):
    page.locator("li.lm-TabBar-tab", has_text="Launcher").first.click()
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("Show GPU workloads panel")
    page.keyboard.press("Enter")
    expect(page.locator("#jupyter-runai-sidebar button.jp-RunaiSidebar-new")).to_be_focused()


def test_a_training_job_goes_pending_running_succeeded_and_its_logs_read(page, lab, shots):
    # both GPUs taken, so the job waits first
    submit_form(page, name="blocker", gpu="2", command="sleep 600")
    expect(chip(page, "blocker")).to_have_text("Running", timeout=TIMEOUT)
    submit_form(page, name="train-1", gpu="1",
                command="echo start of train-1; sleep 3; echo done from the sidebar; echo to stderr >&2")
    expect(chip(page, "train-1")).to_have_text("Pending")
    expect(row(page, "train-1").locator(".jp-RunaiWorkload-pendingSummary")).to_have_text("Waiting for free GPUs")

    # a fraction that cannot fit says why, in words
    submit_form(page, name="frac", mode="fraction", fraction="0.75", command="sleep 600")
    expect(chip(page, "frac")).to_have_text("Pending")
    reason = row(page, "frac").locator(".jp-RunaiWorkload-pending")
    expect(reason.locator(".jp-RunaiWorkload-pendingSummary")).to_have_text("Waiting for room on a GPU")
    expect(reason.locator(".jp-RunaiWorkload-pendingDetails").first).to_contain_text("Needs 0.75 of a GPU")
    expect(row(page, "frac").locator(".jp-RunaiWorkload-gpu")).to_have_text("0.75 GPU")
    shoot(page, shots / "sidebar-panel.png")

    # delete the fraction (with confirmation)
    row(page, "frac").locator("button.jp-RunaiWorkload-delete").click()
    confirm(page, "Delete")
    expect(row(page, "frac")).to_have_count(0, timeout=TIMEOUT)

    # stop the blocker (with confirmation): the job runs, then succeeds
    row(page, "blocker").locator("button.jp-RunaiWorkload-stop").click()
    confirm(page, "Stop")
    expect(chip(page, "blocker")).to_have_text("Stopped", timeout=TIMEOUT)
    expect(chip(page, "train-1")).to_have_text("Running", timeout=TIMEOUT)

    # its logs, followed live while it runs
    row(page, "train-1").locator("button.jp-RunaiWorkload-logs").click()
    logs = page.locator("#jupyter-runai-logs-default-train-1")
    expect(logs.locator(".jp-RunaiLogs-output")).to_contain_text("start of train-1", timeout=TIMEOUT)
    expect(logs.locator(".jp-RunaiLogs-output")).to_contain_text("done from the sidebar", timeout=TIMEOUT)
    expect(logs.locator(".jp-RunaiLogs-output")).to_contain_text("to stderr")
    expect(logs.locator(".jp-RunaiLogs-status")).to_contain_text("end of log", timeout=TIMEOUT)
    expect(chip(page, "train-1")).to_have_text("Succeeded", timeout=TIMEOUT)
    expect(logs.locator(".jp-RunaiChip")).to_have_text("Succeeded")
    shoot(page, shots / "logs.png")

    # resume the stopped blocker from the list, then the filters
    row(page, "blocker").locator("button.jp-RunaiWorkload-resume").click()
    expect(chip(page, "blocker")).to_have_text("Running", timeout=TIMEOUT)
    page.select_option("#jupyter-runai-sidebar .jp-RunaiSidebar-statusFilter", "finished")
    expect(row(page, "blocker")).to_have_count(0)
    expect(row(page, "train-1")).to_have_count(1)
    page.select_option("#jupyter-runai-sidebar .jp-RunaiSidebar-statusFilter", "all")
    page.select_option("#jupyter-runai-sidebar .jp-RunaiSidebar-kindFilter", "workspace")
    expect(page.locator("#jupyter-runai-sidebar li.jp-RunaiWorkload")).to_have_count(0)
    page.select_option("#jupyter-runai-sidebar .jp-RunaiSidebar-kindFilter", "all")
    expect(page.locator("#jupyter-runai-sidebar li.jp-RunaiWorkload")).to_have_count(2)
    # all projects (runai list -A): each row names its project
    page.select_option("#jupyter-runai-sidebar .jp-RunaiSidebar-projectSelect", "*")
    expect(row(page, "train-1").locator(".jp-RunaiWorkload-project")).to_have_text("default")
    page.select_option("#jupyter-runai-sidebar .jp-RunaiSidebar-projectSelect", "default")
    expect(row(page, "train-1").locator(".jp-RunaiWorkload-project")).to_have_count(0)


def tqdm_like_command(epochs: int = 3) -> str:
    """A shell command that writes what a training script with tqdm and coloured logging
    does: bars redrawn with \\r, ANSI bold and colours, a line end only after each bar."""
    parts = []
    for epoch in range(1, epochs + 1):
        parts.append(f"printf '\\033[1;34mepoch {epoch}/{epochs}\\033[0m\\n'")
        for i in range(11):
            bar = "#" * i + " " * (10 - i)
            parts.append(f"printf '\\r{i * 10:3d}%%|{bar}| {i}/10 [00:0{i // 4}<00:0{(10 - i) // 4}, 4.1it/s]'")
            parts.append("sleep 0.03")
        parts.append(f"printf '\\n\\033[32mloss 0.{9 - epoch}1\\033[0m accuracy 0.{6 + epoch}\\n'")
    parts.append("printf '\\033[1;31mERROR\\033[0m a made-up failure, in red\\n'")
    return "; ".join(parts)


def test_a_log_with_carriage_returns_and_ansi_codes_reads_as_in_a_terminal(page, lab, shots):
    code, body = lab.api("POST", "workloads", {"name": "tqdm-1", "command": tqdm_like_command()})
    assert code == 201, body
    row(page, "tqdm-1").locator("button.jp-RunaiWorkload-logs").click()
    logs = page.locator("#jupyter-runai-logs-default-tqdm-1")
    expect(logs.locator(".jp-RunaiLogs-status")).to_contain_text("end of log", timeout=TIMEOUT)
    lines = logs.locator(".jp-RunaiLogs-line:not(:empty)")
    # each progress bar is one line at its last state, not eleven bars run together
    bar = "100%|##########| 10/10 [00:02<00:00, 4.1it/s]"
    expect(lines).to_have_text([
        "epoch 1/3", bar, "loss 0.81 accuracy 0.7",
        "epoch 2/3", bar, "loss 0.71 accuracy 0.8",
        "epoch 3/3", bar, "loss 0.61 accuracy 0.9",
        "ERROR a made-up failure, in red",
    ])
    text = logs.locator(".jp-RunaiLogs-output").inner_text()
    assert "\x1b" not in text and "[0m" not in text and "[1;34m" not in text
    # colours and bold as styles, in the theme's ANSI palette
    expect(logs.locator(".jp-RunaiAnsi-bold.jp-RunaiAnsi-fg-4").first).to_have_text("epoch 1/3")
    expect(logs.locator(".jp-RunaiAnsi-fg-2").first).to_have_text("loss 0.81")
    error = logs.locator(".jp-RunaiAnsi-bold.jp-RunaiAnsi-fg-1")
    expect(error).to_have_text("ERROR")
    expect(error).to_have_css("color", "rgb(231, 92, 88)")
    expect(error).to_have_css("font-weight", "700")
    shoot(page, shots / "logs-progress-bar.png")

    # search: the matching lines are marked, Enter goes from one to the next
    search = logs.locator("input.jp-RunaiLogs-search")
    search.fill("loss")
    expect(logs.locator(".jp-RunaiLogs-matches")).to_have_text("3 lines")
    search.press("Enter")
    expect(logs.locator(".jp-RunaiLogs-matches")).to_have_text("1 of 3")
    expect(logs.locator(".jp-RunaiLogs-line.jp-mod-current")).to_have_text("loss 0.81 accuracy 0.7")
    search.press("Enter")
    expect(logs.locator(".jp-RunaiLogs-line.jp-mod-current")).to_have_text("loss 0.71 accuracy 0.8")
    search.press("Shift+Enter")
    expect(logs.locator(".jp-RunaiLogs-matches")).to_have_text("1 of 3")
    search.fill("no such text")
    expect(logs.locator(".jp-RunaiLogs-matches")).to_have_text("no match")
    expect(logs.locator(".jp-RunaiLogs-line.jp-mod-match")).to_have_count(0)
    search.fill("")

    # Download saves the whole log as the pod wrote it
    with page.expect_download() as download:
        logs.locator("button.jp-RunaiLogs-download").click()
    assert download.value.suggested_filename == "default-tqdm-1-0.log"
    saved = Path(download.value.path()).read_bytes()
    assert b"\r100%|##########| 10/10" in saved and b"\x1b[32mloss 0.81" in saved
    expect(logs.locator(".jp-RunaiLogs-trimmed")).to_be_hidden()
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-logs-default-tqdm-1"] .lm-TabBar-tabCloseIcon').click()

    # past the lines a tab keeps, the oldest go and a notice says how many
    code, body = lab.api("POST", "workloads", {"name": "many-lines", "command": "seq 20005"})
    assert code == 201, body
    row(page, "many-lines").locator("button.jp-RunaiWorkload-logs").click()
    logs = page.locator("#jupyter-runai-logs-default-many-lines")
    expect(logs.locator(".jp-RunaiLogs-status")).to_contain_text("end of log", timeout=TIMEOUT)
    expect(logs.locator(".jp-RunaiLogs-trimmed")).to_be_visible()
    expect(logs.locator(".jp-RunaiLogs-trimmed")).to_contain_text("5 older lines are not shown here")
    expect(logs.locator(".jp-RunaiLogs-line").first).to_have_text("6")
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-logs-default-many-lines"] .lm-TabBar-tabCloseIcon').click()
    for name in ("tqdm-1", "many-lines"):
        lab.api("DELETE", f"workloads/default/{name}")
        expect(row(page, name)).to_have_count(0, timeout=TIMEOUT)


def log_times(logs) -> list[str]:
    """The time column of a log view as the browser draws it (a pseudo-element: '' where none)."""
    return logs.locator(".jp-RunaiLogs-line:not(:empty)").evaluate_all(
        "lines => lines.map(l => getComputedStyle(l, '::before').content.replace(/^\"|\"$/g, ''))"
        ".map(c => (c === 'none' || c === 'normal') ? '' : c)")


def test_timestamps_on_demand_in_the_log_view(page, lab, shots):
    tab = page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-sidebar"]')
    if not page.locator("#jupyter-runai-sidebar").is_visible():
        tab.click()
    command = ("printf '\\033[1;34mepoch 1/2\\033[0m\\n'; sleep 0.2; "
               "for i in 0 5 10; do printf '\\r%3d%%|bar|' $((i * 10)); sleep 0.1; done; "
               "printf '\\n\\033[32mloss 0.42\\033[0m\\n'; echo 'epoch 2/2'")
    code, body = lab.api("POST", "workloads", {"name": "stamped-1", "command": command})
    assert code == 201, body
    row(page, "stamped-1").locator("button.jp-RunaiWorkload-logs").click()
    logs = page.locator("#jupyter-runai-logs-default-stamped-1")
    expect(logs.locator(".jp-RunaiLogs-status")).to_contain_text("end of log", timeout=TIMEOUT)
    lines = logs.locator(".jp-RunaiLogs-line:not(:empty)")
    expected = ["epoch 1/2", "100%|bar|", "loss 0.42", "epoch 2/2"]
    expect(lines).to_have_text(expected)
    toggle = logs.locator("input.jp-RunaiLogs-timestamps")
    expect(toggle).not_to_be_checked()
    assert log_times(logs) == ["", "", "", ""]  # off: no column
    label = logs.locator("label:has(input.jp-RunaiLogs-timestamps)")
    assert "when each line arrived" in (label.get_attribute("title") or "")

    toggle.check()
    # each line after the time the server recorded, in the browser's zone; the text is unchanged
    code, stamped = lab.api("GET", "workloads/default/stamped-1/logs?timestamps=true")
    assert code == 200
    server_times = [line.split(" ", 1)[0] for line in stamped.split("\n") if line]
    offset = page.evaluate("t => -new Date(Date.parse(t.slice(0, 23) + 'Z')).getTimezoneOffset()", server_times[0])
    shown = []
    for t in server_times:
        moment = datetime.fromisoformat(t[:26] + "+00:00") + timedelta(minutes=offset)
        shown.append(moment.strftime("%m-%d %H:%M:%S.") + t[20:23])
    expect(lines).to_have_text(expected)
    assert log_times(logs) == shown, (log_times(logs), stamped)
    assert all(re.fullmatch(r"\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", t) for t in shown)
    # the time column sits left of the text: the text of every line starts at one x
    starts = lines.evaluate_all("ls => ls.map(l => { const r = document.createRange(); r.selectNodeContents(l); "
                                "return Math.round(r.getClientRects()[0].left); })")
    assert len(set(starts)) == 1 and starts[0] > lines.first.bounding_box()["x"] + 50, starts
    page.set_viewport_size({"width": 1280, "height": 800})
    shoot(page, shots / "logs-timestamps.png")
    page.set_viewport_size({"width": 1280, "height": 860})

    # search finds the text, never the times
    search = logs.locator("input.jp-RunaiLogs-search")
    search.fill("loss")
    expect(logs.locator(".jp-RunaiLogs-matches")).to_have_text("1 line")
    search.fill(shown[0][6:11])  # the hour and minute of the first line
    expect(logs.locator(".jp-RunaiLogs-matches")).to_have_text("no match")
    search.fill("")
    # Download has the times, as runai logs --timestamps prints them
    with page.expect_download() as download:
        logs.locator("button.jp-RunaiLogs-download").click()
    assert Path(download.value.path()).read_bytes().decode() == stamped
    # the choice is kept (the state database): a new log view opens with the times shown
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-logs-default-stamped-1"] .lm-TabBar-tabCloseIcon').click()
    row(page, "stamped-1").locator("button.jp-RunaiWorkload-logs").click()
    expect(logs.locator(".jp-RunaiLogs-status")).to_contain_text("end of log", timeout=TIMEOUT)
    expect(logs.locator("input.jp-RunaiLogs-timestamps")).to_be_checked()
    expect(lines).to_have_text(expected)
    assert log_times(logs) == shown
    # off again (the later tests' screenshots show none), and Download is the log as written
    logs.locator("input.jp-RunaiLogs-timestamps").uncheck()
    assert log_times(logs) == ["", "", "", ""]
    with page.expect_download() as download:
        logs.locator("button.jp-RunaiLogs-download").click()
    assert Path(download.value.path()).read_bytes().startswith(b"\x1b[1;34mepoch 1/2")
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-logs-default-stamped-1"] .lm-TabBar-tabCloseIcon').click()
    lab.api("DELETE", "workloads/default/stamped-1")
    expect(row(page, "stamped-1")).to_have_count(0, timeout=TIMEOUT)
    assert not page.errors, page.errors  # type: ignore[attr-defined]


def table_names(page) -> list[str]:
    return page.locator("#jupyter-runai-sidebar .jp-RunaiSidebarTable tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.name)")


def test_the_table_view_sorts_and_keeps_the_filters_in_view(page, lab, shots):
    # the blocker holds both GPUs: the GPU jobs wait, the others finish
    for name, resources, command in (("tbl-b", {}, "true"), ("tbl-a10", {"gpu": 1}, "sleep 600"),
                                     ("tbl-a2", {"gpu": 0.5}, "sleep 600"), ("tbl-c", {"gpu": 2}, "sleep 600")):
        code, body = lab.api("POST", "workloads", {"name": name, "command": command, "resources": resources})
        assert code == 201, body
    expect(chip(page, "tbl-b")).to_have_text("Succeeded", timeout=TIMEOUT)
    panel = page.locator("#jupyter-runai-sidebar")
    panel.locator("button.jp-RunaiSidebar-view-table").click()
    expect(panel.locator("button.jp-RunaiSidebar-view-table")).to_have_attribute("aria-pressed", "true")
    expect(panel.locator(".jp-RunaiSidebar-list")).to_be_hidden()
    table = panel.locator(".jp-RunaiSidebarTable")
    expect(table.locator("thead th")).to_have_text(["", "Name", "Status", "GPU", "Kind", "Age", "Ran"])
    tbl = table.locator('tr[data-name="tbl-a2"]')
    expect(tbl.locator(".jp-RunaiChip")).to_have_text("Pending")
    expect(tbl.locator("td.jp-RunaiSidebarTable-gpu")).to_have_text("0.5 GPU")
    expect(tbl.locator("td.jp-RunaiSidebarTable-kind")).to_have_text("training")
    expect(tbl.locator("td.jp-RunaiSidebarTable-duration")).to_have_text("—")
    expect(table.locator('tr[data-name="train-1"] td.jp-RunaiSidebarTable-duration')).to_have_text(re.compile(r"^\d+s$"))
    # dragged wider, the sidebar shows every column (a narrow one scrolls the table sideways)
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:visible").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 160, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    expect(table.locator("th.jp-RunaiSidebarTable-duration")).to_be_in_viewport()
    shoot(page, shots / "sidebar-table.png")
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] - 160, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()

    panel.locator(".jp-RunaiSidebar-search").fill("tbl-")
    expect(table.locator("tbody tr")).to_have_count(4)
    assert table_names(page) == ["tbl-c", "tbl-a2", "tbl-a10", "tbl-b"]  # the newest first
    sort = lambda column: table.locator(f'button.jp-RunaiSidebarTable-sort[data-column="{column}"]')
    sort("name").click()
    expect(table.locator("th.jp-RunaiSidebarTable-name")).to_have_attribute("aria-sort", "ascending")
    assert table_names(page) == ["tbl-a2", "tbl-a10", "tbl-b", "tbl-c"]
    sort("name").click()
    expect(table.locator("th.jp-RunaiSidebarTable-name")).to_have_attribute("aria-sort", "descending")
    assert table_names(page) == ["tbl-c", "tbl-b", "tbl-a10", "tbl-a2"]
    sort("gpu").click()
    expect(table.locator("th.jp-RunaiSidebarTable-gpu")).to_have_attribute("aria-sort", "ascending")
    assert table_names(page) == ["tbl-b", "tbl-a2", "tbl-a10", "tbl-c"]
    sort("status").click()
    assert table_names(page)[-1] == "tbl-b"  # finished last
    # all projects: a Project column
    panel.locator(".jp-RunaiSidebar-projectSelect").select_option("*")
    expect(table.locator("thead th").last).to_have_text("Project")
    expect(table.locator('tr[data-name="tbl-b"] td.jp-RunaiSidebarTable-project')).to_have_text("default")
    panel.locator(".jp-RunaiSidebar-projectSelect").select_option("default")

    # in a short window only the table scrolls: the filters and the column headers stay in view
    page.set_viewport_size({"width": 1280, "height": 420})
    try:
        wrap = panel.locator(".jp-RunaiSidebar-tableWrap")
        page.wait_for_function("""() => {
            const el = document.querySelector('#jupyter-runai-sidebar .jp-RunaiSidebar-tableWrap');
            return el && el.scrollHeight > el.clientHeight;
        }""")
        wrap.evaluate("el => { el.scrollTop = el.scrollHeight; }")
        assert wrap.evaluate("el => el.scrollTop") > 0
        page.wait_for_timeout(100)  # a frame for the scroll to land
        top = wrap.bounding_box()["y"]
        head = table.locator("thead th").first.bounding_box()
        assert abs(head["y"] - top) < 2, (head, top)
        assert panel.locator(".jp-RunaiSidebar-search").bounding_box()["y"] < top
        assert panel.locator(".jp-RunaiSidebar-inner").evaluate("el => el.scrollTop") == 0
    finally:
        page.set_viewport_size({"width": 1280, "height": 860})

    # the row's name opens its details
    table.locator('tr[data-name="tbl-b"] button.jp-RunaiSidebarTable-name').click()
    expect(page.locator("#jupyter-runai-details-default-tbl-b .jp-RunaiDetails-title")).to_have_text("tbl-b")
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-details-default-tbl-b"] .lm-TabBar-tabCloseIcon').click()

    # bulk: stop two pending ones with one confirmation, clear the finished, delete the rest
    bulk = panel.locator(".jp-RunaiBulk")
    expect(bulk.locator(".jp-RunaiBulk-count")).to_have_text("None selected")
    expect(bulk.locator("button.jp-RunaiBulk-stop")).to_be_disabled()
    table.locator('tr[data-name="tbl-a10"] input.jp-RunaiSidebarTable-check').check()
    table.locator('tr[data-name="tbl-a2"] input.jp-RunaiSidebarTable-check').check()
    table.locator('tr[data-name="tbl-b"] input.jp-RunaiSidebarTable-check').check()
    expect(bulk.locator(".jp-RunaiBulk-count")).to_have_text("3 selected")
    expect(table.locator(".jp-RunaiSidebarTable-selectAll")).to_have_js_property("indeterminate", True)
    expect(bulk.locator("button.jp-RunaiBulk-stop")).to_have_text("Stop 2")  # tbl-b has ended already
    bulk.locator("button.jp-RunaiBulk-stop").click()
    expect(page.locator(".jp-Dialog")).to_contain_text("tbl-a10")
    confirm(page, "Stop")
    for name in ("tbl-a10", "tbl-a2"):
        expect(table.locator(f'tr[data-name="{name}"] .jp-RunaiChip')).to_have_text("Stopped", timeout=TIMEOUT)
    expect(table.locator('tr[data-name="tbl-c"] .jp-RunaiChip')).to_have_text("Pending")
    expect(bulk.locator("button.jp-RunaiBulk-clear")).to_have_text("Clear finished (3)")
    bulk.locator("button.jp-RunaiBulk-clear").click()
    confirm(page, "Delete")
    expect(table.locator("tbody tr")).to_have_count(1, timeout=TIMEOUT)
    expect(bulk.locator(".jp-RunaiBulk-count")).to_have_text("None selected")  # the deleted left the selection
    table.locator(".jp-RunaiSidebarTable-selectAll").check()
    expect(bulk.locator(".jp-RunaiBulk-count")).to_have_text("1 selected")
    bulk.locator("button.jp-RunaiBulk-delete").click()
    confirm(page, "Delete")
    expect(table.locator("tbody tr")).to_have_count(0, timeout=TIMEOUT)
    assert lab.workload("train-1")["status"]["phase"] == "Succeeded"  # filtered out by the name: untouched
    panel.locator(".jp-RunaiSidebar-search").fill("")
    panel.locator("button.jp-RunaiSidebar-view-cards").click()
    expect(panel.locator(".jp-RunaiSidebar-tableWrap")).to_be_hidden()
    expect(row(page, "train-1")).to_have_count(1)


def test_a_workloads_details_show_spec_pods_and_events_live(page, lab, shots):
    # the blocker (resumed above) holds both GPUs: this one waits
    submit_form(page, name="detail-1", gpu="1", command="echo in detail; sleep 600")
    expect(chip(page, "detail-1")).to_have_text("Pending", timeout=TIMEOUT)
    row(page, "detail-1").locator("button.jp-RunaiWorkload-name").click()
    view = page.locator("#jupyter-runai-details-default-detail-1")
    expect(view.locator(".jp-RunaiDetails-title")).to_have_text("detail-1")
    expect(view.locator(".jp-RunaiChip").first).to_have_text("Pending")
    expect(view.locator(".jp-RunaiDetails-pending h3")).to_have_text("Waiting for free GPUs")
    spec = view.locator(".jp-RunaiDetails-spec")
    expect(spec.locator('dd[data-key="resources"]')).to_contain_text("1 GPU")
    expect(spec.locator('dd[data-key="command"]')).to_have_text("echo in detail; sleep 600")
    expect(spec.locator('dd[data-key="priority"]')).to_have_text("train, preemptible")  # filled in by the server
    expect(view.locator('.jp-RunaiDetails-events tr[data-type="Submitted"]')).to_have_count(1)

    # free the GPUs from the panel: the details follow live (Running, its pod, new events)
    row(page, "blocker").locator("button.jp-RunaiWorkload-delete").click()
    confirm(page, "Delete")
    expect(row(page, "blocker")).to_have_count(0, timeout=TIMEOUT)
    expect(view.locator(".jp-RunaiChip").first).to_have_text("Running", timeout=TIMEOUT)
    pod = view.locator('.jp-RunaiDetails-pods tr[data-pod="0"]')
    expect(pod.locator(".jp-RunaiDetails-node")).not_to_have_text("—")
    expect(pod.locator(".jp-RunaiDetails-devices")).to_have_text(re.compile(r"GPU \d"))
    expect(pod.locator(".jp-RunaiDetails-share")).to_have_text("whole GPU")
    expect(view.locator('.jp-RunaiDetails-events tr[data-type="Started"]')).to_have_count(1, timeout=TIMEOUT)
    expect(view.locator(".jp-RunaiDetails-pending")).to_have_count(0)
    shoot(page, shots / "workload-details.png")

    # its pod's logs, then stop and delete from the details view (both ask first)
    pod.locator("button.jp-RunaiDetails-podLogs").click()
    logs = page.locator("#jupyter-runai-logs-default-detail-1")
    expect(logs.locator(".jp-RunaiLogs-output")).to_contain_text("in detail", timeout=TIMEOUT)
    logs.locator("select.jp-RunaiLogs-tail").select_option("20")
    expect(logs.locator(".jp-RunaiLogs-output")).to_contain_text("in detail", timeout=TIMEOUT)
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-details-default-detail-1"]').click()
    view.locator("button.jp-RunaiDetails-stop").click()
    confirm(page, "Stop")
    expect(view.locator(".jp-RunaiChip").first).to_have_text("Stopped", timeout=TIMEOUT)
    expect(view.locator('.jp-RunaiDetails-events tr[data-type="Stopped"]')).to_have_count(1, timeout=TIMEOUT)
    view.locator("button.jp-RunaiDetails-delete").click()
    confirm(page, "Delete")
    expect(view.locator(".jp-RunaiChip").first).to_have_text("Deleted", timeout=TIMEOUT)
    expect(row(page, "detail-1")).to_have_count(0, timeout=TIMEOUT)
    for tab in ("jupyter-runai-details-default-detail-1", "jupyter-runai-logs-default-detail-1"):
        page.locator(f'li.lm-TabBar-tab[data-id="{tab}"] .lm-TabBar-tabCloseIcon').click()


def test_the_cluster_view_shows_devices_fractions_and_virtual(page, lab, shots):
    submit_form(page, name="half-a", mode="fraction", fraction="0.5", command="sleep 600")
    submit_form(page, name="quarter-b", mode="fraction", fraction="0.25", command="sleep 600")
    submit_form(page, name="whole-c", gpu="1", command="sleep 600")
    for name in ("half-a", "quarter-b", "whole-c"):
        expect(chip(page, name)).to_have_text("Running", timeout=TIMEOUT)
    page.click("#jupyter-runai-sidebar button.jp-RunaiSidebar-clusterButton")
    view = page.locator("#jupyter-runai-cluster-view")
    devices = view.locator(".jp-RunaiDevice")
    expect(devices).to_have_count(2)
    expect(view.locator(".jp-RunaiBadge--virtual")).to_have_count(2)
    expect(view.locator(".jp-RunaiCluster-summary")).to_contain_text("2 GPUs (all virtual)")
    expect(view.locator(".jp-RunaiCluster-summary")).to_contain_text("1.75 of 2 allocated")
    shared = view.locator(".jp-RunaiDevice", has_text="half-a")
    expect(shared.locator(".jp-RunaiDevice-legend")).to_contain_text("quarter-b")
    expect(shared.locator(".jp-RunaiDevice-free")).to_contain_text("0.25")
    expect(view.locator(".jp-RunaiDevice-stats").first).to_contain_text("not measured")
    # the projects overview (runai projects)
    default = view.locator('.jp-RunaiProjects tr[data-project="default"]')
    expect(default).to_contain_text("1.75")
    expect(default.locator("td").nth(2)).to_have_text("2")  # deserved
    expect(default.locator("td").nth(5)).to_have_text("none")  # limit
    shoot(page, shots / "cluster-view.png")


def test_the_form_from_the_launcher_and_the_palette(page, lab, shots):
    # launcher tile
    page.keyboard.press("Control+Shift+L")
    tile = page.locator(".jp-Launcher").get_by_role("button", name="New GPU Workload")
    expect(tile).to_be_visible()
    tile.click()
    form = page.locator("#jupyter-runai-new-workload")
    expect(form.locator(".jp-RunaiForm-title")).to_have_text("New workload")
    # bounds from the server
    expect(form.locator("#jp-runai-gpu")).to_have_attribute("max", "2")
    form.locator('input[name="gpu_mode"][value="fraction"]').check()
    expect(form.locator(".jp-RunaiForm-fractionValue")).to_have_text("0.5 GPU")
    form.locator("#jp-runai-dynamic").check()
    shoot(page, shots / "new-workload-form.png")
    form.locator("button.jp-RunaiForm-cancel").click()
    expect(form).to_have_count(0)
    # command palette
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("New GPU workload")
    page.keyboard.press("Enter")
    expect(page.locator("#jupyter-runai-new-workload .jp-RunaiForm-title")).to_have_text("New workload")
    page.locator("#jupyter-runai-new-workload button.jp-RunaiForm-cancel").click()


def test_a_workspace_gets_an_open_link_when_running(page, lab, shots):
    # free the GPUs held by earlier tests
    for name in ("half-a", "quarter-b", "whole-c"):
        row(page, name).locator("button.jp-RunaiWorkload-delete").click()
        confirm(page, "Delete")
        expect(row(page, name)).to_have_count(0, timeout=TIMEOUT)
    submit_form(page, name="ws-1", kind="workspace", mode="fraction", fraction="0.25")
    expect(chip(page, "ws-1")).to_have_text("Running", timeout=TIMEOUT)
    link = row(page, "ws-1").locator("a.jp-RunaiWorkload-open")
    expect(link).to_have_attribute("href", re.compile(r"/runai/proxy/default/ws-1/"))
    shoot(page, shots / "sidebar-workspace.png")


SECRET = "s3cr3t-Value-never-shown-42"


def test_data_sources_and_credentials_are_managed_and_used(page, lab, shots):
    data = lab.base / "shared-data"
    data.mkdir()
    (data / "hello.txt").write_text("hello from a data source\n")
    page.click("#jupyter-runai-sidebar button.jp-RunaiSidebar-resourcesButton")
    view = page.locator("#jupyter-runai-project-data")
    expect(view.locator(".jp-RunaiProjectData-dataSources")).to_contain_text("no data sources yet")

    # a field error from the server, beside its field; fixing the field clears it
    ds = view.locator("form.jp-RunaiProjectData-dsForm")
    ds.locator("#jp-runai-ds-name").fill("in-data")
    ds.locator("#jp-runai-ds-path").fill("relative/dir")
    ds.locator("button.jp-RunaiProjectData-add").click()
    path_error = ds.locator('.jp-RunaiField[data-field="path"] .jp-RunaiField-error')
    expect(path_error).to_contain_text("absolute")
    expect(ds.locator("#jp-runai-ds-path")).to_have_attribute("aria-invalid", "true")
    ds.locator("#jp-runai-ds-path").fill(str(data))
    expect(path_error).to_be_empty()
    ds.locator("#jp-runai-ds-target").fill("inputs")
    ds.locator("button.jp-RunaiProjectData-add").click()
    source = view.locator('.jp-RunaiProjectData-dataSources tr[data-name="in-data"]')
    expect(source).to_contain_text(str(data))
    expect(source).to_contain_text("read-only")
    expect(ds.locator("#jp-runai-ds-name")).to_have_value("")
    # after the add, the selectors show their defaults again (not nothing selected)
    expect(ds.locator('#jp-runai-ds-kind input[value="host_path"]')).to_be_checked()
    expect(ds.locator('#jp-runai-ds-access input[value="ro"]')).to_be_checked()
    # the source path wraps between directories, never inside a name
    # (each text node of it, a directory name, is laid out on one line: one client rect)
    broken = source.locator(".jp-RunaiProjectData-path").evaluate("""el => {
        const range = document.createRange();
        const text = [el, ...el.querySelectorAll('*')].flatMap(e => [...e.childNodes])
            .filter(n => n.nodeType === Node.TEXT_NODE);
        return text.filter(n => { range.selectNodeContents(n); return range.getClientRects().length > 1; })
            .map(n => n.textContent);
    }""")
    assert broken == [], broken
    assert source.locator(".jp-RunaiProjectData-path").text_content() == str(data)

    # a credential: the value goes in a password input, and never comes back
    cred = view.locator("form.jp-RunaiProjectData-credForm")
    cred.locator("#jp-runai-cred-name").fill("api-token")
    cred.locator(".jp-RunaiProjectData-key").first.fill("API_TOKEN")
    value = cred.locator(".jp-RunaiProjectData-value").first
    expect(value).to_have_attribute("type", "password")
    value.fill(SECRET)
    cred.locator("button.jp-RunaiProjectData-add").click()
    saved = view.locator('.jp-RunaiProjectData-credentials tr[data-name="api-token"]')
    expect(saved).to_contain_text("variables API_TOKEN")
    expect(cred.locator(".jp-RunaiProjectData-value").first).to_have_value("")
    expect(cred.locator('#jp-runai-cred-inject_as input[value="env"]')).to_be_checked()
    shoot(page, shots / "data-and-credentials.png")
    assert_secret_nowhere(page)

    # a workload that uses both, through the form; its log reads the data and the variable
    form = open_form(page)
    form.locator("#jp-runai-name").fill("uses-data")
    form.locator('input[name="gpu_mode"][value="none"]').check()
    form.locator("#jp-runai-command").fill('cat inputs/hello.txt; echo "token has ${#API_TOKEN} characters"')
    form.locator('#jp-runai-data_sources input[value="in-data"]').check()
    form.locator('#jp-runai-credentials input[value="api-token"]').check()
    form.locator("#jp-runai-priority_class").select_option("build")
    form.locator('.jp-RunaiField[data-field="data_sources"]').scroll_into_view_if_needed()
    shoot(page, shots / "new-workload-data.png")
    form.locator("button.jp-RunaiForm-submit").click()
    expect(chip(page, "uses-data")).to_have_text("Succeeded", timeout=TIMEOUT)
    row(page, "uses-data").locator("button.jp-RunaiWorkload-logs").click()
    logs = page.locator("#jupyter-runai-logs-default-uses-data .jp-RunaiLogs-output")
    expect(logs).to_contain_text("hello from a data source", timeout=TIMEOUT)
    expect(logs).to_contain_text(f"token has {len(SECRET)} characters")
    row(page, "uses-data").locator("button.jp-RunaiWorkload-name").click()
    details = page.locator("#jupyter-runai-details-default-uses-data")
    expect(details.locator('dd[data-key="data_sources"]')).to_have_text("in-data")
    expect(details.locator('dd[data-key="credentials"]')).to_have_text("api-token")
    expect(details.locator('dd[data-key="priority"]')).to_have_text("build, not preemptible")
    assert_secret_nowhere(page)

    # delete the data source (asks first)
    page.click("#jupyter-runai-sidebar button.jp-RunaiSidebar-resourcesButton")
    source.locator("button.jp-RunaiProjectData-delete").click()
    confirm(page, "Delete")
    expect(source).to_have_count(0, timeout=TIMEOUT)


def assert_secret_nowhere(page) -> None:
    """Not in the DOM, not in an input's value, not in any API answer the page can fetch."""
    assert SECRET not in page.content()
    values = page.evaluate("Array.from(document.querySelectorAll('input, textarea')).map(e => e.value)")
    assert not any(SECRET in v for v in values)


def test_keyboard_reaches_the_actions_and_no_page_errors(page):
    first = page.locator("#jupyter-runai-sidebar button.jp-RunaiSidebar-new")
    first.focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert "jp-RunaiSidebar-clusterButton" in focused
    assert not page.errors, page.errors  # type: ignore[attr-defined]


def test_the_dark_theme_applies(page, shots):
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("JupyterLab Dark")
    page.keyboard.press("Enter")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=TIMEOUT)
    background = page.evaluate(
        "getComputedStyle(document.querySelector('.jp-RunaiWorkload')).backgroundColor")
    # a dark row background: the panel follows the theme's variables
    assert sum(int(x) for x in re.findall(r"\d+", background)[:3]) < 3 * 100, background
    shoot(page, shots / "sidebar-dark.png")


def saved_workspace(lab) -> dict:
    response = requests.get(lab.url + "lab/api/workspaces/default", timeout=10,
                            headers={"Authorization": f"token {lab.token}"})
    return response.json().get("data", {}) if response.ok else {}


def test_a_reload_brings_back_the_open_tabs_the_project_and_the_filters(page, lab):
    code, body = lab.api("POST", "workloads", {"name": "kept-1", "command": "echo kept"})
    assert code == 201, body
    expect(chip(page, "kept-1")).to_have_text("Succeeded", timeout=TIMEOUT)
    row(page, "kept-1").locator("button.jp-RunaiWorkload-name").click()
    row(page, "kept-1").locator("button.jp-RunaiWorkload-logs").click()
    page.click("#jupyter-runai-sidebar button.jp-RunaiSidebar-clusterButton")
    panel = page.locator("#jupyter-runai-sidebar")
    panel.locator(".jp-RunaiSidebar-projectSelect").select_option("*")
    panel.locator(".jp-RunaiSidebar-statusFilter").select_option("finished")
    panel.locator(".jp-RunaiSidebar-kindFilter").select_option("training")
    panel.locator(".jp-RunaiSidebar-search").fill("kept")
    tabs = ("jupyter-runai-details-default-kept-1", "jupyter-runai-logs-default-kept-1", "jupyter-runai-cluster-view")
    # JupyterLab writes its workspace a moment after a change: wait until it holds all of it
    wanted = ("jupyter-runai-details:", "jupyter-runai-logs:", "jupyter-runai-cluster:", "jupyter-runai:sidebar")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = saved_workspace(lab)
        if all(any(k.startswith(w) for k in data) for w in wanted) and \
                (data.get("jupyter-runai:sidebar") or {}).get("text") == "kept":
            break
        time.sleep(0.2)

    page.reload()
    page.wait_for_selector("#jupyter-runai-splash, #jupyterlab-splash", state="detached", timeout=60_000)
    for tab in tabs:
        expect(page.locator(f'li.lm-TabBar-tab[data-id="{tab}"]')).to_have_count(1)
    panel = page.locator("#jupyter-runai-sidebar")
    expect(panel.locator(".jp-RunaiSidebar-projectSelect")).to_have_value("*")
    expect(panel.locator(".jp-RunaiSidebar-statusFilter")).to_have_value("finished")
    expect(panel.locator(".jp-RunaiSidebar-kindFilter")).to_have_value("training")
    expect(panel.locator(".jp-RunaiSidebar-search")).to_have_value("kept")
    expect(row(page, "kept-1").locator(".jp-RunaiWorkload-project")).to_have_text("default")
    expect(panel.locator("li.jp-RunaiWorkload")).to_have_count(1)
    # kept-1 succeeded before the reload (and said so then): the reloaded page does not tell it again
    page.wait_for_timeout(500)
    expect(toast(page, "kept-1")).to_have_count(0)
    # the restored logs tab reads its log again
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-logs-default-kept-1"]').click()
    expect(page.locator("#jupyter-runai-logs-default-kept-1 .jp-RunaiLogs-output")).to_contain_text("kept")

    # the table view and its sort are kept too
    panel.locator("button.jp-RunaiSidebar-view-table").click()
    panel.locator('button.jp-RunaiSidebarTable-sort[data-column="gpu"]').click()
    panel.locator('button.jp-RunaiSidebarTable-sort[data-column="gpu"]').click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        data = saved_workspace(lab).get("jupyter-runai:sidebar") or {}
        if data.get("view") == "table" and data.get("sort") == {"column": "gpu", "descending": True}:
            break
        time.sleep(0.2)
    page.reload()
    page.wait_for_selector("#jupyter-runai-splash, #jupyterlab-splash", state="detached", timeout=60_000)
    panel = page.locator("#jupyter-runai-sidebar")
    expect(panel.locator("button.jp-RunaiSidebar-view-table")).to_have_attribute("aria-pressed", "true")
    expect(panel.locator('.jp-RunaiSidebarTable tr[data-name="kept-1"]')).to_have_count(1)
    expect(panel.locator("th.jp-RunaiSidebarTable-gpu")).to_have_attribute("aria-sort", "descending")
    assert not page.errors, page.errors  # type: ignore[attr-defined]
