# `make run` serves the registry on the embedded defaults with demo data; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run worker test test-browser lint migrate seed load bench bench-webhooks bench-import bench-live clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.runtime-installed
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo ""
	@echo "  Model Registry: http://$(HOST):$(PORT)/   (admin: http://$(HOST):$(PORT)/admin/)"
	@echo ""
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# A task-queue worker (registry/celery.py): needs REDIS_URL (or TASK_BROKER_URL); without one, `make run`
# runs the tasks in-process and no worker is needed. Run several to scale out.
worker: $(VENV)/.runtime-installed
	$(BIN)/celery -A registry worker --loglevel INFO

# The import contracts first (pyproject.toml: the shared layer imports no app, apps import only the
# apps they build on), then the suite.
test: $(VENV)/.dev-installed
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Only the browser tests, failing (not skipping) without Chromium: `apt-get install -y chromium`.
test-browser: $(VENV)/.dev-installed
	REQUIRE_BROWSER=1 $(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

# A bounded mixed load (32 clients, 60 s) on gunicorn with PostgreSQL, Redis and S3 started for it,
# then a consistency check of everything it wrote: bench/load.py. LOAD_ARGS="--duration 10" to shorten.
load: $(VENV)/.dev-installed
	bench/with-services $(BIN)/python -m bench.load $(LOAD_ARGS)

# The benchmarks of BENCHMARKS.md against MLflow's registry (installed into its own venv), on
# PostgreSQL, Redis and S3 started for them: bench/__main__.py, bench/run.py. BENCH_ARGS passes options,
# e.g. BENCH_ARGS="--scales 10000,100000,1000000 --workers 2 --seconds 20".
bench: $(VENV)/.dev-installed
	bench/with-services $(BIN)/python -m bench $(BENCH_ARGS)

# Webhook deliveries under 50 lifecycle moves a second for 30 s with 5 webhooks (bench/webhooks.py):
# latency after commit and none lost. WEBHOOKS_ARGS="--rate 20 --duration 10" to change it.
bench-webhooks: $(VENV)/.dev-installed
	bench/with-services $(BIN)/python -m bench.webhooks $(WEBHOOKS_ARGS)

# manage.py import_mlflow against a real MLflow server (bench/import_mlflow.py): 100 registered models x 3
# versions with artifacts, imported into a fresh SQLite registry twice; the second run must copy nothing.
# IMPORT_ARGS="--models 10 --with-runs" to change it.
bench-import: $(VENV)/.dev-installed
	$(BIN)/python -m bench.import_mlflow $(IMPORT_ARGS)

# The live updates under load (bench/live.py): 200 signed-in WebSockets on daphne, changes through the
# API on gunicorn, PostgreSQL and Redis started for it; event -> every socket latency, none lost.
# LIVE_ARGS="--events 30 --http-seconds 5" to shorten it or to compare the HTTP API on both servers.
bench-live: $(VENV)/.dev-installed
	bench/with-services $(BIN)/python -m bench.live $(LIVE_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* .test-db.sqlite3* media staticfiles
