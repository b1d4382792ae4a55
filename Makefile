# wnbench front door. Every target installs into .venv first if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= results
ARGS   ?=

.PHONY: install test test-slow lint format smoke bench-rl bench-gen bench-overhead bench-noise clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e ".[dev]"
	touch $@

test: install
	$(BIN)/pytest -q $(ARGS)

test-slow: install
	$(BIN)/pytest -q -m slow $(ARGS)

lint: install
	$(BIN)/ruff check wnbench tests
	$(BIN)/ruff format --check wnbench tests

format: install
	$(BIN)/ruff check --fix wnbench tests
	$(BIN)/ruff format wnbench tests

smoke: install
	$(BIN)/wnbench run suites/smoke.yaml --profile smoke --out $(OUT)/smoke $(ARGS)

bench-rl: install
	$(BIN)/wnbench run suites/rl.yaml --out $(OUT)/rl $(ARGS)

bench-gen: install
	$(BIN)/wnbench run suites/gen.yaml --out $(OUT)/gen $(ARGS)

bench-overhead: install
	$(BIN)/wnbench bench overhead --out $(OUT)/bench $(ARGS)

bench-noise: install
	$(BIN)/wnbench bench noise --out $(OUT)/bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
