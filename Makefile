# The two commands: `make run` and `make test`. Both set up what they need first and reuse it
# on the next call (the stamp files below change only when pyproject.toml does).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: run test soak fuzz worker migrate clean fakeshop

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps-run: pyproject.toml | $(PY)
	$(PY) -m pip install $(PIP_QUIET) -e '.[ml]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c "import django, celery, torch, diffusers"
	touch $@

$(VENV)/.deps-test: pyproject.toml | $(PY)
	$(PY) -m pip install $(PIP_QUIET) -e '.[ml,dev]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c "import django, celery, torch, diffusers, pytest, playwright, importlinter"
	touch $@

migrate: $(VENV)/.deps-run
	@$(PY) manage.py schema_check
	$(PY) manage.py migrate --noinput
	@$(PY) manage.py c2pa_dev_cert  # Content Credentials: a development signing chain unless one exists

# `make run` starts the fake storefront (fakeshop/, loopback) next to the web server and the
# worker, with five demo products and their photos, and connects the demo workspace to it, so
# a newcomer can import, approve, publish and see the image arrive on the fake shop's page.
# FAKESHOP=0 leaves it out; so does a real OAuth app (VITRINE_STOREFRONT_CLIENT_ID set).
FAKESHOP ?= 1

run: migrate
	@$(PY) manage.py seed_demo
	@# Stop all three on Ctrl-C within seconds. The trap clears itself first: `kill 0` used to
	@# signal this shell too and re-enter the trap, flooding the worker with SIGTERMs. A job
	@# the worker is cut off from after 10 s is taken over on the next start (its lease lapses).
	@trap 'trap - INT TERM EXIT; kill -TERM $$worker $$web $$shop 2>/dev/null; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 $$worker 2>/dev/null || break; sleep 1; done; \
	  kill -KILL $$worker 2>/dev/null; wait 2>/dev/null; true' INT TERM EXIT; \
	shop=""; fake_env=""; var="$${VITRINE_VAR_DIR:-var}"; \
	if [ "$(FAKESHOP)" = "1" ] && [ -z "$$VITRINE_STOREFRONT_CLIENT_ID" ]; then \
	  $(PY) -m fakeshop.probe $(FAKESHOP_PORT); probe=$$?; \
	  if [ $$probe = 1 ]; then mkdir -p "$$var"; \
	    $(PY) -m fakeshop --port $(FAKESHOP_PORT) --shop demo-shop.myshopify.com --demo-products 5 --demo-photos \
	      --state "$$var/fakeshop.json" --webhook-url http://127.0.0.1:$(PORT)/webhooks/storefront/ >"$$var/fakeshop.log" 2>&1 & shop=$$!; \
	    for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do $(PY) -m fakeshop.probe $(FAKESHOP_PORT) && break; sleep 0.5; done; \
	  elif [ $$probe = 2 ]; then \
	    echo "Port $(FAKESHOP_PORT) is taken by another program, so the demo storefront is not started."; \
	    echo "  FAKESHOP_PORT=8766 make run picks another port; FAKESHOP=0 make run leaves the fake out."; \
	  fi; \
	  fake_env=$$($(PY) -m fakeshop.probe $(FAKESHOP_PORT) --env 2>/dev/null) || fake_env=""; \
	fi; \
	eval "$$fake_env"; \
	if [ -n "$$fake_env" ]; then \
	  $(PY) manage.py storefront_demo --fakeshop "$$FAKESHOP_URL" || true; \
	fi; \
	echo ""; \
	echo "Vitrine is starting on http://127.0.0.1:$(PORT)/  (Ctrl-C stops the web server, the worker and the demo storefront)"; \
	if [ -n "$$fake_env" ]; then echo "The demo storefront (fake shop) is at $$FAKESHOP_URL/ : publish from Vitrine's Storefronts page and see the image arrive there."; fi; \
	echo ""; \
	$(PY) -m celery -A config worker -Q cpu,gpu,io --concurrency 2 --loglevel INFO & worker=$$!; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload & web=$$!; \
	wait $$web

worker: $(VENV)/.deps-run
	$(PY) -m celery -A config worker -Q cpu,gpu,io --loglevel INFO

# The layers of the house first (import-linter contracts in pyproject.toml), then the suite.
test: $(VENV)/.deps-test
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest $(PYTEST_ARGS)

# Many scene jobs through real workers killed over and over (PostgreSQL + Redis); prints the
# figures docs/benchmarks.md quotes. SOAK_ARGS="--jobs 200" make soak
soak: $(VENV)/.deps-test
	$(PY) bench/soak.py $(SOAK_ARGS)

# The upload path fuzzed long: 10,000 new random files through the upload service (make test
# runs the same target with 300 fixed ones). FUZZ_EXAMPLES=50000 make fuzz
FUZZ_EXAMPLES ?= 10000
fuzz: $(VENV)/.deps-test
	VITRINE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/catalog/test_upload_fuzz.py -q -p no:warnings --hypothesis-show-statistics

# The fake storefront (test and demo equipment, see fakeshop/README.md); state survives restarts.
FAKESHOP_PORT ?= 8765
fakeshop: $(VENV)/.deps-run
	$(VENV)/bin/python -m fakeshop --port $(FAKESHOP_PORT) --shop demo-shop.myshopify.com --demo-products 5 --state var/fakeshop.json

clean:
	rm -rf var staticfiles .pytest_cache
