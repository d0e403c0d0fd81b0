# lpmlab: the two commands a person needs are `make demo` and `make test` (both as root,
# both idempotent, each doing every set-up step it needs on a fresh Debian 12 or 13).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test unit integration host install image box lint bench down clean help

help:
	@echo "make demo   - prepare the host, build images, bring up the lab, migrate lpar1 there and back"
	@echo "make test   - the whole test suite (unit + integration on the real lab)"
	@echo "make host | install | image | box | lint | bench | down | clean"

# 1. Debian packages Python needs to make a venv and compile libvirt-python.
$(VENV)/.base:
	@dpkg -s python3-venv python3-dev gcc pkg-config >/dev/null 2>&1 || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	     python3-venv python3-dev gcc pkg-config)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q 'ansible-core>=2.17,<2.20' 'ansible-runner>=2.4' structlog PyYAML
	touch $@

# 2. Host preparation (QEMU >= 10, libvirt >= 11, tgt, cross compiler, ...) by Ansible.
$(VENV)/.host: $(VENV)/.base playbooks/host.yml
	PYTHONPATH=$(CURDIR) $(PY) -m lpmlab.hostprep
	touch $@

host: $(VENV)/.host

# 3. The package itself (libvirt-python compiles against the libvirt just installed).
$(VENV)/.installed: $(VENV)/.host pyproject.toml
	$(PY) -m pip install -q -e '.[dev,test]'
	touch $@

install: $(VENV)/.installed

image: install
	$(VENV)/bin/lpmlab image build

# 4. The frame box of the multi-host lab (Vagrantfile): images/box/build-box.sh builds it into
# the lab state folder with what host.yml installs already in it (~4.5 min, ~530 MB the first
# time), then it is added to lpmlab's own VAGRANT_HOME. Rebuilt when its recipe or host.yml's
# package lists change. Needs only the base venv (cryptography for the key, PyYAML).
BOX_DIR  := $(or $(LPMLAB_HOME),/var/lib/lpmlab)/box
BOX_FILE := $(BOX_DIR)/lpmlab-debian12.box
BOX_DEBS := mmdebstrap dosfstools mtools syslinux syslinux-common fdisk qemu-utils e2fsprogs \
            vagrant vagrant-libvirt
BOX_PY   := PYTHONPATH=$(CURDIR) $(PY) -m lpmlab.fabric.box

box: $(BOX_DIR)/.added

$(BOX_FILE): $(shell find images/box -type f) playbooks/roles/host/defaults/main.yml | $(VENV)/.base
	@missing=$$(for p in $(BOX_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $$missing; \
	fi
	$(BOX_PY) ensure-key $(BOX_DIR)
	eval "images/box/build-box.sh --key $(BOX_DIR)/vagrant_key.pub --out $(BOX_DIR) \
	  $$($(BOX_PY) box-args)"

$(BOX_DIR)/.added: $(BOX_FILE)
	$(BOX_PY) box-add $(BOX_FILE)
	touch $@

demo: install
	$(VENV)/bin/lpmlab demo

unit: install
	$(PY) -m pytest -q -m "not integration" tests

integration: install
	$(PY) -m pytest -q -m "integration or lpmlab" tests docs/examples

# docs/examples runs too: the documented example must keep working
test: install
	$(PY) -m pytest -q --durations=25 tests docs/examples

lint: install
	$(VENV)/bin/ruff check lpmlab tests benchmarks playbooks/library docs/examples

bench: install
	$(PY) benchmarks/lab_bench.py

down: install
	$(VENV)/bin/lpmlab lab down

clean: down
	rm -rf $(VENV)
