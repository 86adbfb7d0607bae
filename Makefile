# SCS Router: the two commands are `make run` and `make test`.
.PHONY: run up down status logs test test-unit lint typecheck bench eval lock clean

run:        ## Start everything, replay the sample, print a live summary; Ctrl-C stops all
	@deploy/local/stack.sh run

up:         ## Start Kafka, PostgreSQL and the four services in the background
	@deploy/local/stack.sh up

down:       ## Stop everything `make up` started
	@deploy/local/stack.sh down

status:
	@deploy/local/stack.sh status

logs:
	@deploy/local/stack.sh logs

test:       ## The whole suite: unit + integration on a real Kafka and PostgreSQL
	@deploy/local/stack.sh test

test-unit:  ## Pure-core tests only (no Kafka, no PostgreSQL)
	@deploy/local/stack.sh bootstrap && .venv/bin/python -m pytest tests/unit -q $(PYTEST_ARGS)

lint:       ## ruff, and the import contracts ([tool.importlinter] in pyproject.toml)
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports --no-logo --no-cache

typecheck:
	@.venv/bin/mypy shared services scs_router bench tests

# uv, in a tool venv of its own: it resolves the pins, and is no dependency of the project.
UV := .cache/uv/bin/uv
LOCK := $(UV) pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" -q

lock:       ## Re-pin requirements*.lock (versions and hashes the image installs) from pyproject.toml
	@test -x $(UV) || { python3 -m venv .cache/uv && .cache/uv/bin/pip install -q uv; }
	$(LOCK) -o requirements.lock
	$(LOCK) --extra ml --extra transformer -o requirements-transformer.lock

eval:       ## Train and measure the classifier on ../shared/data (the figures docs/classifier.md records)
	@deploy/local/stack.sh bootstrap && .venv/bin/python bench/eval_classifier.py $(EVAL_ARGS)

bench:      ## classifier, router and webhook throughput (the last two need `make up`; ROUTER_BENCH_ARGS)
	@deploy/local/stack.sh bootstrap && .venv/bin/python bench/classifier_throughput.py
	@.venv/bin/python bench/router_throughput.py $(ROUTER_BENCH_ARGS)
	@.venv/bin/python -m bench.webhook_throughput

clean: down
	rm -rf .state
