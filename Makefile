# tuneloop: `make demo` and `make test` each set up what they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEBS := prometheus haproxy nginx iperf3 linux-perf prometheus-node-exporter iproute2
SOURCES := tuneloop agent tuner lab tests bench alerts dashboards

.PHONY: demo test check lint typecheck layers generate check-generated unit bench setup debs clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/.installed

debs:
	./scripts/install-debs.sh $(DEBS)

demo: $(BIN)/.installed
	$(BIN)/tuneloop demo --out $(CURDIR)/tuneloop-demo

lint: $(BIN)/.installed
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(BIN)/.installed
	$(BIN)/mypy
	$(BIN)/mypy tests bench alerts $(wildcard dashboards/*.dashboard.py)

# Layer contracts: the core imports neither side, the agent never the tuner, ...
layers: $(BIN)/.installed
	$(BIN)/lint-imports

check-generated: $(BIN)/.installed
	$(BIN)/tuneloop generate --check

generate: $(BIN)/.installed
	$(BIN)/tuneloop generate

# The fast path: static checks and the unit tests (no real programs, no sleeps).
unit: $(BIN)/.installed
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

check: lint typecheck layers check-generated unit

# Everything: the Debian programs, static checks, then every test (unit, deploy, integration).
# TEST_WORKERS=N runs them in N pytest-xdist workers, a test file each (about 8 min instead of 13
# on 2 cores); the default, 0, runs one test at a time: two labs at once on 2 cores lengthen the
# queue a lab trial leaves behind, which the next measurement window then inherits.
TEST_WORKERS ?= 0
test: debs $(BIN)/.installed lint typecheck layers check-generated
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

bench: debs $(BIN)/.installed
	for script in $(filter-out bench/__init__.py bench/common.py bench/tuner_efficiency_peers.py,$(wildcard bench/*.py)); do \
		$(BIN)/python -m bench.$$(basename $$script .py) || exit 1; \
	done

clean:
	rm -rf $(VENV) state .pytest_cache .mypy_cache .ruff_cache

# Container images: the agent and the tuner, two targets of deploy/Dockerfile.
IMAGE_REGISTRY ?= ghcr.io/tuneloop
IMAGE_TAG ?= 0.1.0
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)

.PHONY: images
images:
	@test -n "$(CONTAINER_ENGINE)" || { echo "images: no docker or podman found; nothing built" >&2; exit 1; }
	$(CONTAINER_ENGINE) build -f deploy/Dockerfile --target agent -t $(IMAGE_REGISTRY)/tuneloop-agent:$(IMAGE_TAG) .
	$(CONTAINER_ENGINE) build -f deploy/Dockerfile --target tuner -t $(IMAGE_REGISTRY)/tuneloop-tuner:$(IMAGE_TAG) .
