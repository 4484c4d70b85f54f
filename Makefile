# Two entry points, both working on a fresh machine:
#   make demo   set up, then run the main job
#   make test   set up, then run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cnngraph check specs/*.yaml
	$(BIN)/cnngraph summary specs/resnet18.yaml --depth 2 --batch 32

test: $(STAMP)
	$(BIN)/ruff check cnngraph cli.py tests bench
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
