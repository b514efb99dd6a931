# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

## run: install, import seed_data into an empty knowledge base, serve on http://$(HOST):$(PORT)/
run: $(VENV)/.installed
	$(BIN)/kb db upgrade
	$(BIN)/kb serve --seed seed_data --host $(HOST) --port $(PORT)

## test: install what the tests need, then run them
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python bench/tagger_throughput.py

clean:
	rm -rf $(VENV) kb-data .pytest_cache
