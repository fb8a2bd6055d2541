# Set-up and the main jobs. The environment lives in .venv/ at the repo root.
#   make bench   set up, then `mimic-edge bench` on the default preset (no data needed)
#   make test    set up, then the test suite (what CI runs)
#   make test-fast  the suite without the tests marked slow (a quick loop while editing)
#
# On a machine without an NVIDIA GPU the CPU build of torch is installed first, so nothing
# pulls the multi-GB CUDA build. Override TORCH_SPEC / TORCH_INDEX to choose another build,
# e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu on a machine without a local wheel.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)

.PHONY: setup bench test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
ifneq ($(HAS_GPU),1)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
endif
	$(PY) -m pip install --quiet -e ".[triton,plot,dev]"
	touch $@

bench: setup
	$(VENV)/bin/mimic-edge bench

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
