import sys
from pathlib import Path

# helpers shared by test modules (scenario_check.py)
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402


@pytest.fixture
def service(jp_serverapp):
    """The scheduler service inside the test's Jupyter server (modules that load pytest-jupyter)."""
    return jp_serverapp.web_app.settings["runai_service"]


@pytest.fixture
def api(jp_fetch, service):
    """The REST API of the test's Jupyter server; the pods still running at the end are ended."""
    from api_helpers import Api, kill_pods

    yield Api(jp_fetch)
    kill_pods(service)
