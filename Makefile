# Everything a fresh clone needs: `make test` and `make demo` create .venv and install pinned
# dependencies (requirements*.txt, locked by constraints.txt) on first use, and reuse them after.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := requirements.txt requirements-dev.txt lambdas/requirements.txt sandbox/requirements.txt constraints.txt
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: venv test lint typecheck unit demo serve lock clean

venv: $(STAMP)

$(STAMP): $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n 2

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/python -m sandbox demo

serve: $(STAMP)
	$(BIN)/python -m sandbox serve

# Re-resolve the lock after changing a requirements file on purpose.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo-output cdk.out
