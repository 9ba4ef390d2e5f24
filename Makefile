# `make demo` and `make test` set up .venv on first use (and again when setup.cfg changes).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-gpu bench graph clean

$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,cuda,plots,graphs]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python demos/train_cifar10.py

# The CUDA tests run on Numba's CUDA simulator here (tests/conftest.py turns it on). One worker
# process per core (at most 4): the simulator and Numba's compiler are single-threaded, so two
# workers on 2 cores take a cold run from about 6.7 to 4.7 minutes.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --maxprocesses 4

# On a machine with an NVIDIA GPU: the same CUDA tests on the real device.
test-gpu: $(STAMP)
	TINYGRAD_LITE_REAL_GPU=1 $(BIN)/python -m pytest tests -k cuda

bench: $(STAMP)
	$(BIN)/python tools/bench_ops.py

# The computation graph of the demo MLP after one backward: build/mlp_graph.dot (+ .svg/.png)
graph: $(STAMP)
	$(BIN)/python tools/graph.py mlp --out build/mlp_graph

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
