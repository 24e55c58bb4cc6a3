# The two commands: `make demo` (the whole stack with stand-ins, dashboard URL printed) and `make test`.
# CI (.ci/run) runs `make lint` (ruff and mypy), then `make test`.
.PHONY: demo test stop wipe status setup lint bench lock

PY := .venv/bin/python

setup:
	@bash deploy/local/bootstrap.sh

demo: setup
	@$(PY) -m deploy.stack demo

test: setup
	@$(PY) -m deploy.stack test -q $(PYTEST_ARGS)

stop:
	@$(PY) -m deploy.stack down

wipe:
	@$(PY) -m deploy.stack down --wipe

status:
	@$(PY) -m deploy.stack status

bench: setup
	@$(PY) -m bench.run

lint: setup
	@.venv/bin/ruff check .
	@.venv/bin/mypy

# Re-resolves requirements.lock from pyproject.toml (runtime + dev) with pip-tools, in its own venv so the
# tool is not part of the product; pins already in the lock are kept unless a change needs another version.
# `make lock LOCK_ARGS=--upgrade` moves every pin to the newest release.
LOCK_TOOL := var/lock-tool
lock:
	@[ -x $(LOCK_TOOL)/bin/pip-compile ] || (python3.11 -m venv $(LOCK_TOOL) && \
		$(LOCK_TOOL)/bin/pip install -q --upgrade pip && $(LOCK_TOOL)/bin/pip install -q pip-tools==7.6.2)
	@CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOL)/bin/pip-compile -q --extra dev --strip-extras --no-emit-find-links $(LOCK_ARGS) \
		--output-file requirements.lock pyproject.toml
