# The two commands: `make run` and `make test`. Both set everything up on a
# fresh clone (a virtualenv in .venv with the pinned requirements).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
EMULATOR_PORT ?= 8001
EMULATOR := http://127.0.0.1:$(EMULATOR_PORT)
DATA_DIR ?= $(CURDIR)/var
export DATA_DIR

.PHONY: run serve test bench lint format install clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	rm -rf $(DATA_DIR)/prometheus
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin
	@export PATH="$(CURDIR)/$(BIN):$$PATH"; \
	if [ "$$(python manage.py aws_mode)" = aws ]; then \
	  echo "The portal: http://127.0.0.1:$(PORT)/ (real AWS)"; \
	  exec python -m config.procfile start --procfile Procfile --port $(PORT) web worker beat; \
	else \
	  echo "No AWS credentials or region configured: starting the local AWS emulator on $(EMULATOR)."; \
	  echo "Nothing is sent to AWS. The portal: http://127.0.0.1:$(PORT)/"; \
	  export EMULATOR_PORT=$(EMULATOR_PORT) AWS_REGION=us-east-1 \
	    AWS_ACCESS_KEY_ID=emulator AWS_SECRET_ACCESS_KEY=emulator \
	    AWS_ENDPOINT_URL_IMAGEBUILDER=$(EMULATOR) AWS_ENDPOINT_URL_EC2=$(EMULATOR) \
	    AWS_ENDPOINT_URL_STS=$(EMULATOR); \
	  exec python -m config.procfile start --procfile Procfile --port $(PORT) web worker beat emulator; \
	fi

# Production on one machine, in the foreground: gunicorn, a Celery worker and
# one beat under supervisord. Refuses to start without a real configuration
# (README, "Production").
serve: install
	@exec $(BIN)/python -m config.serve

test: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

bench: install
	$(BIN)/python bench/refresh_imports.py
	$(BIN)/python bench/audit_export.py

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
