# `make demo` and `make test` set up .venv on first use (and again when setup.cfg changes).
# The demo installs only what it runs (the package, its plots and the CUDA backend): the test
# extra's torch, PyTorch's reference for the differential tests, is most of the install's time
# (48 s against 19 s here) and only `make test`, `make bench` and `make graph` install it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test test-gpu bench graph clean

$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,cuda,plots,graphs]'
	touch $(STAMP)

$(DEMO_STAMP): setup.cfg pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[cuda,plots]'
	touch $(DEMO_STAMP)

# Before the first demo: compile the demo's kernels into Numba's cache on both cores
# (tools/warmup.py), so that it starts training at once; it never fails. (make test skips it:
# its two workers compile in parallel anyway.)
WARM := $(VENV)/.warm
$(WARM): $(DEMO_STAMP)
	-$(BIN)/python tools/warmup.py --quiet
	touch $(WARM)

demo: $(WARM)
	$(BIN)/python demos/train_cifar10.py

# The CUDA tests run on Numba's CUDA simulator here (tests/conftest.py turns it on). One worker
# process per core (at most 4): the simulator and Numba's compiler are single-threaded, so two
# workers on 2 cores take a cold run from about 6.7 to 4.7 minutes.
# Then the bad-argument fuzz table once more with NUMBA_BOUNDSCHECK=1, so that a kernel reading
# out of bounds fails loudly instead of returning garbage. Numba's cache key does not record
# bounds checking, so that run compiles into its own cache directory.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --maxprocesses 4
	NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=$(CURDIR)/build/numba-boundscheck \
	    $(BIN)/python -m pytest -p no:xdist -q tests/test_fuzz.py

# On a machine with an NVIDIA GPU: the same CUDA tests on the real device.
test-gpu: $(STAMP)
	TINYGRAD_LITE_REAL_GPU=1 $(BIN)/python -m pytest tests -k cuda

# Training steps against PyTorch (tools/bench.py; ARGS="--quick" for a smoke run). torch is
# the test extra's reference engine, never a dependency of the package.
bench: $(STAMP)
	$(BIN)/python tools/bench.py $(ARGS)

# The computation graph of the demo MLP after one backward: build/mlp_graph.dot (+ .svg/.png)
graph: $(STAMP)
	$(BIN)/python tools/graph.py mlp --out build/mlp_graph

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
