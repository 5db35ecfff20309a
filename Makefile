# The README's two commands. Both build .venv from nothing with the machine's python3.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mroute up --fresh --yes --for 15

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n auto --timeout 120

clean:
	rm -rf $(VENV) .mroute
