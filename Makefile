# Kalasag — the two quick-start commands: `make demo` and `make test`.
# A fresh machine needs only Python 3.11, pip and gcc (and Java 17 for the Spark engine).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kalasag-installed
OUT    ?= demo-out

.PHONY: demo test install bench clean lock

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	# media: pdqhash ships no Linux wheels and declares no numpy dependency; build it with gcc
	# against the locked numpy (Cython needed at build time), before the rest of the lock
	$(BIN)/python -m pip install --quiet -c requirements.lock numpy Cython setuptools wheel
	$(BIN)/python -m pip install --quiet --no-build-isolation -c requirements.lock pdqhash
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kalasag demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/scan_throughput.py --sizes 1000000

# Re-pin the dependencies after changing pyproject.toml (run on a machine with the registry).
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^kalasag' > requirements.lock

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
