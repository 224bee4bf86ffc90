# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo demo-deps test screenshots lint system-deps media-deps install install-test clean

$(PY):
	$(PYTHON) -c 'import sys; sys.exit("Moot needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# constraints.txt pins every package to the versions the suite last passed with, so a new
# release upstream (a deprecation turned error, say) cannot break a fresh install.
$(VENV)/.installed: pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Start an EMS and two room servers on SQLite; Ctrl-C stops everything. Each room server
## starts its own Janus for audio and video (installed here if missing; without it the demo
## runs all the same and the meeting page says audio/video is unavailable).
demo: media-deps demo-deps install
	$(VENV)/bin/moot demo

## Debian's janus, the media server (SFU) each room server drives. Its package may enable a
## systemd unit: Moot never uses it (each room server starts Janus with its own folder).
## janus-tools: janus-pp-rec, which turns a recorded meeting's Janus recordings into
## Opus/WebM files.
media-deps:
	@{ command -v janus >/dev/null 2>&1 && command -v janus-pp-rec >/dev/null 2>&1; } || { \
		echo "installing Debian's janus and janus-tools (audio and video)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq janus janus-tools || \
		echo "could not install janus: the demo runs without audio and video"; }

## The demo's message bus for community services: Debian's nats-server (JetStream).
demo-deps:
	@[ -x /usr/sbin/nats-server ] || { echo "installing Debian package: nats-server"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nats-server; }

## Debian packages the tests drive: Chromium (browser tests, with an emoji font for the
## meeting page's reactions), slapd (LDAP tests), janus (audio/video tests, which also need
## `ip` from iproute2 for their network namespace, and janus-tools for the recording of
## media), nats-server (community services).
system-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing="$$missing fonts-noto-color-emoji"; \
	[ -x /usr/sbin/slapd ] || missing="$$missing slapd ldap-utils"; \
	command -v janus >/dev/null 2>&1 || missing="$$missing janus"; \
	command -v janus-pp-rec >/dev/null 2>&1 || missing="$$missing janus-tools"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	[ -x /usr/sbin/nats-server ] || missing="$$missing nats-server"; \
	[ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

lint: install-test
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src
	$(VENV)/bin/pytest -q -p no:cacheprovider -n 0 tests/unit/test_layers.py

## Everything CI runs: lint first, then the whole suite on pytest-xdist, an idle worker
## taking tests from a busy one. Three workers for two cores (half as many again as the
## machine has): a test spends much of its time waiting (processes starting and stopping,
## a failure detector's heartbeats, a meeting's clock), and with a worker per core the
## cores were busy only about half the time. Python may cache compiled modules for the
## run whatever the environment says: every EMS and room server a test starts would
## otherwise compile Moot's sources again (a tenth of a second each, hundreds of times).
## The 30 slowest tests are listed at the end: where the suite's time goes.
CORES := $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)')
PYTEST_WORKERS ?= $(shell echo $$(( $(CORES) + $(CORES) / 2 > 2 ? $(CORES) + $(CORES) / 2 : 2 )))
test: system-deps install-test lint
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/pytest -q -p no:cacheprovider \
		-n $(PYTEST_WORKERS) --dist worksteal --durations=30

## The pictures in docs/screenshots, taken again from the pages as they are now. The suite
## itself writes them to a temporary folder and never changes a tracked file.
screenshots: system-deps install-test
	MOOT_SCREENSHOTS=docs/screenshots $(VENV)/bin/pytest -q -p no:cacheprovider -m screenshots

clean:
	rm -rf $(VENV) moot-data .mypy_cache .ruff_cache .pytest_cache
