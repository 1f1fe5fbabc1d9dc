# Two commands do everything on a fresh machine:
#   make demo   boots the embedded defaults, runs the demo cases, exits 0
#   make test   runs the whole test suite
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test worker clean-data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) demo.py

test: $(STAMP)
	$(PY) -m pytest

worker: $(STAMP)
	$(PY) worker.py

clean-data:
	rm -rf data

# Escalation lateness of the engine against bare Temporal (README, "Escalation benchmark"); CASES=20 for a quick run.
.PHONY: bench-escalations
bench-escalations: $(STAMP)
	$(PY) -m bench.escalations $(if $(CASES),--cases $(CASES))

# The engine against bare Temporal, every section (README, "Performance"); CASES=2000 for the documented N,
# ARGS='--only lifecycle,latency' for some sections. Prints a table, writes bench/results.json.
.PHONY: bench
bench: $(STAMP)
	$(PY) -m bench $(if $(CASES),--cases $(CASES)) $(ARGS)
