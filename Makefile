# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench media clean sysdeps

$(STAMP): pyproject.toml
	@bash deploy/system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

sysdeps:
	bash deploy/system-deps.sh

media: $(STAMP)
	$(PY) -m kiosk.media_gen

run: $(STAMP) media
	$(PY) -m kiosk.demo

# Every tool the tests need is installed first, so a missing one is a
# failure naming it (tests/tools.py), never a silent skip.
test: $(STAMP)
	bash tests/system-deps.sh
	CLINIC_KIOSK_REQUIRE_TOOLS=1 $(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder

# The project's bytecode is compiled first, as deploy/ does for a release:
# a kiosk never compiles its own code at start.
bench: $(STAMP)
	$(PY) -m compileall -q kiosk screens
	$(PY) -m tests.bench

clean:
	rm -rf $(VENV) var build *.egg-info
