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
reproduce: setup data $(foreach n,$(NOTEBOOKS),.stamps/$(n).$(BUDGET))
	$(BIN)/python -m src report

.stamps/task1.$(BUDGET): task1.ipynb $(SOURCES)
.stamps/task2.$(BUDGET): task2.ipynb $(SOURCES) .stamps/task1.$(BUDGET)
.stamps/task3.$(BUDGET): task3.ipynb $(SOURCES) .stamps/task1.$(BUDGET)
.stamps/%.$(BUDGET):
	PLAYMNIST_BUDGET=$(BUDGET) $(BIN)/python -m src.notebooks $*.ipynb
	mkdir -p .stamps && touch $@

bench: setup data
	$(BIN)/python -m bench
	$(BIN)/python -m src report

report: setup
	$(BIN)/python -m src report
