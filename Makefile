# echolab: `make` lists the targets. `make up` (the lab) and `make test` (the tests) do every
# set-up step on a fresh machine through `make setup` (host packages, Docker engine, Compose v2,
# base image, .venv, the images' wheels), which does nothing that is already done.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

COMPOSE := docker compose
# Every profile, for down and clean: a service started behind any of them is this lab's.
ALL_PROFILES := --profile tools --profile observe --profile ruler --profile registry
# The lab's images, which make push sends to a registry for the swarm's hosts.
IMAGES := echolab-server echolab-client echolab-netcat echolab-loadgen echolab-tcpdump
# Images that serve this machine only, never pushed: Prometheus (make watch), the bench's C
# ruler, the registry itself. make clean removes both lists.
LOCAL_IMAGES := echolab-prometheus echolab-ruler echolab-registry
LINTED := common host server client loadgen bench grade cluster pictures tests tools/wheels
ARGS ?=

# tools/base-image writes BASE_IMAGE to .env during setup, after make has read this file,
# so recipes read it when they run; a BASE_IMAGE already in the environment wins, as in compose.
WITH_BASE = BASE_IMAGE="$${BASE_IMAGE:-$$(sed -n 's/^BASE_IMAGE=//p' .env | tail -n1)}"

.PHONY: help setup engine venv wheels build up down test test-unit bench lint clean clean-all grade \
  images-save images-load test-class

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

setup: engine venv wheels ## prepare this machine: Docker, Compose v2, base image, .venv, wheels

engine: ## check Docker and Compose v2, choose the base image (.env)
	tools/ensure-docker
	tools/ensure-compose
	tools/base-image

venv: ## create .venv: pyproject.toml dev pins and */requirements.txt
	tools/venv

wheels: venv ## download loadgen's and the server's wheels for their offline image builds
	.venv/bin/python tools/wheels fetch loadgen server

build: engine wheels ## build all images (servers and tools)
	$(COMPOSE) --profile tools build

up: setup ## prepare this machine if needed, then start the server variants and wait until healthy
	$(COMPOSE) up -d --wait

down: ## stop and remove everything compose started here (Prometheus's data stays)
	$(COMPOSE) $(ALL_PROFILES) down --remove-orphans

test: setup browser ## run the unit and integration tests (ARGS="..." goes to pytest)
	$(WITH_BASE) .venv/bin/pytest $(ARGS)

test-unit: venv ## run the unit tests only (no Docker)
	.venv/bin/pytest tests/unit $(ARGS)

bench: setup ## run the benchmark (bench/echolab_bench; ARGS="--help" lists its options)
	$(WITH_BASE) .venv/bin/python -m echolab_bench $(ARGS)

# Latency under load (docs/latency.md): open-loop ladders of offered rates per variant and the
# C ruler, p99 against offered load, capacity at a p99 target. ARGS="--quick" is a smoke test;
# the full run (every variant, 100 and 1,000 connections) takes about 40 min on 2 quiet cores.
.PHONY: bench-latency
bench-latency: setup ## p99 against offered load, capacity at p99 < 1 ms (ARGS="--help")
	$(WITH_BASE) .venv/bin/python -m echolab_bench.latency $(ARGS)

.PHONY: pictures
pictures: setup ## measure and draw docs/pictures from real runs (minutes; ARGS="--help")
	$(WITH_BASE) .venv/bin/python -m echolab_pictures $(ARGS)

# Grading (docs/teaching.md): the lab's checks against students' servers.
# FILE=server.py, DIR=class/ (a table) or VARIANT=name; one JSON per server and a gradebook.csv
# in GRADE_RESULTS. A classroom machine without a network: `make images-load` from the file
# `make images-save` wrote on a machine with one, then `make grade OFFLINE=1 ...` builds nothing.
GRADE_RESULTS ?= grade-results
IMAGES_FILE ?= echolab-images.tar
GRADE_IMAGES = echolab-loadgen echolab-netcat echolab-server
GRADE_PY = $$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)
grade: $(if $(OFFLINE),,build) ## grade servers: FILE=server.py, DIR=class/ or VARIANT=name
	$(WITH_BASE) $(GRADE_PY) -m echolab_grade \
	  $(FILE) $(if $(DIR),--dir "$(DIR)") $(if $(VARIANT),--variant $(VARIANT)) \
	  --results $(GRADE_RESULTS) $(ARGS)

images-save: build ## write the images grading needs to IMAGES_FILE, for machines with no network
	$(WITH_BASE) && docker save -o $(IMAGES_FILE) "$$BASE_IMAGE" \
	  $(foreach image,$(GRADE_IMAGES),$(image):$${ECHOLAB_TAG:-latest})
	@ls -lh $(IMAGES_FILE)

images-load: ## load IMAGES_FILE (from make images-save) here, and name its base image in .env
	docker load -i $(IMAGES_FILE) | tee /dev/stderr \
	  | sed -n 's/^Loaded image: \(echolab-base:.*\)/BASE_IMAGE=\1/p' >> .env

test-class: build venv ## grade a class of 30, half of it hostile (tests/classroom), ~6 min once built
	$(WITH_BASE) .venv/bin/pytest tests/classroom $(ARGS)

lint: venv ## ruff check and format check; mypy over every package (pyproject.toml's [tool.mypy])
	.venv/bin/ruff check $(LINTED)
	.venv/bin/ruff format --check $(LINTED)
	.venv/bin/mypy

