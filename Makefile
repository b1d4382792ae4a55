# wnbench front door. Every target installs into .venv first if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= results
ARGS   ?=

.PHONY: install test test-slow lint format smoke bench-rl bench-gen bench-overhead bench-noise bench-ddi report \
	publish publish-report verify clean

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

# The suites end by writing their report (also when some runs failed; the exit status is the run's).
bench-rl: install
	$(BIN)/wnbench run suites/rl.yaml --out $(OUT)/rl $(ARGS); status=$$?; \
	$(BIN)/wnbench report $(OUT)/rl --out $(OUT)/rl/report && exit $$status

bench-gen: install
	$(BIN)/wnbench run suites/gen.yaml --out $(OUT)/gen $(ARGS); status=$$?; \
	$(BIN)/wnbench report $(OUT)/gen --out $(OUT)/gen/report && exit $$status

bench-overhead: install
	$(BIN)/wnbench bench overhead --out $(OUT)/bench $(ARGS)

bench-noise: install
	$(BIN)/wnbench bench noise --out $(OUT)/bench $(ARGS)

bench-ddi: install
	$(BIN)/wnbench bench ddi --out $(OUT)/bench $(ARGS)

# Every suite and benchmark folder under $(OUT), one report: results/report/report.html (+ .md, verdicts.json).
report: install
	$(BIN)/wnbench report $(OUT) --out $(OUT)/report $(ARGS)

# Every suite folder under $(OUT) (records that finished) into the committed records, results/published/.
publish: install
	$(BIN)/wnbench publish $$(for d in $(OUT)/*/; do [ -f "$$d/suite.json" ] && echo "$$d"; done) \
		--to results/published

# The published report, from the committed records only: Markdown, figures and verdicts.json under docs/results
# (report.html is not committed). tests/test_publish.py checks that docs/results/verdicts.json is what they give.
publish-report: install
	$(BIN)/wnbench report results/published --out docs/results --readme README.md $(ARGS)

# Every committed archive against the record count and digest its plan records (exit 2 naming a damaged one).
verify: install
	$(BIN)/wnbench verify results/published

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
