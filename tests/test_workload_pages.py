"""Workload lists in pages on a real server (``limit`` and ``continue``), read whole by the
Python client and the CLI, and each workload's cached view kept current."""

from __future__ import annotations

import asyncio

import pytest

from api_helpers import server_config
from jupyter_runai import client as client_module
from jupyter_runai.client import RunaiClient

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tmp_path):
    return server_config(tmp_path)


async def submit_many(api, count: int) -> list[str]:
    names = [f"p-{i}" for i in range(count)]
    for name in names:  # 2 GPUs each on 2 GPUs: one runs, the rest wait (and never change)
        await api.submit(name=name, command="sleep 30", resources={"gpu": 2})
    return names


async def read_pages(api, limit: int, between=None, **params) -> tuple[list[str], int]:
    names, pages, token = [], 0, None
    while True:
        query = {"limit": str(limit), **params, **({"continue": token} if token else {})}
        code, body = await api.get("workloads", params=query)
        assert code == 200, body
        assert len(body["workloads"]) <= limit
        names += [w["spec"]["name"] for w in body["workloads"]]
        pages += 1
        token = body["continue"]
        if not token:
            return names, pages
        if between is not None:
            await between(pages)


async def test_pages_follow_the_queue_order_and_end_with_no_token(api, service):
    names = await submit_many(api, 7)
    code, whole = await api.get("workloads")
    assert code == 200 and whole["continue"] is None
    assert [w["spec"]["name"] for w in whole["workloads"]] == names
    got, pages = await read_pages(api, 3)
    assert got == names and pages == 3
    got, pages = await read_pages(api, 7)
    assert got == names and pages == 1
    # the filters hold on every page
    got, _ = await read_pages(api, 2, phase="Pending")
    assert got == names[1:]


async def test_changes_between_pages_neither_repeat_nor_skip_a_workload(api, service):
    names = await submit_many(api, 6)

    async def change(page: int) -> None:
        if page == 1:  # one already read is deleted, one more is submitted
            code, _ = await api.delete("workloads", "default", names[0])
            assert code == 202
            await api.submit(name="late", command="sleep 30", resources={"gpu": 2})

    got, _ = await read_pages(api, 2, between=change)
    assert got == names + ["late"]


@pytest.mark.parametrize("params, field", [({"limit": "0"}, "limit"), ({"limit": "10001"}, "limit"),
                                           ({"continue": "abc"}, "continue"), ({"continue": "-1"}, "continue"),
                                           ({"continue": "\u00b2"}, "continue")])
async def test_a_bad_limit_or_token_is_a_400_naming_it(api, service, params, field):
    code, body = await api.get("workloads", params=params)
    assert code == 400 and body["error"]["field"] == field and body["error"]["allowed"]


async def test_a_listed_workload_is_what_get_shows_after_it_changed(api, service):
    await api.submit(name="changes", command="true", resources={"gpu": 0.5})
    _, first = await api.get("workloads")  # its view is cached now (Pending or Running)
    done = await api.wait_phase("changes", "Succeeded")
    done.pop("events")
    _, later = await api.get("workloads")
    assert later["workloads"] == [done]
    assert first["workloads"][0]["status"]["phase"] != "Succeeded"


async def test_the_python_client_reads_every_page(api, service, jp_http_port, jp_base_url, jp_auth_header,
                                                 monkeypatch):
    names = await submit_many(api, 5)
    seen_limits = []
    get_json = RunaiClient.get_json

    def counting(self, path, params=None):
        if path == "workloads":
            seen_limits.append(params.get("limit"))
        return get_json(self, path, params)

    monkeypatch.setattr(RunaiClient, "get_json", counting)
    monkeypatch.setattr(client_module, "LIST_PAGE", 2)
    token = jp_auth_header["Authorization"].split(" ", 1)[1]
    client = RunaiClient(f"http://localhost:{jp_http_port}{jp_base_url}", token)
    got = await asyncio.get_running_loop().run_in_executor(None, client.list_workloads)
    assert [w["spec"]["name"] for w in got] == names
    assert seen_limits == [2, 2, 2]


def test_the_cached_views_of_deleted_workloads_are_swept():
    from jupyter_runai.models import Workload, WorkloadSpec
    from jupyter_runai.workload_json import STALE_SLACK, WorkloadJSON

    cache = WorkloadJSON()
    gone = [Workload(spec=WorkloadSpec(name=f"g-{i}", command="true")) for i in range(STALE_SLACK + 2)]
    for w in gone:
        cache.get(w, 1)
    kept = gone[0]
    cache.sweep({kept.uid: kept})
    assert len(cache) == 1
    assert cache.get(kept, 1) == cache.get(kept, 1)
    kept.status.queue_position = 3  # a moved queue position is a new view, whatever the version
    assert b'"queue_position":3' in cache.get(kept, 1)
