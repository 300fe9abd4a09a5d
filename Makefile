# Two entry points, both self-contained on a fresh machine:
#   make lab   - install into .venv/ and run the main job
#   make test  - install into .venv/ (with test extras) and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ABS_BIN := $(abspath $(BIN))
# jlpm (yarn, shipped with jupyterlab / jupyter-builder) and the builder it runs, from the venv
JLPM := PATH="$(ABS_BIN):$$PATH" $(ABS_BIN)/jlpm

# the JupyterLab extension: TypeScript in labextension/, built into jupyter_runai/labextension
LABEXT_SRC := $(wildcard labextension/src/*.ts labextension/src/*/*.ts labextension/style/*.css \
                labextension/style/*.js labextension/style/*/*.svg) labextension/package.json
LABEXT_OUT := jupyter_runai/labextension/static/style.js

.PHONY: lab test install install-test demo clean labext jest screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip builds the labextension when there is none (jlpm install + build, by the hatch hook);
# labext rebuilds it when its sources changed since, and links it into the venv's Lab.
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(MAKE) --no-print-directory labext

# kubernetes-validate (the Kubernetes schemas, for the pod template's tests) goes in a folder of its
# own, outside the venv's site-packages: installed there, every `import kubernetes` (so every process
# that imports our models) would load it and its schema checkers, 1.5 s each
K8S_VALIDATE := $(VENV)/k8s-validate
# configurable-http-proxy (npm), JupyterHub's proxy, for the end-to-end test under a real hub
# (tests/test_jupyterhub.py finds it in the venv's chp/ folder)
CHP := $(VENV)/chp/node_modules/.bin/configurable-http-proxy
install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@test -d $(K8S_VALIDATE)/kubernetes_validate || \
	  $(BIN)/python -m pip install --quiet --target $(K8S_VALIDATE) "kubernetes-validate>=1.30"
	@test -x $(CHP) || npm install --silent --no-audit --no-fund --prefix $(VENV)/chp "configurable-http-proxy@^5"
	$(MAKE) --no-print-directory labext

labext: $(LABEXT_OUT)
	@PATH="$(ABS_BIN):$$PATH" $(BIN)/jupyter-builder develop --overwrite . >/dev/null

$(LABEXT_OUT): $(LABEXT_SRC)
	cd labextension && $(JLPM) install && $(JLPM) build
	@touch $@

# The main job: JupyterLab with the scheduler running inside its server, on the
# local cluster (this machine; virtual GPUs when it has none). Extra arguments
# for jupyter lab go in LAB_ARGS, e.g. make lab LAB_ARGS="--port 9999".
# As root (containers, Binder-like hosts) Jupyter refuses to start without --allow-root:
# it is added then, with a note (a root server's workloads run as root too).
ROOT_ARGS := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
lab: install
	@$(if $(ROOT_ARGS),echo "make lab: running as root: JupyterLab starts with --allow-root (its workloads run as root too)")
	$(BIN)/jupyter lab $(ROOT_ARGS) $(LAB_ARGS)

# A short demonstration of the scheduling engine alone.
demo: install
	$(BIN)/python -m jupyter_runai.sim demo

# jest (the sidebar's logic), the labextension installed OK, then pytest (including the
# browser tests, which drive Debian's chromium: apt-get install chromium)
test: install-test jest
	@PATH="$(ABS_BIN):$$PATH" $(BIN)/jupyter labextension list 2>&1 | grep -E "jupyter-runai.*enabled.*OK" \
	  || { echo "the jupyter-runai labextension is not installed OK"; exit 1; }
	$(BIN)/python -m pytest -q

jest: $(BIN)/python
	cd labextension && $(JLPM) install >/dev/null && $(JLPM) test --silent

# The screenshots in docs/images/ (README), taken by the browser tests.
screenshots: install-test
	RUNAI_SCREENSHOTS=$(abspath docs/images) $(BIN)/python -m pytest -q tests/test_sidebar_browser.py \
	  tests/test_sidebar_admin_browser.py tests/test_widgets_browser.py -m 'slow or not slow'

clean:
	rm -rf $(VENV) build dist *.egg-info jupyter_runai/labextension labextension/lib labextension/node_modules \
	  labextension/tsconfig.tsbuildinfo
