"""jupyter-runai: GPU workload scheduling for people who work in Jupyter."""

__version__ = "0.1.0"
