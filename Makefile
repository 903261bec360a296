# The two commands a newcomer needs: `make run` and `make test`. Everything else they need is
# installed from here: the virtualenv, the project, and nats-server (from the distribution).

# The distribution's interpreter when it is new enough (scripts/python says why).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell scripts/python)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The interpreter the venv was made with. A venv made with another one than PYTHON names now
# (a checkout from before PYTHON took the distribution's, or `make PYTHON=...`) is made again.
INTERPRETER := $(VENV)/.interpreter
WANT_INTERPRETER := $(shell $(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))' \
	2>/dev/null)
HAVE_INTERPRETER := $(shell cat $(INTERPRETER) 2>/dev/null)
NEW_INTERPRETER := $(if $(filter $(WANT_INTERPRETER),$(HAVE_INTERPRETER)),,yes)
# The modules compiled with mypyc (setup.py): editing one builds them again.
COMPILED := $(shell $(PYTHON) -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["routerd"]["compiled"]))' 2>/dev/null)
# The bench extra (matplotlib, for the plots) has its own stamp: `make test` does not need it.
BENCH_STAMP := $(VENV)/.installed-bench
CONFIG ?= etc/router.yml
NATS_PORT ?= 4222
PYTEST_ARGS ?=
# Options for the benchmark harness, e.g. `make bench ARGS=--quick` (see `python -m benchmarks --help`).
ARGS ?=
# How long `make soak` runs; e.g. `make soak MINUTES=2`, or `make soak ARGS="--seconds 90"`.
MINUTES ?= 10

.PHONY: install run test check bench bench-quick bench-cc soak clean install-service system-deps bench-deps test-deps new-interpreter

install: $(STAMP) system-deps

# Re-installs only when pyproject.toml, setup.py, a compiled module or the interpreter changes,
# so `make test` stays quick when all is present. The compiled modules need a C compiler and
# the interpreter's headers.
ifdef NEW_INTERPRETER
$(STAMP): new-interpreter
endif
$(STAMP): pyproject.toml setup.py $(COMPILED)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python >= 3.11 is required (found $$($(PYTHON) --version))"; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || \
		scripts/apt-install python3-venv
	@command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || scripts/apt-install gcc libc6-dev
	@$(PYTHON) -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_path("include"), "Python.h")))' || \
		scripts/apt-install python3-dev
	$(PYTHON) -m venv $(if $(NEW_INTERPRETER),--clear) $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools
	$(BIN)/pip install --quiet -e '.[test,build]'
	@# Again, without build isolation: mypyc compiles against what was just installed.
	$(BIN)/pip install --quiet --no-build-isolation --no-deps -e .
	@echo '$(WANT_INTERPRETER)' > $(INTERPRETER)
	@touch $@

new-interpreter:

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --no-build-isolation -e '.[test,build,bench]'
	@touch $@

# nats-server for routerd and the tests; openssl's s_server is a TLS peer in the tests, and curl
# a real TLS client of routerd's own listener.
system-deps:
	@command -v nats-server >/dev/null 2>&1 || scripts/apt-install nats-server
	@command -v openssl >/dev/null 2>&1 || scripts/apt-install openssl
	@command -v curl >/dev/null 2>&1 || scripts/apt-install curl

# wrk, nginx and HAProxy: the load generator and the proxies routerd is compared with; h2load
# (nghttp2-client) loads HTTP/2. `make test` needs them too: tests/benchmarks runs the harness in
# its tiny mode.
bench-deps:
	@for tool in wrk nginx haproxy; do \
		command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || scripts/apt-install $$tool; \
	done
	@command -v h2load >/dev/null 2>&1 || scripts/apt-install nghttp2-client

# What the tests check the shipped service files with: logrotate runs etc/logrotate.d/routerd
# against a live routerd, and systemd-analyze verifies the unit.
test-deps:
	@command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || scripts/apt-install logrotate
	@command -v systemd-analyze >/dev/null 2>&1 || scripts/apt-install systemd
	@command -v nghttp >/dev/null 2>&1 || scripts/apt-install nghttp2-client

# A C compiler builds the open-loop load generator (benchmarks/loadgen.c); without one the
# harness falls back to a Python generator that cannot pace as fast or as finely.
bench-cc:
	@command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || scripts/apt-install gcc libc6-dev

run: install
	@scripts/run-local $(CONFIG) $(NATS_PORT)

test: install bench-deps test-deps
	$(BIN)/pytest $(PYTEST_ARGS)

check: install
	$(BIN)/ruff check router registry runtime supervisor tests benchmarks
	$(BIN)/ruff format --check router registry runtime supervisor tests benchmarks
	$(BIN)/mypy

bench: install $(BENCH_STAMP) bench-deps bench-cc
	$(BIN)/python -m benchmarks run $(ARGS)

bench-quick: install $(BENCH_STAMP) bench-deps bench-cc
	$(BIN)/python -m benchmarks run --quick $(ARGS)

# Traffic through routerd for MINUTES while faults rotate; fails (exit 1) on any non-2xx or lost
# route. Not part of `make test`. Options: `python -m benchmarks soak --help`.
soak: install $(BENCH_STAMP) bench-deps
	$(BIN)/python -m benchmarks soak --minutes $(MINUTES) $(ARGS)

install-service: install
	PYTHON=$(PYTHON) scripts/install-service

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis run *.so
	find router registry runtime supervisor -name '*.so' -delete
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
