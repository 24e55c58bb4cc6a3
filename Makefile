# The two commands: `make demo` (the whole stack with stand-ins, dashboard URL printed) and `make test`.
# CI (.ci/run) runs `make lint` (ruff and mypy), then `make test`.
.PHONY: demo test stop wipe status setup lint bench

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
