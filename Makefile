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

.PHONY: lab install install-test install-browser install-book workspace notebooks book lint test test-unit test-lessons test-book gpu-sources gpu-check gpu-check-offline gpu-check-run clean

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

# mamba_ssm's source distribution, downloaded once and kept: the parity suite installs it, and
# `make gpu-check` compiles its CUDA sources (csrc/selective_scan) on a GPU machine, which may
# have no network (carry build/sources there). pip reads its metadata by running its setup.py,
# which imports torch and setuptools' vendored wheel: a venv with the test (or GPU) pins first.
MAMBA_SSM       ?= mamba-ssm==2.3.2.post1
MAMBA_SDIST_DIR ?= build/sources
MAMBA_SDIST     := $(MAMBA_SDIST_DIR)/mamba_ssm-2.3.2.post1.tar.gz
SDIST_NEEDS     ?= $(VENV)/.installed-test
$(MAMBA_SDIST): | $(SDIST_NEEDS)
	MAMBA_SKIP_CUDA_BUILD=TRUE $(PY) -m pip download --disable-pip-version-check -q --no-deps \
		--no-binary :all: --no-build-isolation -d $(MAMBA_SDIST_DIR) $(MAMBA_SSM)
	$(PY) -m mamba_edu.official_cuda --check-sdist --sdist $@

# The parity suite: the official mamba_ssm without its CUDA build (a source build with nvcc
# skipped), after the pinned triton/einops/transformers it imports.
$(VENV)/.installed-parity: pyproject.toml $(VENV)/.installed-test $(MAMBA_SDIST)
	MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE $(PY) -m pip install \
		--disable-pip-version-check -q --no-build-isolation --no-deps $(MAMBA_SDIST)
	@touch $@

$(VENV)/.installed-book: pyproject.toml $(VENV)/.installed-core
	$(PY) -m pip install --disable-pip-version-check -q -e '.[book]'
	@touch $@

install: $(VENV)/.installed-core
install-book: $(VENV)/.installed-book
install-test: $(VENV)/.installed-test $(VENV)/.installed-parity
gpu-sources: $(MAMBA_SDIST)
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

# On a CUDA machine with network: the pins (plus numba-cuda) installed into the same venv (Python
# 3.12 is accepted there), then gpu-check-run. mamba_ssm is installed without its CUDA build;
# gpu-check-run builds the part it needs (float32, this GPU's architecture only).
$(VENV)/.installed-gpu: pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q --ignore-requires-python -e '.[test,parity,gpu]'
	MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE $(PY) -m pip install \
		--disable-pip-version-check -q --no-build-isolation --no-deps $(MAMBA_SSM)
	@touch $@

gpu-check: $(VENV)/.installed-gpu
	@$(MAKE) --no-print-directory $(MAMBA_SDIST) gpu-check-run SDIST_NEEDS=$< GPU_PY=$(PY)

# On a CUDA machine without network (the GPU machine lent to this project): its own python3,
# which has CUDA torch, triton, numba-cuda, nvcc and ninja; the course (editable) and mamba_ssm
# (from $(MAMBA_SDIST): run `make gpu-sources` where there is network and bring build/sources
# along) are installed into it with no download, then gpu-check-run.
GPU_PY ?= python3
gpu-check-offline:
	@test -f $(MAMBA_SDIST) || { echo "gpu-check-offline: $(MAMBA_SDIST) is missing: run" \
		"'make gpu-sources' on a machine with network and bring build/sources along"; exit 2; }
	$(GPU_PY) -m pip install --disable-pip-version-check -q --no-index --no-deps \
		--no-build-isolation --ignore-requires-python -e .
	MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE $(GPU_PY) -m pip install \
		--disable-pip-version-check -q --no-index --no-deps --no-build-isolation $(MAMBA_SDIST)
	@$(MAKE) --no-print-directory gpu-check-run

# kernels/gpu_check.py: mamba_ssm's selective_scan_cuda built (float32, this GPU only; nvcc in the
# background, about three minutes), parity of the course's kernels with the NumPy reference and
# with it (forward and backward), a benchmark table with achieved bandwidth, written to
# $(GPU_DATA)/gpu_check-GPU-DATE.json; then the first-order scan kernels' parity tests on the real
# GPU instead of the simulator / interpreter. Both run even if the first fails; either failing
# fails the target. About six minutes in all; the limits below (540 s, 200 s) bound it.
GPU_DATA ?= data
gpu-check-run:
	@status=0; \
	timeout 540 $(GPU_PY) -m mamba_edu.kernels.gpu_check --official-sdist $(MAMBA_SDIST) \
		--data-dir $(GPU_DATA) || status=$$?; \
	TRITON_INTERPRET=0 timeout 200 $(GPU_PY) -m pytest -q -p no:cacheprovider \
		tests/test_scan_triton.py tests/simulated/cuda_scan_cases.py \
		-k "not simulator_is_in_use" || status=$$?; \
	exit $$status

clean:
	rm -rf build .pytest_cache .ruff_cache
