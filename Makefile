# The commands the README gives. Each sets up what it needs first.
.PHONY: setup demo test screenshots lint format services run worker beat simulator

PY := .venv/bin/python
# Throwaway production values: `check --deploy` judges the settings DEBUG=0 gives.
DEPLOY_CHECK_ENV := DEBUG=0 ALLOWED_HOSTS=wa.example.com \
	SECRET_KEY=deploy-check-only-0123456789-abcdefghijklmnopqrstuvwxyz \
	FIELD_ENCRYPTION_KEY=Y2hlY2stZGVwbG95LW9ubHktbm90LWEtcmVhbC1rZXk=

setup:
	bash scripts/bootstrap.sh

demo: setup
	$(PY) manage.py demo

# The static checks, then the whole suite against the real PostgreSQL and Redis.
# lint-imports needs the checkout first on the path: our `numbers` app, not the stdlib module.
test: setup
	$(PY) manage.py makemigrations --check --dry-run
	$(DEPLOY_CHECK_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	PYTHONPATH=. .venv/bin/lint-imports --no-cache
	.venv/bin/pytest --ignore=tests/browser
	DJANGO_ALLOW_ASYNC_UNSAFE=1 .venv/bin/pytest tests/browser

# The browser suite (tests/browser) with screenshots of the main screens into docs/screenshots/.
screenshots: setup
	WAC_SCREENSHOTS=1 DJANGO_ALLOW_ASYNC_UNSAFE=1 .venv/bin/pytest tests/browser

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	PYTHONPATH=. .venv/bin/lint-imports --no-cache

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

services:
	bash scripts/services.sh

run: setup
	.venv/bin/gunicorn config.wsgi --bind 127.0.0.1:8000 --workers 2 --threads 4

worker: setup
	.venv/bin/celery -A config worker -Q sending,replies,webhooks,periodic,default --loglevel INFO

beat: setup
	.venv/bin/celery -A config beat --loglevel INFO

simulator: setup
	$(PY) manage.py graph_simulator
