# Two commands do everything on a fresh clone (see README):
#   make reproduce   every notebook executed top to bottom (BUDGET=full by default, in place; BUDGET=quick writes
#                    smoke-run copies under results/quick/), then README's tables regenerated
#   make test        the test suite, including a quick-budget run of every notebook (its data in a temporary folder)
# Each target creates what it needs; running one twice does no repeated work.
PYTHON ?= python3
BUDGET ?= full
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
NOTEBOOKS := task1 task2 task3
SOURCES := $(shell find src -name '*.py')
# Notebooks rerun when the data they are pointed at changes, not only when code changes.
DATA_KEY := $(shell echo "$$PLAYMNIST_TRAINPART1 $$PLAYMNIST_TESTPART1 $$PLAYMNIST_MNISTTASK3" | cksum | cut -d' ' -f1)
RUN := $(BUDGET).$(DATA_KEY)

.PHONY: setup data test reproduce bench report

setup: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt
	@echo "setting up $(VENV): torch and the other requirements (a few minutes the first time) ..."
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*; touch $@

data: setup
	$(BIN)/python -m src data

test: setup
	$(BIN)/python -m pytest tests

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
