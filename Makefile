# echolab: `make` lists the targets. `make up` (the lab) and `make test` (the tests) do every
# set-up step on a fresh machine through `make setup` (host packages, Docker engine, Compose v2,
# base image, .venv, the images' wheels), which does nothing that is already done.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

COMPOSE := docker compose
IMAGES := echolab-server echolab-client echolab-netcat echolab-loadgen echolab-tcpdump
LINTED := server client loadgen bench grade cluster tests tools/wheels
ARGS ?=

# tools/base-image writes BASE_IMAGE to .env during setup, after make has read this file,
# so recipes read it when they run; a BASE_IMAGE already in the environment wins, as in compose.
WITH_BASE = BASE_IMAGE="$${BASE_IMAGE:-$$(sed -n 's/^BASE_IMAGE=//p' .env | tail -n1)}"

.PHONY: help setup engine venv wheels build up down test test-unit bench lint clean clean-all grade

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

down: ## stop and remove everything compose started here
	$(COMPOSE) --profile tools down --remove-orphans

test: setup ## run the unit and integration tests (ARGS="..." goes to pytest)
	$(WITH_BASE) .venv/bin/pytest $(ARGS)

test-unit: venv ## run the unit tests only (no Docker)
	.venv/bin/pytest tests/unit $(ARGS)

bench: setup ## run the benchmark (bench/echolab_bench; ARGS="--help" lists its options)
	$(WITH_BASE) PYTHONPATH=bench:loadgen:server .venv/bin/python -m echolab_bench $(ARGS)

# Grading (README "Grade your own server"): the lab's checks against a student's server.
# FILE=server.py, DIR=folder/ (one table) or VARIANT=name; one JSON per server in GRADE_RESULTS.
GRADE_RESULTS ?= grade-results
grade: build ## grade servers: FILE=server.py, DIR=folder/ or VARIANT=name
	$(WITH_BASE) PYTHONPATH=grade:server .venv/bin/python -m echolab_grade \
	  $(FILE) $(if $(DIR),--dir $(DIR)) $(if $(VARIANT),--variant $(VARIANT)) \
	  --results $(GRADE_RESULTS) $(ARGS)

lint: venv ## ruff check and format check
	.venv/bin/ruff check $(LINTED)
	.venv/bin/ruff format --check $(LINTED)

clean: ## remove containers, echolab images, the registry's volume, .venv, caches (keeps the base)
	-$(COMPOSE) --profile tools --profile registry down --remove-orphans --volumes
	for p in $$(docker ps -a --filter label=com.docker.compose.project \
	    --format '{{.Label "com.docker.compose.project"}}' | sort -u | grep '^echolab-test'); do \
	  $(COMPOSE) -p "$$p" down --remove-orphans --volumes; done
	docker images --format '{{.Repository}}:{{.Tag}}' \
	  | { grep -E '^($(subst $() ,|,$(IMAGES) $(REGISTRY_IMAGE))):' || true; } | xargs -r docker image rm
	rm -rf .venv .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

clean-all: clean ## clean, and remove the base image echolab-base too
	docker images --format '{{.Repository}}:{{.Tag}}' \
	  | { grep '^echolab-base:' || true; } | xargs -r docker image rm

# ---- Beyond one machine: a Docker Swarm stack, and a simulated cluster of Docker-in-Docker nodes
# (cluster/; README "Beyond one machine"). The cluster is named by $ECHOLAB_CLUSTER, else
# $ECHOLAB_TAG, so several can share one engine; the host engine's own swarm is never touched.
NODES ?= 3
SERVERS ?= 1
REGISTRY ?=
CLUSTER_PY = PYTHONPATH=cluster:loadgen .venv/bin/python -m echolab_cluster

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

# ---- The lab's registry (docs/real-hosts.md): Debian's docker-registry on 127.0.0.1:5000, so
# images can reach swarm nodes the way they reach real hosts: make push, then a pull on each node.
REGISTRY_IMAGE := echolab-registry

.PHONY: registry registry-down

registry: engine ## start the lab's registry on 127.0.0.1:5000 (its images in the volume registry-data)
	$(COMPOSE) --profile registry up -d --wait --build registry

registry-down: ## stop the lab's registry (its volume stays until make clean)
	$(COMPOSE) --profile registry rm --stop --force registry
