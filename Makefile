PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint typecheck demo clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy schemas workflows activities meituan workers starter

test: lint typecheck
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/python -m starter.demo

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
