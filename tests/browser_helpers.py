"""JupyterLab in a subprocess (the extension's server side and the prebuilt labextension),
and Debian's chromium driven by Python Playwright, for the sidebar's browser tests.

No browser is downloaded: Playwright launches the system chromium (``apt-get install chromium``)
through ``executable_path``, with the flags it needs on these machines.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


import pytest

from live_server import LiveServer

TOKEN = "browser-test-token"
START_TIMEOUT = 90
#: the labextension built from this tree (``jlpm build`` in labextension/ writes it)
LABEXTENSION = Path(__file__).resolve().parents[1] / "jupyter_runai" / "labextension"

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """The system chromium (Debian's package), or RUNAI_CHROMIUM."""
    for candidate in (os.environ.get("RUNAI_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def chromium_or_skip() -> str:
    """The system chromium; at a test module's import, skip the module without one (an error in CI,
    which installs it)."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            raise RuntimeError("the browser tests need Debian's chromium (apt-get install chromium); "
                               ".ci/run installs it")
        pytest.skip("no system chromium (apt-get install chromium)", allow_module_level=True)
    return path


# Imported by a browser test module, these replace pytest-jupyter's autouse fixtures there (active when
# the REST tests load its plugin): its loop fixture would close the loop that Playwright's sync API
# runs on this thread, and its cleanup partner cleans an in-process server these tests do not have.
@pytest.fixture
def jp_asyncio_loop():
    yield None


@pytest.fixture
def jp_server_cleanup():
    yield


class LabServer(LiveServer):
    """``jupyter lab`` on a free port, its HOME, Jupyter dirs and runai state in ``base``."""

    module = "jupyterlab"
    token = TOKEN
    log_name = "lab.log"
    start_timeout = START_TIMEOUT

    def settings(self) -> dict[str, Any]:
        settings = super().settings()
        settings["LabApp"] = {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}
        settings["LocalCluster"]["stop_grace_seconds"] = 1
        settings["RunaiApp"]["stop_grace_seconds"] = 1
        return settings

    def prepare(self) -> None:
        # this tree's labextension build, ahead of any installed copy (the user data dir comes
        # first in the labextensions path, see extra_env; the first one found wins)
        link = self.dirs["data"] / "labextensions" / "jupyter-runai"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(LABEXTENSION, target_is_directory=True)
        # no first-run "get notified about news?" toast in screenshots
        settings_dir = self.dirs["config"] / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
        settings_dir.mkdir(parents=True, exist_ok=True)
        (settings_dir / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))

    def extra_env(self) -> dict[str, str]:
        # the user's data dir (with this tree's labextension, see prepare) before the environment's,
        # in a virtual environment too
        return {"JUPYTER_PREFER_ENV_PATH": "0",
                "JUPYTERLAB_SETTINGS_DIR": str(self.dirs["config"] / "lab" / "user-settings"),
                "JUPYTERLAB_WORKSPACES_DIR": str(self.dirs["config"] / "lab" / "workspaces")}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.end_workloads()
        super().stop()

    @property
    def lab_url(self) -> str:
        return f"{self.url}lab?token={TOKEN}"


def new_lab_page(browser: Any, lab: LabServer, width: int = 1280, height: int = 800, timeout_ms: int = 30_000):
    """A page of ``lab`` in a new context of ``browser`` (a Playwright chromium), the splash gone;
    ``page.errors`` collects uncaught page errors. Close it with ``page.context.close()``."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.goto(lab.lab_url)
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    page.errors = errors  # type: ignore[attr-defined]
    return page


class open_page:
    """``with open_page(lab, chromium) as page:`` JupyterLab at 1280x800 in headless chromium
    (:func:`new_lab_page`); one at a time on a thread (Playwright's sync API)."""

    def __init__(self, lab: LabServer, chromium: str, width: int = 1280, height: int = 800,
                 timeout_ms: int = 30_000) -> None:
        self.lab, self.chromium, self.size, self.timeout_ms = lab, chromium, (width, height), timeout_ms

    def __enter__(self):
        from playwright.sync_api import sync_playwright  # noqa: PLC0415  (only where the browser tests run)

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=self.chromium, headless=True, args=CHROMIUM_ARGS)
        return new_lab_page(self._browser, self.lab, *self.size, timeout_ms=self.timeout_ms)

    def __exit__(self, *exc: Any) -> None:
        self._browser.close()
        self._pw.stop()
