# One command each: `make demo` installs and runs the main job, `make test` installs and
# runs the tests. Both start from a fresh clone with only Python 3.11 on the machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# constraints.txt pins every package to a version known to work together; it holds
# torch==2.13.0 (the CPU build), so no dependency can pull another torch.
PIP_INSTALL := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[all,dev]'
	touch $@

# The main job: profile this machine's CPU on onnxruntime (cached in .cache/), search the
# most accurate half-width mbv2 arch under 8 ms with ZiCo (48 estimator calls: ZiCo costs
# 0.7-1.2 s an arch here at 2 threads), export it and time the exported file.
demo: install
	$(BIN)/hwnas search --backend onnxruntime --budget-ms 8 -p width=0.5 --evaluations 48 \
	  --cache .cache/hwnas -o out/demo
	cat out/demo/report.md

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) out .pytest_cache
