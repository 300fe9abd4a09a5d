"""jupyter-runai: GPU workload scheduling for people who work in Jupyter."""

__version__ = "0.1.0"


def _jupyter_labextension_paths():
    """The prebuilt JupyterLab extension (the "GPU workloads" sidebar), built from labextension/."""
    return [{"src": "labextension", "dest": "jupyter-runai"}]


def _jupyter_server_extension_points():
    """The Jupyter server extension: the scheduler service and its REST API (``server.app.RunaiApp``)."""
    from .server.app import RunaiApp

    return [{"module": "jupyter_runai.server.app", "app": RunaiApp}]


def load_ipython_extension(ipython):
    """``%load_ext jupyter_runai``: the ``%runai`` / ``%%runai`` magics (``magics.py``)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def __getattr__(name):
    """``from jupyter_runai import Client`` (and the object classes), imported on first use so that
    ``import jupyter_runai`` stays light for the CLI."""
    if name in ("Client", "Workload", "RunaiError"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
