# Bearing RUL workbench. `make app` starts the app; `make test` runs every test.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: app test lint demo-assets bench chromium clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Debian chromium: headless browser for the end-to-end test and for Kaleido's static export.
chromium:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

app: $(STAMP)
	@test -f assets/demo/MANIFEST.json || $(MAKE) demo-assets
	$(VENV)/bin/streamlit run app.py

# Two pytest-xdist workers (one per CI core), one test file per worker so a module's trained
# fixtures are built once. TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2

test: $(STAMP) chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check .

demo-assets: $(STAMP)
	$(PY) -m rul_core demo-assets --out assets/demo

bench: $(STAMP)
	$(PY) bench/features.py
	$(PY) bench/load_femto.py
	$(PY) bench/spectrum.py
	$(PY) bench/kurtogram.py
	$(PY) bench/phm2012_baselines.py
	$(PY) bench/train_memory.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
