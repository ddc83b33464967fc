# bim.wall_system: developer entry points (see README.md).
#   make demo                       local SQLite installation + health check, prints the fleet summary
#   make test                       every test stage (tests/run.sh), failing fast
#   make test STAGES="sanity units" only some stages (tests/run.sh --list shows them)
#   make build                      ansible-galaxy collection build + install into .cache/collections
#   make clean                      remove build output, caches and the demo folder (keeps the venvs)
SHELL := /bin/bash
STAGES ?=

.PHONY: demo test build clean distclean stages

demo:
	demo/run.sh

test:
	tests/run.sh $(STAGES)

stages:
	@tests/run.sh --list

build:
	tests/run.sh build

clean:
	-@if [ -x .venv/bin/python ] && [ -f tests/fleet/fleet.py ]; then .venv/bin/python tests/fleet/fleet.py down || true; fi
	-@if [ -x .venv/bin/python ] && [ -f bim-demo/app/config.json ]; then .venv/bin/python tests/fleet/appctl.py stop bim-demo/app || true; fi
	rm -rf build .cache tests/output bim-demo bim-reports

distclean: clean
	rm -rf .venv .venv-*
