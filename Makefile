PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pip-tools (make lock) and pip-audit (make audit), apart from the project's own packages.
TOOLS       := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

# Installs exactly what a lock file names, each file checked against its hashes: nothing is
# resolved against the index at install time.
PIP_LOCKED := -m pip install --quiet --require-hashes --no-deps

.PHONY: install test test-repeat lint typecheck demo audit lock clean

# The project with its dev, local and otel extras, from requirements/dev.txt (see `lock`).
$(STAMP): pyproject.toml requirements/dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP_LOCKED) -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --no-cache --check .

typecheck: $(STAMP)
	$(BIN)/mypy schemas meituan infra activities workflows analytics workers starter localstack bench

test: lint typecheck
	$(BIN)/pytest -q

# N runs of the suite, P at once, each from a fresh clone of HEAD (logs kept): finds flakes.
N ?= 5
P ?= 1
test-repeat:
	.ci/repeat $(N) $(P)

# DEMO_ARGS: the demo's options, e.g. make demo DEMO_ARGS="--orders 10 --json-logs".
DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/python -m localstack.demo $(DEMO_ARGS)

$(TOOLS_STAMP): requirements/tools.txt
	test -d $(TOOLS) || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python $(PIP_LOCKED) -r requirements/tools.txt
	touch $(TOOLS_STAMP)

# Known vulnerabilities of every locked package, from PyPI's advisories (.ci/audit): fails on
# one found, and on a package it could not look up unless AUDIT_UNAUDITED=warn (as .ci/run).
AUDIT_UNAUDITED ?= fail
audit: $(TOOLS_STAMP)
	$(TOOLS)/bin/python .ci/audit --unaudited=$(AUDIT_UNAUDITED) \
		requirements/main.txt requirements/dev.txt requirements/otel.txt requirements/tools.txt

# The lock files, resolved for CPython 3.11 on Linux (the image's Python and CI's):
#   requirements/main.txt   the dependencies: the production image (Dockerfile)
#   requirements/dev.txt    with the dev, local and otel extras, main's versions kept: what make installs
#   requirements/otel.txt   main and the otel extra at dev's versions: an image built with TRACING=yes
#   requirements/tools.txt  pip-tools and pip-audit (requirements/tools.in)
# `make lock` adds and drops what pyproject.toml changed and keeps every other pin;
# `make lock UPGRADE="httpx idna"` moves those packages to their newest allowed versions,
# `make lock UPGRADE=all` moves everything.
UPGRADE ?=
COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --no-emit-trusted-host
# The upgrade options for lock file $(1): only the packages it holds (pip-compile would add the
# others to it).
upgrades = $(if $(filter all,$(UPGRADE)),--upgrade,$(foreach p,$(UPGRADE),$(if $(shell \
	grep -qiE '^$(shell echo $(p) | tr '_.' '--')==' $(1) && echo y),--upgrade-package=$(p))))
lock: $(TOOLS_STAMP)
	@$(TOOLS)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "make lock resolves for Python 3.11: make lock PYTHON=python3.11 (after rm -r $(TOOLS))"; exit 1; }
	$(COMPILE) $(call upgrades,requirements/main.txt) --build-deps-for editable \
		-o requirements/main.txt pyproject.toml
	$(COMPILE) $(call upgrades,requirements/dev.txt) --build-deps-for editable \
		--extra dev --extra local --extra otel -c requirements/main.txt -o requirements/dev.txt pyproject.toml
	$(COMPILE) $(call upgrades,requirements/otel.txt) \
		--extra otel -c requirements/dev.txt -o requirements/otel.txt pyproject.toml
	$(COMPILE) $(call upgrades,requirements/tools.txt) -o requirements/tools.txt requirements/tools.in

clean:
	rm -rf $(VENV) $(TOOLS) .data .pytest_cache .mypy_cache .ruff_cache
