# Two commands do everything on a fresh clone (see README):
#   make reproduce   every notebook executed top to bottom (BUDGET=full by default), outputs in place
#   make test        the test suite, including a quick-budget run of every notebook
# Each target creates what it needs; running one twice does no repeated work.
PYTHON ?= python3
BUDGET ?= full
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
NOTEBOOKS := task1 task2 task3
SOURCES := $(wildcard src/*.py)
# Notebooks rerun when the data they are pointed at changes, not only when code changes.
DATA_KEY := $(shell echo "$$PLAYMNIST_TRAINPART1 $$PLAYMNIST_TESTPART1 $$PLAYMNIST_MNISTTASK3" | cksum | cut -d' ' -f1)
RUN := $(BUDGET).$(DATA_KEY)

.PHONY: setup data test reproduce bench report clean-quick

setup: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*; touch $@

data: setup
	$(BIN)/python -m src data

test: setup
	$(BIN)/python -m pytest -q tests

# Task 2 and 3 start from Task 1's network, so the notebooks run in order.
reproduce: setup data $(foreach n,$(NOTEBOOKS),.stamps/$(n).$(RUN))
	$(BIN)/python -m tools.readme_tables

.stamps/task1.$(RUN): task1.ipynb $(SOURCES)
.stamps/task2.$(RUN): task2.ipynb $(SOURCES) .stamps/task1.$(RUN)
.stamps/task3.$(RUN): task3.ipynb $(SOURCES) .stamps/task1.$(RUN)
.stamps/%.$(RUN):
	PLAYMNIST_BUDGET=$(BUDGET) $(BIN)/python -m tools.run_notebook $*.ipynb
	mkdir -p .stamps && touch $@

bench: setup data
	$(BIN)/python -m bench
	$(BIN)/python -m tools.readme_tables

report: setup
	$(BIN)/python -m tools.readme_tables
