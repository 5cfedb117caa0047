# Two commands for a new user (see README.md):
#   make lab    set everything up and open the lecture in JupyterLab
#   make test   set everything up and run the whole test suite
# Both create (or reuse) a virtual environment in .venv and install rlcourse into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch release the course is tested with. pip takes a wheel of it already on this machine if
# there is one; if the release does not exist for your platform, the newest torch is installed.
TORCH ?= torch==2.13.0

.PHONY: lab test bench figures exercises clean

$(BIN)/.rlcourse-installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("rlcourse needs Python >= 3.10, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install "$(TORCH)" || $(BIN)/python -m pip install torch
	$(BIN)/python -m pip install -e ".[test,grading]"
	touch $@

# Jupyter refuses to run as root unless told; a container or a CI box often is root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(BIN)/.rlcourse-installed
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG)

test: $(BIN)/.rlcourse-installed
	RLCOURSE_FAST=1 $(BIN)/python -m pytest -n 2 --dist loadfile tests notebooks --nbval-lax -p no:cacheprovider

bench: $(BIN)/.rlcourse-installed
	$(BIN)/python -m pip install -e ".[test,bench]"
	$(BIN)/python benchmarks/compare_sb3.py --readme README.md
	$(BIN)/python benchmarks/make_figures.py --only sb3_comparison

figures: $(BIN)/.rlcourse-installed
	$(BIN)/python benchmarks/make_figures.py

# The student versions of the graded exercises, in notebooks/exercises/release/, checked for leaked solutions
# and hidden tests (notebooks/exercises/README.md). build.py runs the venv's nbgrader with the venv's bin/ first
# on PATH (nbgrader runs alembic from PATH).
exercises: $(BIN)/.rlcourse-installed
	$(BIN)/python notebooks/exercises/build.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
