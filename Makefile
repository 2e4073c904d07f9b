# The README's commands. Each target installs what it needs first and is quick when
# everything is already in place.
#   make up      - prepare the data, train, and serve the whole app on localhost
#   make test    - lint and run the whole test suite
#   make bench   - the benchmarks (full data set; slow)
#   make deploy  - deploy every stack to the AWS account of the current credentials
#   make destroy - tear the stacks down (data and trained models are retained)
#   make lock    - refresh requirements.lock after changing pyproject.toml's dependencies

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# Exactly this version: pip then takes the local CPU build; any other pulls CUDA wheels.
TORCH := torch==2.13.0
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Where the IMDB reviews come from: the official URL by default, a local copy when
# one sits beside the checkout (as in CI) or when IMDB_SOURCE is set.
IMDB_SOURCE ?= $(firstword $(wildcard ../shared/data/aclImdb.tar.gz))
ifneq ($(IMDB_SOURCE),)
export IMDB_SOURCE
endif

# Keep the CDK CLI's state in the project and its chatter off.
export CDK_HOME := $(CURDIR)/.cdk-home
export CDK_DISABLE_CLI_TELEMETRY := true
# Node 20 is past end of life; jsii says so on every run unless told this way.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: setup up test lint bench deploy destroy synth clean lock

setup: $(VENV)/.installed node_modules/.installed /usr/bin/chromium

# torch first, by version (the CPU build is a local file no public index has a hash for), then
# every other package exactly as requirements.lock pins and hashes it, then the project itself.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# After changing pyproject.toml's dependencies: resolve them afresh (minutes) into the lock.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check pip-tools==7.6.2
	$(BIN)/pip-compile --quiet --extra dev --generate-hashes --no-emit-index-url --no-emit-find-links \
		--strip-extras --unsafe-package torch --output-file requirements.lock pyproject.toml

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

/usr/bin/chromium:
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium

# TorchServe, for the test that serves the artifact on AWS's own serving stack.
/usr/bin/java:
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q openjdk-17-jre-headless

up: setup
	$(BIN)/sentiment up

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup lint /usr/bin/java
	$(BIN)/pytest

# The benchmarks behind the README's table: the full data set, minutes of CPU.
bench: setup
	$(BIN)/python bench/prepare_speed.py
	$(BIN)/python bench/model_accuracy.py
	$(BIN)/python bench/behaviour.py --model artifacts/bench/model/model.tar.gz
	$(BIN)/python bench/serving_latency.py --model artifacts/bench/model/model.tar.gz
	$(BIN)/python bench/soak.py --model artifacts/bench/model/model.tar.gz

synth: setup
	npx cdk synth --quiet

deploy: setup
	npx cdk deploy --all

destroy: setup
	npx cdk destroy --all

clean:
	rm -rf cdk.out .cdk-home .pytest_cache .ruff_cache test-artifacts
