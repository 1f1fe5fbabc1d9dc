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

# Two test processes (pytest-xdist; docs/decisions/0010-two-test-processes.md); TEST_PROCESSES=0 runs in one.
TEST_PROCESSES ?= 2
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_PROCESSES)

worker: $(STAMP)
	$(PY) worker.py

# The API fuzzed from its OpenAPI document with a fresh seed and more examples (the suite uses a fixed one).
.PHONY: fuzz-api
fuzz-api: $(STAMP)
	API_FUZZ_SEED=$$(od -An -N3 -tu4 /dev/urandom | tr -d ' ') API_FUZZ_EXAMPLES=$(or $(EXAMPLES),200) $(PY) -m pytest -q tests/api/test_api_fuzz.py

# The HTTP API against ComplaintClient, one action through each (docs/performance.md).
.PHONY: bench-api
bench-api: $(STAMP)
	$(PY) -m bench.api

# The HTTP API on 127.0.0.1:8000 with the worker and the embedded stack, until Ctrl-C (docs/api.md).
.PHONY: api
api: $(STAMP)
	$(PY) -m api

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

# The delivery section alone (docs/performance.md, "Delivery"): escalations due at once, timed to their
# arrival at an SMTP sink and a webhook receiver; SIZES=100 for one N. Writes bench/results-delivery.json.
.PHONY: bench-delivery
bench-delivery: $(STAMP)
	$(PY) -m bench --only delivery $(if $(SIZES),--delivery-sizes $(SIZES)) --output bench/results-delivery.json $(ARGS)

# test_signed_actors.py RUNS times (default 10) in two processes while two more keep both cores busy: the load that
# found decision 0012's replay fault. Random exploration: never part of `make test`.
.PHONY: stress-signed
stress-signed: $(STAMP)
	$(PY) -m tools.under_load --runs $(or $(RUNS),10) tests/security/test_signed_actors.py

# The crash drill for SEEDS seeds in a row (default 20: the seeds that once failed, then random ones),
# one line per seed (docs/crash-drills.md). Random exploration lives here, never in `make test`.
.PHONY: drill
drill: $(STAMP)
	$(PY) -m drills.seeds --seeds $(or $(SEEDS),20) $(ARGS)

# Each message's JSON Schema into docs/schemas/ (docs/contract.md); CHECK=1 only checks that they are current.
.PHONY: schemas
schemas: $(STAMP)
	$(PY) -m tools.json_schemas $(if $(CHECK),--check)

# Re-record the replay fixtures from the current code (tests/fixtures/histories; docs/versioning.md).
.PHONY: fixtures
fixtures: $(STAMP)
	$(PY) -m tests.fixtures.histories.record --fresh
