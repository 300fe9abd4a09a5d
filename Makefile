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

# For now the main job is a demonstration of the scheduling engine on the
# shipped scenarios; the service issue turns this into JupyterLab.
lab: install
	$(BIN)/python -m jupyter_runai.sim demo

test: install-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info
