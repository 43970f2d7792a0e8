# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install bytecode demo test bench clean

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

# mlopsc's own bytecode, written once: a run, its workers, the servers and every kfp.local task are
# new processes, and with PYTHONDONTWRITEBYTECODE set (this machine's environment does) each would compile the
# package's modules again. Only changed files are compiled; Python checks each file's mtime.
bytecode: install
	PYTHONDONTWRITEBYTECODE= $(PY) -m compileall -q compiler backends runtime >/dev/null

demo: bytecode
	$(VENV)/bin/mlopsc run specs/penguins.mlops

# Two workers (pytest-xdist): the suite's heavy tests wait on subprocesses and servers as much as
# they compute. worksteal: a worker that runs out takes tests queued for the other (with xdist's
# default split one worker sat idle for the last 7 of 23 minutes). MLOPSC_TIMELINE=FILE records
# where the time goes (tests/conftest.py).
test: bytecode
	$(PY) -m pytest -n 2 --dist worksteal --durations=30

bench: install
	$(PY) bench/check_speed.py

clean:
	rm -rf $(VENV) .pytest_cache specs/.mlopsc specs/.mlops
