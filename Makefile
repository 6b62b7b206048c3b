# nodeagent: build, local cluster, tests. See README.md.
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/nodeagent
STATE ?= /var/lib/nodeagent-harness
export NODEAGENT_CACHE := $(CACHE)
export NODEAGENT_STATE := $(STATE)

.PHONY: all build up down test unit e2e e2e-only vet bench conformance

all: build

build:
	CGO_ENABLED=0 go build -trimpath -o bin/nodeagent ./cmd/nodeagent

# Start a local single-node cluster whose node is nodeagent.
up:
	hack/cluster.sh up

down:
	hack/cluster.sh down

vet:
	go vet ./...

# Unit tests with the race detector, after go vet (the e2e build tag too).
unit:
	go vet ./...
	go vet -tags e2e ./test/e2e/
	go test -race -count=1 ./...

# End-to-end tests against a fresh local cluster (root).
e2e:
	hack/cluster.sh up
	$(MAKE) e2e-only; rc=$$?; hack/cluster.sh down; exit $$rc

e2e-only:
	go test -tags e2e -count=1 -timeout 40m -v ./test/e2e/ 2>&1 | tee $(STATE)/logs/e2e.log; exit $${PIPESTATUS[0]}

test: unit e2e

# Side-by-side benchmark with the upstream kubelet (not part of make test).
bench:
	hack/bench.sh

# Upstream conformance (root; not part of make test): every NodeConformance
# spec one node can serve (LABEL=ginkgo label filter, default
# 'NodeConformance && !Serial && !Disruptive && !Flaky'; FOCUS=regex narrows)
# in PROCS ginkgo processes (default 4) against a fresh local cluster;
# AGENT=kubelet runs them against the upstream kubelet instead. Builds
# e2e.test, agnhost and the ginkgo CLI; records docs/conformance.md.
conformance:
	hack/conformance.sh
