# Two commands a reader needs: `make book` and `make test`. Every target installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUILD  := _build
JB_FLAGS := -W -n --keep-going

# One thread per process: on small machines torch/BLAS with two threads is slower, not faster.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
# Matplotlib needs a writable cache; the notebook kernels pick their own (inline) backend.
export MPLCONFIGDIR ?= $(CURDIR)/$(BUILD)/.mplconfig
unexport MPLBACKEND
# Sweeps (dsnn.sweep) cache their points here rather than in the home directory.
export DSNN_CACHE_DIR ?= $(CURDIR)/$(BUILD)/.dsnn-cache
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help venv book test lint pytest browser-test linkcheck notebooks student bench clean

help:
	@echo "make book   build the executed HTML book into $(BUILD)/html"
	@echo "make test   ruff, pytest, a strict book build and a browser check of the site (CI)"
	@echo "make notebooks   write .ipynb copies of the chapters to $(BUILD)/notebooks"
	@echo "make student     write the student edition (no solutions) to $(BUILD)/student"
	@echo "make bench  run the benchmarks and print one table of ratios against baselines"
	@echo "make linkcheck   check external links (needs the network)"
	@echo "make clean  remove $(BUILD) (keeps $(VENV))"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# The book must run chapters with this interpreter, never a user-level "python3" kernel.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (dsnn)" >/dev/null
	touch $@

# Chapters import dsnn: when the package or the pins change, cached outputs are stale.
# Drop the execution cache and the rendered pages so that every chapter runs again.
$(BUILD)/.code-hash: $(STAMP) FORCE
	@mkdir -p $(BUILD) $(MPLCONFIGDIR)
	@new=$$(cat requirements.txt $$(find code -name '*.py' | LC_ALL=C sort) | sha256sum | cut -c1-16); \
	 if [ "$$(cat $@ 2>/dev/null)" != "$$new" ]; then \
	   rm -rf $(BUILD)/.jupyter_cache $(BUILD)/.doctrees $(BUILD)/html $(BUILD)/jupyter_execute; \
	   echo "$$new" > $@; echo "package changed: every chapter will be executed again"; \
	 fi

FORCE:

# Sphinx reports a warning only when it reads a page, and an incremental build does not read an
# unchanged page again: after a failed build, forget what was read so the failure is reported again.
# DSNN_EXERCISES_STRICT: a worked solution in the book that fails its check breaks the build.
book: $(BUILD)/.code-hash
	DSNN_EXERCISES_STRICT=1 $(BIN)/jupyter-book build . $(JB_FLAGS) || { rm -rf $(BUILD)/.doctrees $(BUILD)/html; exit 1; }
	@echo "open $(BUILD)/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

pytest: $(STAMP)
	$(BIN)/python -m pytest

# The built site in a real browser: Debian's Chromium driven by Playwright (no browser download).
browser-test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || \
	 { echo "installing Chromium (Debian package) for the browser test"; \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || true; }
	@if command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then \
	   $(BIN)/python -m pytest -m browser tests/test_site.py; \
	 else \
	   echo "!!!!!!!! BROWSER TEST SKIPPED: Chromium could not be installed on this machine !!!!!!!!"; \
	 fi

test: lint book pytest browser-test

# External links need the network, so this is not part of `make test`.
linkcheck: $(STAMP)
	$(BIN)/jupyter-book build . --builder linkcheck

notebooks: $(STAMP)
	@rm -rf $(BUILD)/notebooks
	$(BIN)/python tools/make_notebooks.py $(BUILD)/notebooks

# The chapters without solutions, as notebooks, with an index page; --verify executes them.
student: $(STAMP)
	@rm -rf $(BUILD)/student
	$(BIN)/python tools/student_edition.py $(BUILD)/student

# Every script in benchmarks/ and one table: our time, a baseline timed in the same run, the ratio.
bench: $(STAMP)
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(BUILD) .pytest_cache .hypothesis .ruff_cache
