PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-repeat lint typecheck demo clean

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
	$(BIN)/mypy schemas meituan infra activities workflows analytics workers starter localstack bench

test: lint typecheck
	$(BIN)/pytest -q

# N runs of the suite, P at once, each from a fresh clone of HEAD (logs kept): finds flakes.
N ?= 5
P ?= 1
test-repeat:
	.ci/repeat $(N) $(P)

demo: $(STAMP)
	$(BIN)/python -m localstack.demo

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
