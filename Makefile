# Two commands do everything: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export MUJOCO_GL ?= egl
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch==2.13.0 first: it takes the CPU wheel; a bare `torch` would pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,ros]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vla demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --timeout 600 -q

clean:
	rm -rf $(VENV)