clean: ## remove containers, echolab images, Prometheus's and the registry's data, .venv, caches
	-$(COMPOSE) $(ALL_PROFILES) down --remove-orphans --volumes
	for p in $$(docker ps -a --filter label=com.docker.compose.project \
	    --format '{{.Label "com.docker.compose.project"}}' | sort -u | grep '^echolab-test'); do \
	  $(COMPOSE) -p "$$p" down --remove-orphans --volumes; done
	docker images --format '{{.Repository}}:{{.Tag}}' \
	  | { grep -E '^($(subst $() ,|,$(IMAGES) $(LOCAL_IMAGES))):' || true; } | xargs -r docker image rm
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

clean-all: clean ## clean, and remove the base image echolab-base too
	docker images --format '{{.Repository}}:{{.Tag}}' \
	  | { grep '^echolab-base:' || true; } | xargs -r docker image rm

# ---- Watching the lab live (docs/watch.md): Prometheus (compose profile observe) scrapes every
# running server each second; its console draws them. `browser` is Debian's headless chromium,
# with which the tests (and the docs' checks) look at a page.
.PHONY: watch browser

watch: build ## start the servers and Prometheus, print the address of the live graphs
	$(COMPOSE) --profile observe build prometheus
	$(COMPOSE) --profile observe up -d --wait
	@echo "echolab: the lab live at http://$$($(COMPOSE) --profile observe port prometheus 9090)/consoles/echolab.html"
	@echo "echolab: put two variants under load, e.g. in two terminals:"
	@echo "  docker compose run --rm loadgen --target server-threads --connections 20 --duration 120"
	@echo "  docker compose run --rm loadgen --target server-epoll --connections 20 --duration 120"

browser: ## install Debian's chromium and chromedriver (headless), for the tests that look at pages
	tools/ensure-package chromium chromium
	tools/ensure-package chromedriver chromium-driver

# ---- Beyond one machine: a Docker Swarm stack, and a simulated cluster of Docker-in-Docker nodes
# (cluster/; docs/swarm.md). The cluster is named by $ECHOLAB_CLUSTER, else
# $ECHOLAB_TAG, so several can share one engine; the host engine's own swarm is never touched.
NODES ?= 3
SERVERS ?= 1
REGISTRY ?=
CLUSTER_PY = .venv/bin/python -m echolab_cluster

.PHONY: cluster cluster-bench cluster-compare cluster-down stack push test-cluster

cluster: build venv ## start NODES (3) Docker-in-Docker nodes, a swarm, the stack (REGISTRY=registry:5000: pulled)
	$(CLUSTER_PY) up --nodes $(NODES) --servers $(SERVERS) $(if $(REGISTRY),--registry $(REGISTRY))

cluster-bench: venv ## loadgen on every load node of the cluster at once, one merged report
	$(CLUSTER_PY) bench $(ARGS)

cluster-compare: venv ## one load: bridge vs overlay, 1 vs 2 load nodes, 1 vs 2 server replicas
	$(CLUSTER_PY) compare $(ARGS)

cluster-down: venv ## remove the cluster's nodes, volumes and network
	$(CLUSTER_PY) down

# The stack alone goes to stdout (make stack > stack.yml): the venv's set-up talks on stderr.
stack: ## print the swarm stack (docker stack deploy -c -), images from REGISTRY if set
	@$(MAKE) --no-print-directory venv >&2
	@$(CLUSTER_PY) stack $(if $(REGISTRY),--registry $(REGISTRY))

push: build ## tag and push the images (IMAGES) to REGISTRY=host:port (make registry: 127.0.0.1:5000)
	@[[ -n "$(REGISTRY)" ]] || { echo "echolab: make push REGISTRY=host:port" >&2; exit 2; }
	@$(CLUSTER_PY) push --registry $(REGISTRY) $(IMAGES)

test-cluster: build venv ## the cluster tests (tests/cluster): two 3-node nested swarms, ~4 min once built
	.venv/bin/pytest tests/cluster $(ARGS)

# ---- The lab manual (docs/, built by Zensical from mkdocs.yml; docs/reference/tests.md).
# test-docs runs the console blocks of README.md, docs/index.md and docs/lessons against the real
# lab (fixed host ports: nothing else may publish 123NN/183NN), under its own compose project,
# removed at the end; then it opens a lesson page in headless Chromium.
DOCS_PROJECT ?= echolab-docs

.PHONY: docs docs-serve test-docs

docs: venv ## build the lab manual into site/ (Zensical, strict: a warning fails)
	.venv/bin/zensical build --strict --clean

docs-serve: venv ## serve the lab manual on http://127.0.0.1:8000, rebuilt as pages change
	.venv/bin/zensical serve --dev-addr 127.0.0.1:8000

test-docs: build docs browser ## run the docs' commands against the real lab, check a page in Chromium (~4 min)
	COMPOSE_PROJECT_NAME="$${COMPOSE_PROJECT_NAME:-$(DOCS_PROJECT)}" $(WITH_BASE) \
	  .venv/bin/python -m pytest -p tests.docs.plugin -p no:cacheprovider \
	  README.md docs/index.md docs/lessons tests/docs $(ARGS)

# ---- The lab's registry (docs/real-hosts.md): Debian's docker-registry on 127.0.0.1:5000, so
# images can reach swarm nodes the way they reach real hosts: make push, then a pull on each node.
.PHONY: registry registry-down

registry: engine ## start the lab's registry on 127.0.0.1:5000 (its images in the volume registry-data)
	$(COMPOSE) --profile registry up -d --wait --build registry

registry-down: ## stop the lab's registry (its volume stays until make clean)
	$(COMPOSE) --profile registry rm --stop --force registry
