# Two commands do all set-up: `make run` serves the product, `make test`
# passes the tests. Both create the virtual environment when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format demo worker clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "LeadCRM needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(STAMP)
	$(BIN)/python scripts/run_tests.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# A real worker needs a broker: CELERY_BROKER_URL=redis://127.0.0.1:6379/0
worker: $(STAMP)
	@test -n "$$CELERY_BROKER_URL" || { echo "Set CELERY_BROKER_URL first."; exit 2; }
	$(BIN)/celery -A leadcrm worker -B -l info --concurrency=3

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
