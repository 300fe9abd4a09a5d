# Two entry points, both self-contained on a fresh machine:
#   make lab   - install into .venv/ and run the main job
#   make test  - install into .venv/ (with test extras) and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: lab test install install-test demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"

# The main job: JupyterLab with the scheduler running inside its server, on the
# local cluster (this machine; virtual GPUs when it has none). Extra arguments
# for jupyter lab go in LAB_ARGS, e.g. make lab LAB_ARGS="--port 9999".
lab: install
	$(BIN)/jupyter lab $(LAB_ARGS)

# A short demonstration of the scheduling engine alone.
demo: install
	$(BIN)/python -m jupyter_runai.sim demo

test: install-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info
