# Two entry points, both working on a fresh machine:
#   make demo   set up, then train LeNet-5 with batch norm on Fashion-MNIST (the main job)
#   make test   set up, then lint (ruff, mypy) and run the test suite
# (make bench: the CPU speed and memory targets against PyTorch and onnxruntime)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: demo test lint bench data graphviz browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian's dataset-fashion-mnist package ships the real IDX files.
data:
	@test -f $(FASHION_MNIST)/train-images-idx3-ubyte.gz || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		dataset-fashion-mnist; }

# Graphviz's `dot`, which lays out the SVG and PNG diagrams of `cnngraph draw` (Debian's graphviz).
graphviz:
	@command -v dot > /dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz; }

# Debian's chromium, which opens report.html headless in the tests (nothing is fetched).
browser:
	@command -v chromium > /dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

demo: $(STAMP) data
	$(BIN)/cnngraph summary specs/lenet-bn.yaml
	$(BIN)/cnngraph train specs/lenet-bn.yaml --out runs/lenet-bn --overwrite
	$(BIN)/cnngraph eval specs/lenet-bn.yaml --weights runs/lenet-bn/best.npz

lint: $(STAMP)
	$(BIN)/ruff check cnngraph cli.py tests bench examples
	$(BIN)/mypy

# The suite in TEST_WORKERS processes (pytest-xdist), each test module's tests in one of them
# (so a module's shared fixtures, compiled once, stay shared), the slowest modules first
# (tests/conftest.py). Most of its time is Numba compiling, on one core per process, but with
# one process per core the cores still idled while tests waited on the processes they start
# (163% of two cores over a CI run).
TEST_WORKERS ?= 3

test: lint graphviz browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

# Every CPU performance target against PyTorch and onnxruntime, one run, each part's table written
# into README.md (a benchmark: use a quiet machine).
# cnngraph is byte-compiled first, as an installed package is: where PYTHONDONTWRITEBYTECODE is
# set, Python compiles an editable install's modules from source in every process.
bench: $(STAMP)
	$(BIN)/python -m compileall -q cnngraph
	$(BIN)/python bench/targets.py --readme

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
