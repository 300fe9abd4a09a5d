"""The sidebar's monitoring charts and its Admin view in a real browser (JupyterLab with this tree's
labextension on the local cluster of 2 virtual GPUs, Debian's chromium through Playwright): what an
admin and a non-admin see. Screenshots (1280x800) go to $RUNAI_SCREENSHOTS, else to a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser_helpers import LabServer, chromium_or_skip, jp_asyncio_loop, jp_server_cleanup, open_page  # noqa: F401

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


def open_panel(page):
    page.locator('li.lm-TabBar-tab[data-id="jupyter-runai-sidebar"]').click()
    panel = page.locator("#jupyter-runai-sidebar")
    expect(panel.locator(".jp-RunaiSidebar-title")).to_have_text("GPU workloads")
    return panel


def open_cluster(page):
    open_panel(page)
    page.click("#jupyter-runai-sidebar button.jp-RunaiSidebar-clusterButton")
    view = page.locator("#jupyter-runai-cluster-view")
    expect(view.locator(".jp-RunaiDevice")).to_have_count(2)
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
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "cluster-view-history.png"))
    assert page.errors == []
