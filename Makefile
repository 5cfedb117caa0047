# Two commands for a new user (see README.md):
#   make lab    set everything up and open the lecture in JupyterLab
#   make test   set everything up and run the whole test suite
# Both create (or reuse) a virtual environment in .venv and install rlcourse into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

# The course environment is pinned: $(LOCK) holds the version of every package the course is
# tested with (its top says how it was made). Every pip install here takes it as constraints (-c):
# what it lists is held to its version; what it does not list (what only another platform needs,
# such as CUDA torch's nvidia-* wheels) installs as its dependents ask. `make lock` regenerates it;
# `make latest` tries the newest releases in a throwaway venv and reports what breaks. Whatever
# else installs the course (the class's hub, its image) takes $(LOCK) too.
LOCK := requirements/course.lock
LOCK_TORCH := $(shell sed -n 's/^\(torch==[^[:space:];#]*\).*/\1/p' $(LOCK))
LOCK_PYTHON := $(shell sed -n 's/^# requires-python: >=\([0-9.]*\).*/\1/p' $(LOCK))
# torch goes in first, alone, at the lock's release (pip takes a wheel of it already on this machine
# if there is one). If that fails, make stops: no other torch is installed in its place. To take
# another torch on purpose: make TORCH=torch==X.Y.Z ... (after make clean; the rest stays locked).
TORCH ?= $(LOCK_TORCH)
# The constraints: the lock, less its torch line when TORCH names another torch.
CONSTRAINTS := $(if $(filter $(LOCK_TORCH),$(TORCH)),$(LOCK),$(VENV)/lock-without-torch.txt)
# What `make test` runs (RLCOURSE_FAST=1 pytest ...); `make latest` runs the same unless TESTS=...
PYTEST_ARGS := -n 2 --dist loadfile tests notebooks --nbval-lax

.PHONY: lab test bench figures exercises clean lock latest class

$(BIN)/.rlcourse-installed: pyproject.toml $(LOCK)
	@py=$(BIN)/python; test -x $$py || py=$(PYTHON); \
	$$py -c 'import sys; need = tuple(int(x) for x in "$(LOCK_PYTHON)".split(".")); sys.exit(sys.version_info[:len(need)] < need)' || { \
	  printf '%s\n' >&2 "*** The pinned course environment ($(LOCK)) needs Python >= $(LOCK_PYTHON); $$py is $$($$py -V 2>&1)." \
	    "*** Use a newer one: make clean; make PYTHON=python3.11 $(or $(MAKECMDGOALS),lab)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(filter $(LOCK),$(CONSTRAINTS)),,grep -v '^torch==' $(LOCK) > $(CONSTRAINTS))
	$(PIP) install -c $(CONSTRAINTS) "$(TORCH)" || { printf '%s\n' >&2 \
	  "*** pip could not install $(TORCH), the torch the course is tested with ($(LOCK)), for" \
	  "*** $$($(BIN)/python -V 2>&1) on $$(uname -sm) (pip says why above). No other torch was installed." \
	  "*** Use a Python and platform that this torch has wheels for (the lock is made with Python 3.11 on" \
	  "*** Linux x86_64), or take another torch on purpose: make TORCH=torch==X.Y.Z $(or $(MAKECMDGOALS),lab)"; exit 1; }
	$(PIP) install -c $(CONSTRAINTS) -e ".[test,grading]" || { printf '%s\n' >&2 \
	  "*** pip could not install the locked versions of $(LOCK) here (pip says why above)." \
	  "*** Use the Python it was made with (its top says which), or remake it for yours: make lock; make test"; exit 1; }
	touch $@

# The optional bench extra (Stable-Baselines3, sb3-contrib), locked like the rest.
$(BIN)/.rlcourse-bench-installed: $(BIN)/.rlcourse-installed
	$(PIP) install -c $(CONSTRAINTS) -e ".[test,grading,bench]"
	touch $@

# Regenerate $(LOCK) from a fresh venv (requirements/make_lock.py); TORCH=torch==X.Y.Z moves torch.
# It is made with the oldest Python the course runs on, the system's where there is one (Debian 12's
# 3.11.2, what the class's hub builds its environment from): newer releases of some packages need a
# newer bugfix release of Python (soupsieve 4 needs 3.11.5), and the lock must install on all of them.
LOCK_MAKER ?= $(firstword $(wildcard /usr/bin/python3.11) $(PYTHON))
lock:
	$(PYTHON) requirements/make_lock.py --python $(LOCK_MAKER) --lock $(LOCK) $(if $(filter $(LOCK_TORCH),$(TORCH)),,--torch "$(TORCH)")

# The newest releases of every dependency in a throwaway venv (/tmp/rlcourse-latest-*), the lock
# ignored and torch kept at its release (LATEST_TORCH=1: the newest torch too, on Linux a CUDA build
# of several GB), then the tests (TESTS="tests/test_ppo.py -k clip" picks some); prints a report.
TESTS ?= $(PYTEST_ARGS)
latest:
	$(PYTHON) requirements/try_latest.py $(if $(LATEST_TORCH),--newest-torch) -- $(TESTS)

# Jupyter refuses to run as root unless told; a container or a CI box often is root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(BIN)/.rlcourse-installed
	$(BIN)/jupyter lab notebooks/ $(ROOT_FLAG)

test: $(BIN)/.rlcourse-installed
	RLCOURSE_FAST=1 $(BIN)/python -m pytest $(PYTEST_ARGS) -p no:cacheprovider

bench: $(BIN)/.rlcourse-bench-installed
	$(BIN)/python -m benchmarks compare-sb3 --equal-settings --readme README.md
	$(BIN)/python -m benchmarks figures --only sb3_comparison

# A JupyterHub on this machine with an instructor and three students (real unix users, random
# passwords printed), nbgrader's exchange and the course environment built from $(LOCK), for a
# lecturer to try the course as a class; Ctrl-C stops it and removes the users (hub/README.md). It
# needs root (through sudo when not root), node/npm and a system Python; make lab and make test do not.
# hub/classroom.py needs only Python's standard library: no .venv, no torch here (the hub builds its own
# environment). TORCH_INDEX=https://download.pytorch.org/whl/cpu takes the CPU torch on a server without a GPU.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
class:
	$(SUDO) $(PYTHON) hub/classroom.py demo $(if $(TORCH_INDEX),--torch-index $(TORCH_INDEX))

figures: $(BIN)/.rlcourse-installed
	$(BIN)/python -m benchmarks figures

# The student versions of the graded exercises, in notebooks/exercises/release/, checked for leaked solutions
# and hidden tests (notebooks/exercises/README.md). build.py runs the venv's nbgrader with the venv's bin/ first
# on PATH (nbgrader runs alembic from PATH).
exercises: $(BIN)/.rlcourse-installed
	$(BIN)/python notebooks/exercises/build.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
