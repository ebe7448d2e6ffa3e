# Everything a fresh clone needs: `make test` and `make demo` create .venv and install pinned
# dependencies (requirements*.txt, locked by constraints.txt) on first use, and reuse them after.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := requirements.txt requirements-dev.txt lambdas/requirements.txt iam_report_emulator/requirements.txt \
	harness/requirements.txt constraints.txt
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1
# The CDK CLI: pinned in package.json / package-lock.json, installed into node_modules by `npm ci`.
NODE_STAMP := node_modules/.installed
export CDK_DISABLE_CLI_TELEMETRY := true
CDK := npx --no-install cdk
# Extra CLI options, e.g. `make deploy CDK_ARGS="--profile management --require-approval never"`.
CDK_ARGS ?=
# The browser tests' and `make screenshot`'s Chromium: Debian's package (Playwright drives it, never
# downloads its own). Installed by apt only when missing (about 115 MB, 25 packages; ~15 s here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)

.PHONY: docs venv node browser test lint typecheck unit demo screenshot bench serve synth bootstrap deploy deploy-reporter diff destroy lock clean

venv: $(STAMP)

node: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

browser: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "$(CHROMIUM) is missing and there is no apt-get: install Chromium there"; exit 1; }
	@echo "Installing Debian's chromium (for the browser tests) with apt-get$(if $(SUDO), via sudo) ..."
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
	@test -x $(CHROMIUM) || { echo "apt-get installed chromium but $(CHROMIUM) is still missing"; exit 1; }

$(STAMP): $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(NODE_STAMP) $(CHROMIUM)
	$(BIN)/pytest -n 2

test: lint typecheck unit

# The README's configuration table, from lambdas/collector/settings.py (a test checks they agree).
docs: $(STAMP)
	$(BIN)/python -m infra.docs

demo: $(STAMP)
	$(BIN)/python -m harness demo

# A full-page PNG of the demo's report (demo-output/report.html -> docs/report.png, 1400 px wide).
screenshot: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m harness.screenshot

serve: $(STAMP)
	$(BIN)/python -m iam_report_emulator serve

# Organizations of 100, 1,000 and 10,000 accounts under three IAM models, beside a naive collector (about an
# hour on 2 cores, two units at once: the 10,000-account observed runs go day after day until steady; not
# part of `make test`, which runs a small variant). Writes bench-results.json.
# E.g. BENCH_ARGS="--sizes 100,1000" (about 8 minutes), or "--models observed-account --days 3".
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m harness.bench $(BENCH_ARGS)

# The CDK app (app.py, configured by cdk.json's context): synth bundles the Lambda code locally (no Docker).
synth: $(STAMP) $(NODE_STAMP)
	$(CDK) synth $(CDK_ARGS)

# Once per account and region: `make bootstrap CDK_ARGS="aws://111122223333/eu-west-1"`.
bootstrap: $(STAMP) $(NODE_STAMP)
	$(CDK) bootstrap $(CDK_ARGS)

diff: $(STAMP) $(NODE_STAMP)
	$(CDK) diff OrgAccessReportCollector $(CDK_ARGS)

deploy: $(STAMP) $(NODE_STAMP)
	$(CDK) deploy OrgAccessReportCollector $(CDK_ARGS)

# Cross-account mode: the reporter role, deployed with the management account's credentials.
#   make deploy-reporter COLLECTOR_ACCOUNT=111122223333 EXTERNAL_ID=... CDK_ARGS="--profile management"
deploy-reporter: $(STAMP) $(NODE_STAMP)
	@test -n "$(COLLECTOR_ACCOUNT)" -a -n "$(EXTERNAL_ID)" || \
		{ echo "set COLLECTOR_ACCOUNT (the collector's account id) and EXTERNAL_ID"; exit 2; }
	$(CDK) deploy OrgAccessReportReporterRole $(CDK_ARGS) \
		--context 'reporter_stack={"collector_account": "$(COLLECTOR_ACCOUNT)", "external_id": "$(EXTERNAL_ID)"}'

destroy: $(STAMP) $(NODE_STAMP)
	$(CDK) destroy OrgAccessReportCollector $(CDK_ARGS)

# Re-resolve the lock after changing a requirements file on purpose.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache demo-output cdk.out test-output
