"""The Admin view's guided policy form in a real browser (the setup of test_sidebar_admin_browser.py:
JupyterLab with this tree's labextension, 2 virtual GPUs, chromium through Playwright): an admin sets a
project's GPU max through the form, with what the cluster allows greyed beside the row and the server's
refusal of a looser max under it, and the sidebar's New workload form then refuses more.
The screenshot (1280x800) goes to $RUNAI_SCREENSHOTS, else to a temp dir."""

from __future__ import annotations

import pytest

from browser_helpers import jp_asyncio_loop, jp_server_cleanup  # noqa: F401 (fixtures: see browser_helpers)
from test_sidebar_admin_browser import TIMEOUT, expect, lab, open_admin, open_panel, page, shoot, shots  # noqa: F401

pytestmark = pytest.mark.timeout(240)
GPU_ROW = '.jp-RunaiPolicyForm-row[data-field="resources.gpu"]'


def test_an_admin_sets_a_projects_gpu_max_in_the_guided_form_and_the_new_workload_form_refuses_more(page, lab,
                                                                                                     shots):
    code, body = lab.api("PUT", "policies", {"scope": "cluster", "kind": "training", "defaults": {"resources.gpu": 1},
                                             "rules": {"resources.gpu": {"max": 2}}})
    assert code == 200, body
    try:
        view = open_admin(page)
        view.locator('.jp-RunaiAdmin-tab[data-tab="policies"]').click()
        view.locator("button.jp-RunaiAdmin-new").click()
        form = view.locator("form.jp-RunaiPolicyForm")
        expect(form.locator("#jp-runai-policy-scope")).to_have_value("project")
        expect(form.locator("#jp-runai-policy-name")).to_have_value("default")
        expect(form.locator("#jp-runai-policy-kind")).to_have_value("training")
        gpu = form.locator(GPU_ROW)
        # what the cluster allows, greyed beside the row; the inputs typed for the field, with a tooltip
        expect(gpu.locator(".jp-RunaiPolicyForm-inherited")).to_have_text("default 1, max 2 (cluster)", timeout=TIMEOUT)
        max_input = gpu.locator("#jp-runai-policy-resources-gpu-max")
        assert max_input.get_attribute("type") == "number"
        assert "A narrower scope may only lower it" in max_input.get_attribute("title")
        expect(gpu.locator(".jp-RunaiPolicyForm-unit")).to_have_text("devices; 0.5 = half")
        assert form.locator('.jp-RunaiPolicyForm-row[data-field="workers"]').count() == 0  # a distributed field
        # looser than the cluster: the server refuses, and says so under the row; nothing is stored
        max_input.fill("3")
        form.locator("button.jp-RunaiAdmin-save").click()
        refusal = form.locator('.jp-RunaiPolicyForm-errorRow[data-field="resources.gpu"]')
        expect(refusal).to_contain_text("rules.resources.gpu.max: 3 is above the max 2 that the cluster policy sets")
        expect(max_input).to_have_attribute("aria-invalid", "true")
        assert lab.api("GET", "policies?scope=project")[1]["policies"] == []
        form.evaluate("form => form.scrollIntoView({block: 'start'})")  # the target and the GPU row in view
        shoot(page, shots / "admin-policy-form.png")
        # a max the cluster allows: saved, listed, in force
        max_input.fill("1")
        form.locator("button.jp-RunaiAdmin-save").click()
        card = view.locator('.jp-RunaiAdmin-policy[data-policy="project default/training"]')
        expect(card).to_contain_text('"max": 1')
        code, effective = lab.api("GET", "policies/effective?project=default&kind=training")
        assert effective["rules"]["resources.gpu"]["max"] == 1, effective
        # the guided form opens on it again; "Edit as JSON" is the advanced path, with what the form says
        card.locator("button.jp-RunaiAdmin-edit").click()
        expect(form.locator("#jp-runai-policy-resources-gpu-max")).to_have_value("1")
        expect(form.locator("#jp-runai-policy-scope")).to_be_disabled()
        form.locator("button.jp-RunaiPolicyForm-json").click()
        expect(view.locator("#jp-runai-admin-policy")).to_have_value(
            '{\n  "scope": "project",\n  "kind": "training",\n  "defaults": {},\n  "rules": {\n    "resources.gpu": '
            '{\n      "max": 1\n    }\n  },\n  "name": "default"\n}')
        view.locator("button.jp-RunaiAdmin-cancel").click()

        # the sidebar's New workload form now allows 1 GPU for training in default, and refuses 2
        open_panel(page).locator("button.jp-RunaiSidebar-new").click()
        new = page.locator("#jupyter-runai-new-workload")
        new.locator("#jp-runai-kind").select_option("training")
        new.locator('input[name="gpu_mode"][value="whole"]').check()
        expect(new.locator("#jp-runai-gpu")).to_have_attribute("max", "1", timeout=TIMEOUT)
        new.locator("#jp-runai-name").fill("too-many")
        new.locator("#jp-runai-gpu").fill("2")
        new.locator("button.jp-RunaiForm-submit").click()
        expect(new.locator("#jp-runai-gpu-error")).to_contain_text("from 1 to 1")
        expect(new.locator("#jp-runai-gpu-error")).to_contain_text("project 'default'")
        assert lab.api("GET", "workloads/default/too-many")[0] == 404
        new.locator("button.jp-RunaiForm-cancel").click()
        assert page.errors == []
    finally:
        lab.api("DELETE", "policies?scope=project&name=default&kind=training")
        lab.api("DELETE", "policies?scope=cluster&kind=training")
