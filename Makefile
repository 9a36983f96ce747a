# Mamba from scratch — the two commands:
#   make lab    set up (first time only), build your workspace, open JupyterLab
#   make test   install what the tests need, then lint and run every test (what CI runs)

PYTHON    ?= python3
VENV      ?= .venv
PY        := $(VENV)/bin/python
WORKSPACE ?= workspace
HOST      ?= 127.0.0.1
PORT      ?= 8888
TOKEN     ?=
NB_OUT    ?= build/notebooks
BOOK_OUT  ?= build/book
# Each lesson that passes under nbval is saved here with its outputs; `make book` reuses it.
EXECUTED  ?= build/executed
# Per-cell and whole-run limits (seconds) for executing the lessons.
CELL_TIMEOUT  ?= 300
NBVAL_TIMEOUT ?= 1800
# The browser tests drive Debian's Chromium (never a browser downloaded by `playwright install`).
CHROMIUM  ?= /usr/bin/chromium

ROOT_FLAG  := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TOKEN_FLAG := $(if $(TOKEN),--IdentityProvider.token=$(TOKEN),)

.PHONY: lab install install-test install-browser install-book workspace notebooks book lint test test-unit test-lessons test-book gpu-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamps make a second `make lab` quick: pip runs again only when pyproject.toml changes
# (a stamp is renamed when what it installs changes, so an existing .venv catches up).
$(VENV)/.installed-core: pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -e .
	@touch $@

# The tests need the parity extra (Triton, run under its interpreter on a CPU), the e2e extra
# (Playwright, driving Debian's Chromium) and the instructor extra (nbgrader: the grading
# workflow is tested too).
$(VENV)/.installed-test: pyproject.toml Makefile $(VENV)/.installed-core
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test,parity,e2e,instructor,book]'
	@# nbgrader is used from the command line only: keep its Jupyter extensions out of `make lab`.
	for e in formgrader validate_assignment assignment_list course_list; do \
		$(VENV)/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$e \
			> /dev/null || exit 1; done
	$(VENV)/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader > /dev/null
	@touch $@

# Chromium for the browser tests (tests/test_e2e_browser.py installs it too when it is missing).
$(CHROMIUM):
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium

# The parity suite: the official mamba_ssm without its CUDA build (a source build with nvcc
# skipped), after the pinned triton/einops/transformers it imports.
MAMBA_SSM ?= mamba-ssm==2.3.2.post1
$(VENV)/.installed-parity: pyproject.toml $(VENV)/.installed-test
	MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE $(PY) -m pip install \
		--disable-pip-version-check -q --no-build-isolation --no-deps $(MAMBA_SSM)
	@touch $@

$(VENV)/.installed-book: pyproject.toml $(VENV)/.installed-core
	$(PY) -m pip install --disable-pip-version-check -q -e '.[book]'
	@touch $@

install: $(VENV)/.installed-core
install-book: $(VENV)/.installed-book
install-test: $(VENV)/.installed-test $(VENV)/.installed-parity
install-browser: $(CHROMIUM)

workspace: install
	$(VENV)/bin/mamba-edu workspace $(WORKSPACE)

lab: workspace
	@echo "Starting JupyterLab on http://$(HOST):$(PORT)/lab (the URL with its token follows; Ctrl-C stops it)"
	$(VENV)/bin/jupyter lab --no-browser --ip=$(HOST) --port=$(PORT) --ServerApp.port_retries=0 \
		--ServerApp.root_dir=$(WORKSPACE) $(TOKEN_FLAG) $(ROOT_FLAG)

notebooks: install
	$(VENV)/bin/mamba-edu build --out $(NB_OUT)

# The course as a static website in $(BOOK_OUT) (not part of `make lab`): lessons with an
# up-to-date saved run (from `make test-lessons`) are not executed again.
book: install-book notebooks
	$(VENV)/bin/mamba-edu book --out $(BOOK_OUT) --executed $(EXECUTED)

lint: install-test
	$(VENV)/bin/ruff check mamba_edu kernels tests notebooks conftest.py
	$(VENV)/bin/ruff format --check mamba_edu kernels tests notebooks conftest.py

# Includes the browser tests (marker e2e): JupyterLab in Chromium, artifacts/e2e/ screenshots.
# Every pytest exit status but 0 fails the target, 5 ("no tests collected") included: a selection
# or a build that finds nothing to test is an error, never a pass. A run stopped by `timeout` or
# SIGTERM tears its servers, kernels and Chromium down first (conftest.py) and exits 2.
test-unit: install-test install-browser
	MAMBA_EDU_REQUIRE_PARITY=1 $(PY) -m pytest tests -q -m "not book" --durations=25

# Every lesson, each in a fresh kernel, end to end, as a learner runs it.
test-lessons: install-test notebooks
	MAMBA_EDU_EXECUTED=$(EXECUTED) timeout $(NBVAL_TIMEOUT) $(PY) -m pytest -q -p no:cacheprovider --nbval-lax \
		--nbval-cell-timeout=$(CELL_TIMEOUT) --durations=5 $(NB_OUT)

# The website built from the lessons' saved runs and opened page by page in Chromium, offline.
test-book: install-test install-browser
	$(PY) -m pytest tests/test_book.py -q -m book

test: lint test-unit test-lessons test-book

# On a CUDA machine: parity on the real GPU, then a benchmark table against mamba_ssm's CUDA
# kernel (a few minutes). Installs the pins (plus numba-cuda) into the same venv; Python 3.12 is
# accepted there. mamba_ssm's own CUDA extension is not built (that takes nvcc and half an hour):
# without it the table says so.
$(VENV)/.installed-gpu: pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q --ignore-requires-python -e '.[test,parity,gpu]'
	MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE $(PY) -m pip install \
		--disable-pip-version-check -q --no-build-isolation --no-deps $(MAMBA_SSM)
	@touch $@

# On a CUDA machine: the selective-scan parity (forward and backward) and benchmark table
# (kernels/gpu_check.py; forward and fwd+bwd, with Triton and numba-cuda compiles), then the
# first-order scan kernels' parity tests on the real GPU instead of the simulator / interpreter.
gpu-check: $(VENV)/.installed-gpu
	timeout 420 $(PY) -m mamba_edu.kernels.gpu_check
	TRITON_INTERPRET=0 timeout 200 $(PY) -m pytest -q -p no:cacheprovider tests/test_scan_triton.py \
		tests/simulated/cuda_scan_cases.py -k "not simulator_is_in_use"

clean:
	rm -rf build .pytest_cache .ruff_cache
