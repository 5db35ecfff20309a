# The README's two commands. Both build .venv from nothing with the machine's python3.
# `make run` installs what running needs; `make test` adds the test extras (pytest,
# hypothesis, selenium, kubernetes-validate), which running never imports. `make quick`
# runs only the in-process tests (tests/inprocess: no process started), in well under a minute.
PYTHON ?= python3
VENV := .venv
RUN_STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test quick clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -q -e .
	touch $@

# the test extras come with mroute itself: what `make run` needs is then installed too
$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $(RUN_STAMP) $@

run: $(RUN_STAMP)
	$(VENV)/bin/mroute up --fresh --yes --for 15

test: $(TEST_STAMP)
	$(VENV)/bin/python -m pytest -n auto --timeout 120

quick: $(TEST_STAMP)
	$(VENV)/bin/python -m pytest -m inprocess tests/inprocess -n auto --timeout 60

clean:
	rm -rf $(VENV) .mroute
