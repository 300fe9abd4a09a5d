"""The sidebar's monitoring charts and its Admin view in a real browser (JupyterLab with this tree's
labextension on the local cluster of 2 virtual GPUs, Debian's chromium through Playwright): what an
admin and a non-admin see. Screenshots (1280x800) go to $RUNAI_SCREENSHOTS, else to a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser_helpers import (LabServer, chromium_or_skip, jp_asyncio_loop, jp_server_cleanup,  # noqa: F401
                             new_lab_page, open_page)

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
CHROMIUM = chromium_or_skip()

LABEXT = Path(__file__).resolve().parents[1] / "jupyter_runai" / "labextension" / "static" / "style.js"
if not LABEXT.exists():
    pytest.skip("the labextension is not built (pip install -e . builds it)", allow_module_level=True)

pytestmark = pytest.mark.timeout(240)
TIMEOUT = 30_000
#: the history is sampled twice a second here (5 s by default), so that a chart has points at once
FAST_SAMPLES = {"RunaiApp": {"usage_sample_interval": 0.5}}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("RUNAI_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = LabServer(tmp_path_factory.mktemp("lab-admin"), FAST_SAMPLES).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(lab):
    with open_page(lab, CHROMIUM, timeout_ms=TIMEOUT) as page:
        yield page


def shoot(page, path: Path) -> None:
    """A screenshot of the window once passing toasts are gone."""
    page.wait_for_timeout(800)
    page.mouse.move(700, 790)
    page.screenshot(path=str(path))


def open_panel(page):
    panel = page.locator("#jupyter-runai-sidebar")
    if not panel.is_visible():  # a click on the tab of an open panel closes it
        page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-sidebar"]').click()
    expect(panel.locator(".jp-RunaiSidebar-title")).to_have_text("GPU workloads")
    return panel


def open_cluster(page, devices: int = 2):
    open_panel(page)
    page.click("#jupyter-runai-sidebar button.jp-RunaiSidebar-clusterButton")
    view = page.locator("#jupyter-runai-cluster-view")
    expect(view.locator(".jp-RunaiDevice")).to_have_count(devices)
    return view


def test_the_cluster_view_charts_each_projects_gpus_and_each_devices_allocation_over_time(page, lab, shots):
    code, body = lab.api("POST", "workloads", {"name": "charted", "kind": "training", "command": "sleep 600",
                                               "resources": {"gpu": 1}})
    assert code == 201, body
    view = open_cluster(page)
    chart = view.locator('.jp-RunaiProjects tr[data-project="default"] svg.jp-RunaiProjectChart')
    expect(chart).to_have_count(1, timeout=TIMEOUT)
    # allocated against deserved (2 GPUs on this cluster) and the fair share (what it asks for)
    expect(chart).to_have_attribute("aria-label", "1 GPU allocated now (peak 1) of 2 deserved, fair share 1",
                                    timeout=TIMEOUT)
    assert chart.locator("path.jp-RunaiProjectChart-deserved").get_attribute("d").startswith("M")
    # virtual devices: their allocation over time is drawn, utilization and memory say plainly why not
    device = view.locator(".jp-RunaiDevice", has_text="charted")
    expect(device.locator('.jp-RunaiSpark[data-series="allocated"] path')).to_have_count(1)
    expect(device.locator('.jp-RunaiSpark[data-series="use"]')).to_have_text("Usenot measured (virtual GPU)")
    shoot(page, shots / "cluster-view-history.png")
    assert page.errors == []


def open_admin(page):
    panel = open_panel(page)
    button = panel.locator("button.jp-RunaiSidebar-adminButton")
    expect(button).to_be_visible()
    button.click()
    view = page.locator("#jupyter-runai-admin-view")
    expect(view.locator(".jp-RunaiAdmin-tab.jp-mod-active")).to_have_text("Projects")
    return view


def test_an_admin_creates_a_project_sees_the_fields_the_server_refuses_and_changes_its_quota(page, lab, shots):
    view = open_admin(page)
    expect(view.locator('.jp-RunaiAdmin-table tr[data-name="default"]')).to_contain_text("2 GPUs deserved")
    view.locator("button.jp-RunaiAdmin-new").click()
    form = view.locator("form.jp-RunaiAdmin-form")
    # every field says what it means
    assert "quota" in form.locator("#jp-runai-admin-deserved-gpu").get_attribute("title")
    form.locator("#jp-runai-admin-name").fill("Vision_")
    form.locator("#jp-runai-admin-deserved-gpu").fill("-1")
    form.locator("button.jp-RunaiAdmin-save").click()
    # both problems at once, each beside its field, without repeating the field's path
    name_error = form.locator('.jp-RunaiAdmin-field[data-field="name"] .jp-RunaiAdmin-error')
    gpu_error = form.locator('.jp-RunaiAdmin-field[data-field="deserved.gpu"] .jp-RunaiAdmin-error')
    expect(name_error).to_contain_text("must be a DNS-1123 label")
    expect(gpu_error).to_contain_text("got -1")
    assert not gpu_error.inner_text().startswith("deserved.gpu")
    shoot(page, shots / "admin-project-errors.png")
    form.locator("#jp-runai-admin-name").fill("vision")
    form.locator("#jp-runai-admin-deserved-gpu").fill("1")
    form.locator("#jp-runai-admin-limit-gpu").fill("0.5")
    form.locator("button.jp-RunaiAdmin-save").click()
    expect(form.locator('.jp-RunaiAdmin-field[data-field="limit.gpu"] .jp-RunaiAdmin-error')).to_contain_text(
        "at least deserved.gpu (1)")
    expect(name_error).to_have_count(0)
    code, body = lab.api("GET", "projects")
    assert [p["name"] for p in body["projects"]] == ["default"]  # an error answer: nothing happened
    form.locator("#jp-runai-admin-name").fill("vision")
    form.locator("#jp-runai-admin-limit-gpu").fill("")
    form.locator("button.jp-RunaiAdmin-save").click()
    created = view.locator('.jp-RunaiAdmin-table tr[data-name="vision"]')
    expect(created).to_contain_text("1 GPU deserved · no GPU limit")
    # change its quota
    created.locator("button.jp-RunaiAdmin-edit").click()
    expect(form.locator("#jp-runai-admin-name")).to_be_disabled()
    form.locator("#jp-runai-admin-deserved-gpu").fill("2")
    form.locator("#jp-runai-admin-priority").fill("90")
    form.locator("#jp-runai-admin-rules").fill('{"training": {"max_duration": "8h"}}')
    form.locator("button.jp-RunaiAdmin-save").click()
    expect(created).to_contain_text("2 GPUs deserved · no GPU limit · weight 1 · priority 90")
    code, project = lab.api("GET", "projects/vision")
    assert (project["deserved"]["gpu"], project["priority"]) == (2, 90)
    assert project["rules"]["training"]["max_duration"] == 28800  # 8h, in seconds
    # the sidebar's project list follows
    expect(page.locator('#jupyter-runai-sidebar .jp-RunaiSidebar-projectSelect option[value="vision"]')).to_have_count(1)
    # the audit log shows the change, value by value
    view.locator('.jp-RunaiAdmin-tab[data-tab="audit"]').click()
    expect(view.locator(".jp-RunaiAdmin-audit tbody tr").first).to_contain_text("update project vision")
    expect(view.locator(".jp-RunaiAdmin-audit tbody tr").first).to_contain_text("deserved.gpu 1 -> 2")
    shoot(page, shots / "admin-audit.png")
    assert page.errors == []


def test_an_admin_grants_and_revokes_a_role_and_a_node_pool_is_refused_with_its_field(page, lab, shots):
    view = page.locator("#jupyter-runai-admin-view")
    view.locator('.jp-RunaiAdmin-tab[data-tab="access"]').click()
    view.locator("button.jp-RunaiAdmin-new").click()
    form = view.locator("form.jp-RunaiAdmin-form")
    form.locator("#jp-runai-admin-name").fill("rae")
    form.locator("#jp-runai-admin-scope_name").fill("nowhere")
    form.locator("button.jp-RunaiAdmin-save").click()
    expect(form.locator('.jp-RunaiAdmin-field[data-field="scope_name"] .jp-RunaiAdmin-error')).to_contain_text("nowhere")
    form.locator("#jp-runai-admin-scope_name").fill("vision")
    form.locator("button.jp-RunaiAdmin-save").click()
    granted = view.locator(".jp-RunaiAdmin-table tbody tr", has_text="user rae")
    expect(granted).to_contain_text("project vision")
    shoot(page, shots / "admin-access.png")
    granted.locator("button.jp-RunaiAdmin-delete").click()
    page.locator('.jp-Dialog button.jp-Dialog-button:has-text("Revoke")').click()
    expect(granted).to_have_count(0)
    code, body = lab.api("GET", "access/bindings")
    assert body["bindings"] == []
    # a node pool whose selector does not parse is refused beside the field, before anything is sent
    view.locator('.jp-RunaiAdmin-tab[data-tab="node-pools"]').click()
    view.locator("button.jp-RunaiAdmin-new").click()
    form.locator("#jp-runai-admin-name").fill("big")
    form.locator("#jp-runai-admin-label_selector").fill("gpu")
    form.locator("button.jp-RunaiAdmin-save").click()
    expect(form.locator('.jp-RunaiAdmin-field[data-field="label_selector"] .jp-RunaiAdmin-error')).to_contain_text("key=value")
    form.locator("#jp-runai-admin-label_selector").fill("gpu=a100")
    form.locator("#jp-runai-admin-gpu_placement").select_option("spread")
    form.locator("button.jp-RunaiAdmin-save").click()
    expect(view.locator('.jp-RunaiAdmin-table tr[data-name="big"]')).to_contain_text("GPU spread")
    # a policy as JSON (the guided form's advanced path): the server's refusal shows in the form, then a
    # valid one is listed
    view.locator('.jp-RunaiAdmin-tab[data-tab="policies"]').click()
    view.locator("button.jp-RunaiAdmin-new").click()
    view.locator("button.jp-RunaiPolicyForm-json").click()
    policy = form.locator("#jp-runai-admin-policy")
    policy.fill('{"scope": "project", "name": "vision", "kind": "training", "rules": {"gpu": {"max": 1}}}')
    form.locator("button.jp-RunaiAdmin-save").click()
    expect(form.locator(".jp-RunaiAdmin-error")).to_contain_text("is not a field a policy governs")
    policy.fill('{"scope": "project", "name": "vision", "kind": "training", "rules": {"resources.gpu": {"max": 1}}}')
    form.locator("button.jp-RunaiAdmin-save").click()
    card = view.locator('.jp-RunaiAdmin-policy[data-policy="project vision/training"]')
    expect(card).to_contain_text('"max": 1')
    code, body = lab.api("GET", "policies/effective?project=vision&kind=training")
    assert body["rules"]["resources.gpu"]["max"] == 1, body
    shoot(page, shots / "admin-policies.png")
    assert page.errors == []


class MeasuredLab(LabServer):
    """JupyterLab on one device measured through the NVML seam: the tests' FakeNvml (its device
    reports 42% utilization) stands for pynvml's, from a Python config file beside the JSON one
    (``LocalCluster.nvml`` is not configurable: the local cluster builds its default NVML)."""

    def prepare(self) -> None:
        super().prepare()
        (self.dirs["config"] / "jupyter_server_config.py").write_text(
            "import jupyter_runai.clusters.local as local\n"
            "from test_local_cluster import FakeNvml\n"
            "local.PynvmlNvml = lambda: FakeNvml(count=1)\n")

    def extra_env(self) -> dict[str, str]:
        tests = str(Path(__file__).parent)
        return {**super().extra_env(),
                "PYTHONPATH": os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)}


@pytest.mark.slow  # a server of its own (about 11 s); the measured lines' geometry is in jest (charts.spec.ts)
def test_a_measured_device_gets_its_utilization_sparkline(page, tmp_path, shots):
    server = MeasuredLab(tmp_path, {**FAST_SAMPLES, "LocalCluster": {"virtual_gpus": None}}).start()
    try:
        measured = new_lab_page(page.context.browser, server, timeout_ms=TIMEOUT)  # the module's browser
        try:
            view = open_cluster(measured, devices=1)
            device = view.locator(".jp-RunaiDevice")
            expect(device.locator(".jp-RunaiBadge--virtual")).to_have_count(0)
            line = device.locator('.jp-RunaiSpark[data-series="utilization"] path.jp-RunaiSpark-line')
            expect(line).to_have_count(1, timeout=TIMEOUT)  # the view reads the history every 5 s
            expect(device.locator('.jp-RunaiSpark[data-series="utilization"] .jp-RunaiSpark-now')).to_have_text("42%")
            expect(device.locator('.jp-RunaiSpark[data-series="use"]')).to_have_count(0)
            assert line.get_attribute("d").startswith("M")
            shoot(measured, shots / "cluster-view-measured.png")
            assert measured.errors == []
        finally:
            measured.context.close()
    finally:
        server.stop()


class ResearcherLab(LabServer):
    """JupyterLab whose browser login is rae, a researcher on the default project (no admin)."""

    def extra_env(self) -> dict[str, str]:
        tests = str(Path(__file__).parent)
        return {**super().extra_env(), "RUNAI_TEST_CALLER": "tok-rae",
                "PYTHONPATH": os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)}


def test_a_researcher_sees_no_admin_view_until_granted_admin_while_the_page_is_open(page, tmp_path):
    server = ResearcherLab(tmp_path, {
        "ServerApp": {"identity_provider_class": "rbac_identity.ServerTokenAs"},
        "RunaiApp": {"role_bindings": [{"role": "researcher", "user": "rae", "project": "default"}],
                     "run_as": "service"},  # rae has no system account (tests/test_run_as.py)
    }).start()
    try:
        page = new_lab_page(page.context.browser, server, timeout_ms=TIMEOUT)  # the module's browser
        try:
            panel = open_panel(page)
            expect(panel.locator(".jp-RunaiSidebar-projectSelect")).to_have_value("default")
            # the sidebar knows who this is by now: its workloads list has loaded
            expect(panel.locator(".jp-RunaiSidebar-message")).to_contain_text("No workloads yet")
            expect(panel.locator("button.jp-RunaiSidebar-adminButton")).to_be_hidden()
            # nor through the command palette
            page.keyboard.press("Control+Shift+c")
            page.keyboard.type("GPU administration")
            expect(page.locator(".lm-CommandPalette-item", has_text="Open GPU administration")).to_have_count(0)
            page.keyboard.press("Escape")
            # what the view would ask is refused by the server, which says which role would allow it
            status = page.evaluate("""async () => {
                const r = await fetch('/runai/api/v1/audit', {headers: {Authorization: 'token browser-test-token'}});
                return r.status;
            }""")
            assert status == 403
            # an admin grants rae the admin role meanwhile: back on the page, the button comes without a
            # reload (and goes when it is revoked)
            code, granted = server.api("POST", "access/bindings", {"role": "admin", "user": "rae"}, token="tok-ada")
            assert code == 201, granted
            back = "() => document.dispatchEvent(new Event('visibilitychange'))"
            page.evaluate(back)
            expect(panel.locator("button.jp-RunaiSidebar-adminButton")).to_be_visible()
            code, _ = server.api("DELETE", f"access/bindings/{granted['id']}", token="tok-ada")
            assert code == 200
            page.evaluate(back)
            expect(panel.locator("button.jp-RunaiSidebar-adminButton")).to_be_hidden()
            assert page.errors == []
        finally:
            page.context.close()
    finally:
        server.stop()
