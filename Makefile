# threshold-serving: export a Keras threshold filter, serve it with TF Serving, call it over gRPC.
# Every target bootstraps .venv on first use, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv export serve stop test lint bench clean sample status logs image

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[serve,dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install everything (done once; redone when pyproject.toml changes)

export: $(STAMP) ## write the next SavedModel version under models/threshold/ and its TFLite file
	$(PY) -m export

serve: $(STAMP) ## export if none, serve until AVAILABLE (SERVER=auto|docker|local DRY_RUN=1 TFS_IMAGE GRPC_PORT REST_PORT)
	$(PY) -m serving.launch serve

stop: $(STAMP) ## stop what make serve started (safe to run twice)
	$(PY) -m serving.launch stop

sample: $(STAMP) ## write data.npy to try the client on (row 0 starts with the reference vector)
	$(PY) -m client.sample data.npy

status: $(STAMP) ## what make serve started: endpoints, model versions, states and labels
	$(PY) -m serving.launch status

logs: $(STAMP) ## the server's last log lines (LOG_LINES=50, FOLLOW=1 to keep following)
	$(PY) -m serving.launch logs

image: $(STAMP) ## docker build serving/Dockerfile (DRY_RUN=1 prints it; IMAGE_TAG, IMAGE_GPU=0)
	$(PY) -m serving.launch image

test: $(STAMP) ## run the test suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, and the import contracts of pyproject.toml (lint-imports)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP) ## benchmarks as ratios vs references in the same run (BENCH_QUICK=1: smoke run; BENCH_RSS_MIB=N)
	$(PY) -m bench.run $(BENCH_ARGS)

clean: ## remove .venv, exported models and caches
	rm -rf $(VENV) models .serve .pytest_cache .ruff_cache .hypothesis build *.egg-info
