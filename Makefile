# The two commands: `make run` and `make test`. Both set everything up on a
# fresh clone (a virtualenv in .venv with the pinned requirements).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
EMULATOR_PORT ?= 8001
EMULATOR := http://127.0.0.1:$(EMULATOR_PORT)
# moto's server: S3 and IAM for the emulator (Procfile `s3`).
MOTO_PORT ?= 8002
MOTO := http://127.0.0.1:$(MOTO_PORT)
EMULATOR_IMPORT_BUCKET := vm-import-portal-uploads
DATA_DIR ?= $(CURDIR)/var
export DATA_DIR

.PHONY: run serve test emulator screenshots bench lint format install install-production clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# A production machine's: the portal's own requirements, none of the tests'
# (moto, Playwright, pytest: some 800 MB more).
$(VENV)/.installed-production: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install-production: $(VENV)/.installed-production

run: install
	rm -rf $(DATA_DIR)/prometheus
	$(BIN)/python manage.py migrate --noinput
	@if [ -z "$$EMAIL_URL$$EMAIL_HOST" ]; then \
	  echo "E-mails are written as files under $(DATA_DIR)/mail (set EMAIL_URL to send them)."; \
	fi
	@echo "WEBHOOK_ALLOW_PRIVATE=true: webhooks may call http:// and local addresses (never in production)."
	@export PATH="$(CURDIR)/$(BIN):$$PATH" WEBHOOK_ALLOW_PRIVATE=true \
	  PORTAL_URL="$${PORTAL_URL:-http://127.0.0.1:$(PORT)}"; \
	if [ "$$(python manage.py aws_mode)" = aws ]; then \
	  python manage.py ensure_admin || exit 1; \
	  echo "The portal: http://127.0.0.1:$(PORT)/ (real AWS)"; \
	  exec python -m config.procfile start --procfile Procfile --port $(PORT) web worker beat; \
	else \
	  echo "No AWS credentials or region configured: starting the local AWS emulator on $(EMULATOR)"; \
	  echo "and moto's S3 and IAM on $(MOTO) (bucket $(EMULATOR_IMPORT_BUCKET), role vmimport)."; \
	  echo "Nothing is sent to AWS. The portal: http://127.0.0.1:$(PORT)/"; \
	  python manage.py ensure_admin --import-bucket $(EMULATOR_IMPORT_BUCKET) || exit 1; \
	  export EMULATOR_PORT=$(EMULATOR_PORT) AWS_REGION=us-east-1 \
	    AWS_ACCESS_KEY_ID=emulator AWS_SECRET_ACCESS_KEY=emulator \
	    AWS_ENDPOINT_URL_IMAGEBUILDER=$(EMULATOR) AWS_ENDPOINT_URL_EC2=$(EMULATOR) \
	    AWS_ENDPOINT_URL_STS=$(EMULATOR) \
	    MOTO_PORT=$(MOTO_PORT) AWS_ENDPOINT_URL_S3=$(MOTO) AWS_ENDPOINT_URL_IAM=$(MOTO) \
	    EMULATOR_IMPORT_BUCKET=$(EMULATOR_IMPORT_BUCKET) PORTAL_PORT=$(PORT); \
	  exec python -m config.procfile start --procfile Procfile --port $(PORT) web worker beat emulator s3; \
	fi

# Production on one machine, in the foreground: gunicorn, a Celery worker and
# one beat under supervisord. Refuses to start without a real configuration
# (README, "Production").
serve: install-production
	@exec $(BIN)/python -m config.serve

test: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

# The local AWS emulator alone, as `make run` starts it (python -m fakeaws --help);
# with S3, start moto too: $(BIN)/moto_server -H 127.0.0.1 -p $(MOTO_PORT)
emulator: install
	$(BIN)/python -m fakeaws --port $(EMULATOR_PORT) --s3-endpoint $(MOTO)

# The README's pictures, made by the browser tests into docs/screenshots/.
screenshots: install
	$(BIN)/pytest -m screenshots tests/test_screenshots.py tests/test_browser_upload.py

bench: install
	$(BIN)/python bench/refresh_imports.py
	$(BIN)/python bench/submit_overhead.py
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/audit_export.py
	$(BIN)/python bench/fuzz_api.py
	$(BIN)/python bench/outages.py
	$(BIN)/python bench/worker_kills.py
	$(BIN)/python bench/history.py
	$(BIN)/python bench/status_poll.py
	$(BIN)/python bench/click_to_arn.py
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/dev_server.py
	$(BIN)/python bench/first_request.py

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
